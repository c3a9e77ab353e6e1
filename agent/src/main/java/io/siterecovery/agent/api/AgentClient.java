package io.siterecovery.agent.api;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JavaType;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.*;
import io.siterecovery.agent.transport.Transport;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublisher;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;
import javax.net.ssl.SSLParameters;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;

/**
 * Client of an agent's HTTPS API, used by activities, the CLI and by one agent to reach its peer.
 * It presents its own certificate and accepts only the agent whose certificate names the expected
 * site ({@code site:<name>}), wherever that agent listens. Every call has a deadline: short for
 * control calls, long for the ones that move a slice of a disk. Transport failures, deadlines
 * included, become {@link ErrorCode#PEER_UNREACHABLE}, which is recoverable.
 *
 * <p>A peer that accepts connections and never answers (a hung agent, a link that black-holes
 * packets) must not hold a caller, and with it the VM's lock, until such a deadline. A new
 * connection fails at the connect timeout, TLS handshake included; a pooled keep-alive
 * connection that went silent took the request and never answered, for up to an hour. So a call
 * also fails once it stops making progress: nothing moved for {@link #PROGRESS_TIMEOUT} before
 * its body was all taken, or no answer within its answer deadline after that. Answer
 * deadlines of agent-to-agent calls ({@link #toPeer}) follow the work the receiver does once it
 * has the body: {@link #ANSWER_TIMEOUT} for a log or ranges (written as they arrive), that plus
 * the bytes over {@link #PEER_FLOOR_RATE} for an apply or a checksum run, and
 * {@link #ANSWER_TIMEOUT} for control calls. A capped transfer is slow but never silent, so it
 * runs as long as it needs.
 */
public final class AgentClient {
  static {
    // java.net.http keeps idle connections for 20 minutes; an agent closes them after 60 s (its
    // idle timeout and request deadline). A request sent on a connection the agent is closing
    // fails as a broken connection, so pooled connections expire first. Read once, when the
    // first client is built.
    if (System.getProperty("jdk.httpclient.keepalive.timeout") == null) {
      System.setProperty("jdk.httpclient.keepalive.timeout", "30");
    }
  }

  /** Deadline of a control call (power, role, status, planning). */
  public static final Duration CONTROL_TIMEOUT = Duration.ofMinutes(2);
  /**
   * Deadline of a call that copies, compares or applies up to a slice of a disk; a call that stops
   * making progress fails sooner (see {@link #PROGRESS_TIMEOUT} and {@link #ANSWER_TIMEOUT}).
   */
  public static final Duration BULK_TIMEOUT = Duration.ofHours(1);

  /** Calls whose work grows with a disk: copies, deltas, resync steps, applies, roll-backs. */
  private static final java.util.regex.Pattern BULK_CALLS = java.util.regex.Pattern.compile(
      ".*/(copy|replicate|resync|resync/complete|ranges|logs/[0-9]+|checksums|apply|rollback|send-changed|start|promote|test-clone)");

  /** Deadline of a question asked while an agent starts: it must not hold the start up long. */
  public static final Duration QUICK_TIMEOUT = Duration.ofSeconds(10);

  /**
   * How long a call may make no progress before its body is all taken (the headers, each chunk),
   * counted only while the connection asks for nothing: a slow or paced source is no stall.
   * A new connection has the connect timeout (10 s), which in java.net.http also covers the TLS
   * handshake: a silent peer fails a call on a new connection there. A pooled connection that
   * went silent is caught by this and by the answer deadlines.
   */
  public static final Duration PROGRESS_TIMEOUT = Duration.ofSeconds(30);
  /**
   * How long an agent's peer has to answer once it has a log or ranges (it wrote them as they
   * arrived and only syncs them), or a control call; the base of the bulk calls' answer deadlines.
   */
  public static final Duration ANSWER_TIMEOUT = Duration.ofSeconds(45);
  /**
   * The slowest rate, in bytes per second, at which a replica is expected to apply logs or read
   * blocks for checksums (an apply reads, journals and writes each byte): what an apply or a
   * checksum run may take beyond {@link #ANSWER_TIMEOUT}.
   */
  public static final long PEER_FLOOR_RATE = 4L << 20;

  private final URI base;
  private final HttpClient http;
  private final Identity peer;
  /** Whether this is one agent's client of another: its answer deadlines follow the work. */
  private final boolean agentToAgent;

  /** A client of the agent at {@code baseUrl} (https), which must prove to be {@code peer}. */
  public AgentClient(String baseUrl, TlsCredentials credentials, Identity peer) {
    this(baseUrl, credentials, peer, false);
  }

  /** The client an agent uses to reach its peer site: a silent peer fails its calls promptly. */
  public static AgentClient toPeer(String baseUrl, TlsCredentials credentials, Identity peer) {
    return new AgentClient(baseUrl, credentials, peer, true);
  }

  private AgentClient(String baseUrl, TlsCredentials credentials, Identity peer,
      boolean agentToAgent) {
    this.agentToAgent = agentToAgent;
    this.base = URI.create(baseUrl.endsWith("/") ? baseUrl : baseUrl + "/");
    if (!"https".equals(base.getScheme())) {
      throw new IllegalArgumentException("agent URL " + baseUrl + " must be https://: agents"
          + " accept TLS with client certificates only");
    }
    this.peer = peer;
    SSLParameters tls = new SSLParameters();
    tls.setProtocols(new String[] {TlsCredentials.PROTOCOL});
    tls.setCipherSuites(TlsCredentials.CIPHER_SUITES);
    this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .sslContext(credentials.clientContext(peer)).sslParameters(tls)
        .connectTimeout(Duration.ofSeconds(10)).build();
  }

  /** The identity this client requires at the other end. */
  public Identity peer() {
    return peer;
  }

  public String baseUrl() {
    return base.toString();
  }

  public String health() {
    return call("GET", "v1/health", null, new TypeReference<java.util.Map<String, Object>>() {})
        .get("site").toString();
  }

  public List<VmRecord> listVms() {
    return call("GET", "v1/vms", null, new TypeReference<List<VmRecord>>() {});
  }

  public VmRecord getVm(String vm) {
    return call("GET", "v1/vms/" + vm, null, VmRecord.class);
  }

  public VmRecord createVm(String name, List<Long> diskSizes) {
    return call("POST", "v1/vms", new CreateVmRequest(name, diskSizes), VmRecord.class);
  }

  public VmRecord setPower(String vm, VmRecord.Power power) {
    return call("POST", "v1/vms/" + vm + "/power", new PowerRequest(power), VmRecord.class);
  }

  public VmRecord setRole(String vm, VmRecord.Role role) {
    return call("POST", "v1/vms/" + vm + "/role", new RoleRequest(role), VmRecord.class);
  }

  /** The agent replicates to {@code targetSite} at the address its own configuration gives. */
  public ProtectionState enableProtection(String vm, String targetSite) {
    return call("POST", "v1/vms/" + vm + "/protection",
        new EnableProtectionRequest(targetSite), ProtectionState.class);
  }

  public void disableProtection(String vm) {
    call("DELETE", "v1/vms/" + vm + "/protection", null, VmRecord.class);
  }

  public ProtectionState completeInitialReplication(String vm) {
    return call("POST", "v1/vms/" + vm + "/protection/initial-complete", null,
        ProtectionState.class);
  }

  public CopyRangeResult copyRange(String vm, String disk, long offset, long length) {
    return copyRange(vm, disk, offset, length, null);
  }

  /** Copies a range to the replica with the given transfer options (null: defaults). */
  public CopyRangeResult copyRange(String vm, String disk, long offset, long length,
      TransferOptions transfer) {
    return copyRange(vm, disk, offset, length, transfer, null);
  }

  /** As above, ending early (see {@code nextOffset}) once {@code budget} has passed. */
  public CopyRangeResult copyRange(String vm, String disk, long offset, long length,
      TransferOptions transfer, java.time.Duration budget) {
    return call("POST", "v1/vms/" + vm + "/disks/" + disk + "/copy",
        new CopyRangeRequest(offset, length, transfer,
            budget == null ? null : budget.toMillis()), CopyRangeResult.class);
  }

  /** One delta cycle without quiesce, keeping every recovery point. */
  public ReplicationResult replicate(String vm) {
    return call("POST", "v1/vms/" + vm + "/replicate", null, ReplicationResult.class);
  }

  /** One delta cycle, optionally app-consistent and pruning points older than a retention. */
  public ReplicationResult replicate(String vm, ReplicateRequest request) {
    return call("POST", "v1/vms/" + vm + "/replicate", request, ReplicationResult.class);
  }

  /** One delta cycle whose logs travel with the given transfer options (null: defaults). */
  public ReplicationResult replicate(String vm, TransferOptions transfer) {
    return replicate(vm, new ReplicateRequest(null, false, transfer));
  }

  /**
   * Starts (or finds) the resync of a protected VM: every disk's log is sealed at one instant and
   * the unshipped logs up to that generation are discarded. Calling it again while the resync is
   * under way returns the same generation.
   */
  public ResyncBegin beginResync(String vm) {
    return call("POST", "v1/vms/" + vm + "/resync/begin", null, ResyncBegin.class);
  }

  /** Compares one run of blocks of a disk with the replica and sends the differing ones. */
  public ResyncStepResult resyncStep(String vm, String disk, ResyncStepRequest request) {
    return call("POST", "v1/vms/" + vm + "/disks/" + disk + "/resync", request,
        ResyncStepResult.class);
  }

  /** Ends a resync once every disk was compared to its end; returns the replica's record. */
  public VmRecord completeResync(String vm) {
    return call("POST", "v1/vms/" + vm + "/resync/complete", null, VmRecord.class);
  }

  /** Replica side: records that the replica is being resynchronised to {@code generation}. */
  public ResyncBegin beginReplicaResync(String vm, long generation) {
    return call("POST", "v1/replicas/" + vm + "/resync/begin", new ResyncBegin(generation),
        ResyncBegin.class);
  }

  /** Replica side: the requested blocks' digests ({@code digest.bytes()} each), in block order. */
  public byte[] replicaChecksums(String vm, String disk, ChecksumRequest request) {
    try {
      Progress progress = new Progress();
      HttpRequest http = HttpRequest.newBuilder(base.resolve("v1/replicas/" + vm + "/disks/" + disk
              + "/checksums"))
          .header("Content-Type", "application/json")
          .timeout(BULK_TIMEOUT)
          .POST(progress.watch(BodyPublishers.ofByteArray(Json.MAPPER.writeValueAsBytes(request))))
          .build();
      return exchange(http, null, progress,
          answerDeadline(BULK_TIMEOUT, (long) request.count() * request.blockSize()));
    } catch (IOException e) {
      throw unreachable(e);
    }
  }

  /** Replica side: the replica's applied generation becomes the resync's generation. */
  public VmRecord completeReplicaResync(String vm, long generation) {
    return call("POST", "v1/replicas/" + vm + "/resync/complete", new ResyncBegin(generation),
        VmRecord.class);
  }

  public SourceStatus sourceStatus(String vm) {
    return call("GET", "v1/vms/" + vm + "/replication", null, SourceStatus.class);
  }

  public VmRecord createReplica(String vm, String sourceSite, List<VmRecord.DiskSpec> disks) {
    return createReplica(vm, sourceSite, disks, null);
  }

  /** {@code home}: the site where the VM was created (null: {@code sourceSite}). */
  public VmRecord createReplica(String vm, String sourceSite, List<VmRecord.DiskSpec> disks,
      String home) {
    return call("POST", "v1/replicas", new CreateReplicaRequest(vm, sourceSite, disks, home),
        VmRecord.class);
  }

  /** Starts a replica as the VM at a retained point, on layers that leave the replica as it is. */
  public VmRecord startReplica(String vm, long generation, String key) {
    return call("POST", "v1/replicas/" + vm + "/start", new StartReplicaRequest(generation, key),
        VmRecord.class);
  }

  /** Stops a started replica and drops what it wrote; the replica is as it was before. */
  public VmRecord stopReplica(String vm) {
    return call("POST", "v1/replicas/" + vm + "/stop", null, VmRecord.class);
  }

  /** Commits the failover of a started replica: it becomes the primary. */
  public PromoteResult promoteReplica(String vm) {
    return call("POST", "v1/replicas/" + vm + "/promote", null, PromoteResult.class);
  }

  public void deleteReplica(String vm) {
    call("DELETE", "v1/replicas/" + vm, null, java.util.Map.class);
  }

  public long sendRanges(String vm, String disk, Supplier<InputStream> frames) {
    return sendRanges(vm, disk, frames, null);
  }

  /** Sends range frames, compressed and paced as {@code transfer} says (null: defaults). */
  public long sendRanges(String vm, String disk, Supplier<InputStream> frames,
      TransferOptions transfer) {
    TransferOptions t = Transport.validate(transfer);
    java.util.Map<?, ?> result = call("PUT", "v1/replicas/" + vm + "/disks/" + disk + "/ranges",
        new LargeChunkPublisher(() -> Transport.encode(frames.get(), t), 1 << 20),
        Transport.contentEncoding(t), JSON.constructType(java.util.Map.class));
    return ((Number) result.get("bytesWritten")).longValue();
  }

  public void sendLog(String vm, String disk, long generation, Path log) {
    sendLog(vm, disk, generation, log, null);
  }

  /** Ships a sealed log, compressed and paced as {@code transfer} says (null: defaults). */
  public void sendLog(String vm, String disk, long generation, Path log, TransferOptions transfer) {
    TransferOptions t = Transport.validate(transfer);
    if (!java.nio.file.Files.isRegularFile(log)) {
      throw new AgentException(ErrorCode.LOG_CORRUPT, "log " + log + " vanished before shipping");
    }
    call("PUT", "v1/replicas/" + vm + "/disks/" + disk + "/logs/" + generation,
        new LargeChunkPublisher(() -> {
          try {
            return Transport.encode(java.nio.file.Files.newInputStream(log), t);
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        }, 1 << 20), Transport.contentEncoding(t), JSON.constructType(java.util.Map.class));
  }

  public VmRecord applyLogs(String vm, ApplyRequest request) {
    return applyLogs(vm, request, 0);
  }

  /** As above; {@code logBytes}, the size of the logs to apply, sizes a peer's answer deadline. */
  public VmRecord applyLogs(String vm, ApplyRequest request, long logBytes) {
    return call("POST", "v1/replicas/" + vm + "/apply", request, null,
        JSON.constructType(VmRecord.class), BULK_TIMEOUT,
        answerDeadline(BULK_TIMEOUT, logBytes));
  }

  /** Rolls a powered-off replica back to one of its retained recovery points. */
  public VmRecord rollbackReplica(String vm, long generation) {
    return call("POST", "v1/replicas/" + vm + "/rollback", new RollbackRequest(generation),
        VmRecord.class);
  }

  /** Whether this peer runs {@code vm}, so that the caller's copy must be fenced. */
  public FenceCheck fenceCheck(String vm) {
    return call("GET", "v1/replicas/" + vm + "/fence-check", null, FenceCheck.class);
  }

  /** Makes a VM that failed over elsewhere the replica of {@code newSource}, salvaging first. */
  public ReverseResult reverse(String vm, String newSource) {
    return call("POST", "v1/vms/" + vm + "/reverse", new ReverseRequest(newSource),
        ReverseResult.class);
  }

  public List<SalvageInfo> salvaged() {
    return call("GET", "v1/salvage", null, new TypeReference<List<SalvageInfo>>() {});
  }

  public void deleteSalvaged(String id) {
    call("DELETE", "v1/salvage/" + id, null, java.util.Map.class);
  }

  /** Sends one disk's ranges changed since the failover to the reverse replica. */
  public SendChangedResult sendChanged(String vm, String disk, TransferOptions transfer) {
    return call("POST", "v1/vms/" + vm + "/protection/send-changed",
        new SendChangedRequest(disk, transfer), SendChangedResult.class);
  }

  /** Creates (or, under the same key, finds again) the test VM of a replica at a point. */
  public TestCloneInfo createTestClone(String vm, long generation, String key) {
    return call("POST", "v1/replicas/" + vm + "/test-clone",
        new TestCloneRequest(generation, key), TestCloneInfo.class);
  }

  /** The test VMs alive on this agent. */
  public List<TestCloneInfo> testClones() {
    return call("GET", "v1/test-clones", null, new TypeReference<List<TestCloneInfo>>() {});
  }

  /** Deletes the test VM of {@code vm} and reports what, if anything, remains. Idempotent. */
  public TestCleanupReport deleteTestClone(String vm) {
    return call("DELETE", "v1/replicas/" + vm + "/test-clone", null, TestCleanupReport.class);
  }

  /**
   * Recovers VM {@code vm} (or {@code <vm>-test}) on this recovery host from a point in the
   * bucket of an object-store site; its disks are exported at once.
   */
  public io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo recoverFromBucket(
      String vm, io.siterecovery.agent.objectstore.recover.BucketRecoveries
          .RecoverFromBucketRequest request) {
    return call("POST", "v1/vms/" + vm + "/recover-from-bucket", request,
        io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo.class);
  }

  /** How much of a VM recovered from a bucket is local, and the download rate. */
  public io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryProgress
      recoveryProgress(String vm) {
    return call("GET", "v1/vms/" + vm + "/recovery-progress", null,
        io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryProgress.class);
  }

  /**
   * Commits a VM recovered from a bucket on this recovery host: it becomes the primary here,
   * as after a failover commit, protected (pending) towards {@code oldSource}; {@code home}
   * null: {@code oldSource}. Refused with {@code NOT_LOCAL_YET} (recoverable) until every chunk
   * is local. Repeating it answers the same.
   */
  public PromoteResult promoteBucketRecovery(String vm, String oldSource, String home) {
    return call("POST", "v1/vms/" + vm + "/recover-from-bucket/promote",
        new io.siterecovery.agent.objectstore.recover.BucketRecoveries.PromoteRecoveryRequest(
            oldSource, home), PromoteResult.class);
  }

  /** Discards a VM recovered from a bucket: its exports, its fetch and its local data. */
  public void discardBucketRecovery(String vm) {
    call("DELETE", "v1/vms/" + vm + "/recover-from-bucket", null, java.util.Map.class);
  }

  /**
   * After a failback from object-store site {@code site}: the VM's protection takes up its points
   * in that bucket again, a resync required.
   */
  public BucketMessages.BucketReattachResult bucketReattach(String vm, String site) {
    return call("POST", "v1/vms/" + vm + "/bucket/" + site + "/reattach", null,
        BucketMessages.BucketReattachResult.class);
  }

  /** Deletes a copy of a VM that a failover fenced (FAILED_OVER); nothing else. */
  public void deleteFencedVm(String vm) {
    call("DELETE", "v1/vms/" + vm, null, java.util.Map.class);
  }

  /** The object-store sites this agent is configured for (no credentials, no key). */
  public List<BucketMessages.ObjectStoreInfo> objectStores() {
    return call("GET", "v1/object-stores", null,
        new TypeReference<List<BucketMessages.ObjectStoreInfo>>() {});
  }

  /** The VMs recovered from buckets on this recovery host, tests included. */
  public List<io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo>
      bucketRecoveries() {
    return call("GET", "v1/bucket-recoveries", null, new TypeReference<List<
        io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo>>() {});
  }

  /** Free and total space of the file system that holds this agent's data directory. */
  public StorageInfo storage() {
    return call("GET", "v1/storage", null, StorageInfo.class);
  }

  /** The plan scripts this agent would run (executables in its scripts directory). */
  public List<String> scripts() {
    return call("GET", "v1/scripts", null, new TypeReference<List<String>>() {});
  }

  /**
   * Runs plan script {@code name} on this agent and waits for it: its deadline is the script's
   * timeout plus {@link #CONTROL_TIMEOUT}, for the kill and the answer. A non-zero exit code or a
   * timeout is in the result, not an exception.
   */
  public ScriptRunResult runScript(String name, ScriptRunRequest request) {
    io.siterecovery.agent.vm.Names.requireValid("script", name); // a name, never a path
    Integer seconds = request == null ? null : request.timeoutSeconds();
    Duration deadline = seconds == null || seconds < 1
        || seconds > ScriptRunRequest.MAX_TIMEOUT_SECONDS ? CONTROL_TIMEOUT
        : Duration.ofSeconds(seconds).plus(CONTROL_TIMEOUT);
    return call("POST", "v1/scripts/" + name + "/run", request, null,
        JSON.constructType(ScriptRunResult.class), deadline, deadline);
  }

  /**
   * One bounded step of a VM's initial copy to an object-store site (null budget: the agent's
   * 3 s; null bandwidth: no cap); call again until {@code finished}. A step may take its budget
   * plus one chunk's upload and, in the last step, the first point's commit.
   */
  public BucketMessages.BucketInitialProgress bucketInitial(String vm, String site,
      Duration budget, Double bandwidthMBps) {
    Duration deadline = (budget == null ? Duration.ofSeconds(3) : budget).plus(CONTROL_TIMEOUT);
    return call("POST", "v1/vms/" + vm + "/bucket/" + site + "/initial",
        new BucketMessages.BucketInitialRequest(budget == null ? null : budget.toMillis(),
            bandwidthMBps), null, JSON.constructType(BucketMessages.BucketInitialProgress.class),
        deadline, deadline);
  }

  /**
   * One bounded step of a resync of a VM towards an object-store site (null budget: the agent's
   * 3 s; null bandwidth: no cap); call again until {@code finished}. Cycles are refused
   * ({@code RESYNC_IN_PROGRESS}, recoverable) until then.
   */
  public BucketMessages.BucketResyncProgress bucketResync(String vm, String site,
      Duration budget, Double bandwidthMBps) {
    // the step's budget, the chunks in flight after it, and in the last step the commit
    Duration deadline = (budget == null ? Duration.ofSeconds(3) : budget).plus(CONTROL_TIMEOUT);
    return call("POST", "v1/vms/" + vm + "/bucket/" + site + "/resync",
        new BucketMessages.BucketResyncRequest(budget == null ? null : budget.toMillis(),
            bandwidthMBps), null, JSON.constructType(BucketMessages.BucketResyncProgress.class),
        deadline, deadline);
  }

  /** One delta cycle to an object-store site, committed as a crash-consistent recovery point. */
  public BucketMessages.BucketCycleResult bucketCycle(String vm, String site,
      Double bandwidthMBps) {
    return bucketCycle(vm, site, bandwidthMBps, false);
  }

  /**
   * One delta cycle to an object-store site, committed as a recovery point; with
   * {@code quiesce}, app-consistent if the VM's quiesce hook succeeds.
   */
  public BucketMessages.BucketCycleResult bucketCycle(String vm, String site,
      Double bandwidthMBps, boolean quiesce) {
    return call("POST", "v1/vms/" + vm + "/bucket/" + site + "/cycle",
        new BucketMessages.BucketCycleRequest(bandwidthMBps, quiesce ? true : null), null,
        JSON.constructType(BucketMessages.BucketCycleResult.class), BULK_TIMEOUT, BULK_TIMEOUT);
  }

  public BucketMessages.BucketPoints bucketPoints(String vm, String site) {
    return call("GET", "v1/vms/" + vm + "/bucket/" + site + "/points", null,
        BucketMessages.BucketPoints.class);
  }

  /**
   * The points of VM {@code vm} in the bucket of object-store site {@code site}, from any agent
   * configured with that site (the recovery host, when the source is lost).
   */
  public BucketMessages.BucketPoints bucketSitePoints(String site, String vm) {
    return call("GET", "v1/bucket-sites/" + site + "/vms/" + vm + "/points", null,
        BucketMessages.BucketPoints.class);
  }

  /** Retention: keeps {@code keep} (and every point newer than the oldest of them). */
  public BucketMessages.BucketPruneResult bucketPrune(String vm, String site, List<Long> keep) {
    return call("POST", "v1/vms/" + vm + "/bucket/" + site + "/prune",
        new BucketMessages.BucketPruneRequest(keep), null,
        JSON.constructType(BucketMessages.BucketPruneResult.class), BULK_TIMEOUT, BULK_TIMEOUT);
  }

  public VmRecord completeReplica(String vm) {
    return call("POST", "v1/replicas/" + vm + "/initial-complete", null, VmRecord.class);
  }

  private <T> T call(String method, String path, Object body, Class<T> type) {
    return call(method, path, body, Json.MAPPER.getTypeFactory().constructType(type));
  }

  private <T> T call(String method, String path, Object body, TypeReference<T> type) {
    return call(method, path, body, Json.MAPPER.getTypeFactory().constructType(type));
  }

  private <T> T call(String method, String path, Object body, JavaType type) {
    return call(method, path, body, null, type);
  }

  private static final com.fasterxml.jackson.databind.type.TypeFactory JSON =
      Json.MAPPER.getTypeFactory();

  private <T> T call(String method, String path, Object body, String contentEncoding,
      JavaType type) {
    Duration timeout = BULK_CALLS.matcher(path).matches() ? BULK_TIMEOUT
        : path.endsWith("/fence-check") ? QUICK_TIMEOUT : CONTROL_TIMEOUT;
    // A log or ranges body is written as it arrives, so once it is all sent its answer is near;
    // the peer's other bulk calls say how much work they are (applyLogs, replicaChecksums).
    Duration answer = body instanceof LargeChunkPublisher || !BULK_CALLS.matcher(path).matches()
        ? answerDeadline(timeout, 0) : timeout;
    return call(method, path, body, contentEncoding, type, timeout, answer);
  }

  /**
   * How long after its body a call may wait for the answer: {@code timeout} for an operator's or
   * a worker's client; for an agent's peer, {@link #ANSWER_TIMEOUT} plus {@code workBytes} at
   * {@link #PEER_FLOOR_RATE}, never more than {@code timeout}.
   */
  private Duration answerDeadline(Duration timeout, long workBytes) {
    if (!agentToAgent) {
      return timeout;
    }
    Duration d = ANSWER_TIMEOUT.plusSeconds(Math.max(0, workBytes) / PEER_FLOOR_RATE);
    return d.compareTo(timeout) < 0 ? d : timeout;
  }

  private <T> T call(String method, String path, Object body, String contentEncoding,
      JavaType type, Duration timeout, Duration answer) {
    try {
      Progress progress = new Progress();
      BodyPublisher publisher;
      if (body instanceof BodyPublisher p) {
        publisher = p;
      } else if (body != null) {
        publisher = BodyPublishers.ofByteArray(Json.MAPPER.writeValueAsBytes(body));
      } else {
        publisher = BodyPublishers.noBody();
      }
      HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path))
          .timeout(timeout)
          .header("Content-Type", body instanceof BodyPublisher
              ? "application/octet-stream" : "application/json")
          .method(method, progress.watch(publisher));
      if (contentEncoding != null) {
        request.header(Transport.CONTENT_ENCODING, contentEncoding);
      }
      return exchange(request.build(), type, progress, answer);
    } catch (IOException e) {
      throw unreachable(e);
    }
  }

  /**
   * Sends a request; a JSON answer is read as {@code type}, or returned raw when type is null.
   * Fails the call when {@code progress} stalls (see the class comment) or no answer came within
   * {@code answer} of the body's end. Cancelling the exchange closes its connection, so a pooled
   * connection that went silent is not used again.
   */
  @SuppressWarnings("unchecked")
  private <T> T exchange(HttpRequest request, JavaType type, Progress progress, Duration answer) {
    try {
      java.util.concurrent.CompletableFuture<HttpResponse<InputStream>> pending =
          http.sendAsync(request, HttpResponse.BodyHandlers.ofInputStream());
      HttpResponse<InputStream> response;
      while (true) {
        try {
          response = pending.get(WATCH_PERIOD.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
          break;
        } catch (java.util.concurrent.TimeoutException waiting) {
          String stall = progress.stalled(answer);
          if (stall != null) {
            pending.cancel(true);
            throw new AgentException(ErrorCode.PEER_UNREACHABLE, "agent " + peer + " at " + base
                + " unreachable: " + stall + " (" + request.method() + " "
                + request.uri().getPath() + ")");
          }
        } catch (InterruptedException e) {
          pending.cancel(true);
          throw e;
        } catch (java.util.concurrent.ExecutionException failed) {
          Throwable cause = failed.getCause();
          if (cause instanceof IOException io) {
            throw io;
          }
          if (cause instanceof java.io.UncheckedIOException io) {
            throw io;
          }
          if (cause instanceof RuntimeException r) {
            throw r;
          }
          throw new IOException(cause);
        }
      }
      try (InputStream in = response.body()) {
        if (response.statusCode() >= 300) {
          ErrorBody error = Json.MAPPER.readValue(in, ErrorBody.class);
          throw new AgentException(ErrorCode.valueOf(error.code()), error.message());
        }
        return type == null ? (T) in.readAllBytes() : Json.MAPPER.readValue(in, type);
      }
    } catch (IOException e) {
      throw unreachable(e);
    } catch (java.io.UncheckedIOException e) {
      throw unreachable(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AgentException(ErrorCode.PEER_UNREACHABLE, "interrupted calling " + base, e);
    }
  }

  /** How often a waiting call checks its progress. */
  private static final Duration WATCH_PERIOD = Duration.ofMillis(500);

  /**
   * When a call's body last moved, whether the connection is waiting for a chunk of it, and
   * whether it was all taken.
   */
  private static final class Progress {
    private final long started = System.nanoTime();
    private volatile long lastMoved = started;
    /** Chunks asked for and not yet given: while any is, a slow or paced source is the wait. */
    private final java.util.concurrent.atomic.AtomicLong wanted =
        new java.util.concurrent.atomic.AtomicLong();
    private volatile long bodyEnded;
    private volatile boolean bodyDone;

    /**
     * {@code publisher}, reporting each item the connection takes and the body's end. An empty
     * body counts as sent at once: java.net.http never subscribes to it.
     */
    BodyPublisher watch(BodyPublisher publisher) {
      if (publisher.contentLength() == 0) {
        bodyEnded = started;
        bodyDone = true;
        return publisher;
      }
      return new BodyPublisher() {
        @Override
        public long contentLength() {
          return publisher.contentLength();
        }

        @Override
        public void subscribe(java.util.concurrent.Flow.Subscriber<? super java.nio.ByteBuffer> s) {
          publisher.subscribe(new java.util.concurrent.Flow.Subscriber<java.nio.ByteBuffer>() {
            @Override
            public void onSubscribe(java.util.concurrent.Flow.Subscription subscription) {
              lastMoved = System.nanoTime();
              s.onSubscribe(new java.util.concurrent.Flow.Subscription() {
                @Override
                public void request(long n) {
                  wanted.getAndAccumulate(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
                  lastMoved = System.nanoTime();
                  subscription.request(n);
                }

                @Override
                public void cancel() {
                  subscription.cancel();
                }
              });
            }

            @Override
            public void onNext(java.nio.ByteBuffer item) {
              wanted.decrementAndGet();
              lastMoved = System.nanoTime();
              s.onNext(item);
            }

            @Override
            public void onError(Throwable error) {
              s.onError(error);
            }

            @Override
            public void onComplete() {
              bodyEnded = System.nanoTime();
              bodyDone = true;
              s.onComplete();
            }
          });
        }
      };
    }

    /** Why the call has stalled, or null while it may still be making progress. */
    String stalled(Duration answer) {
      long now = System.nanoTime();
      if (bodyDone) {
        return now - bodyEnded > answer.toNanos() ? "no answer within " + answer.toSeconds()
            + " s of sending the request" : null;
      }
      if (wanted.get() <= 0 && now - lastMoved > PROGRESS_TIMEOUT.toNanos()) {
        return "it took nothing of the request for " + PROGRESS_TIMEOUT.toSeconds() + " s";
      }
      return null;
    }
  }

  private AgentException unreachable(IOException e) {
    javax.net.ssl.SSLHandshakeException handshake = handshakeFailure(e);
    if (handshake != null) {
      // A certificate refused by either side fails the same way every time; a handshake cut by
      // the network is worth another try.
      boolean refused = causedBy(e, java.security.cert.CertificateException.class)
          || String.valueOf(handshake.getMessage()).contains("fatal alert");
      return new AgentException(refused ? ErrorCode.NOT_AUTHENTICATED : ErrorCode.PEER_UNREACHABLE,
          "TLS handshake with " + peer + " at " + base + " failed: " + handshake.getMessage(), e);
    }
    return new AgentException(ErrorCode.PEER_UNREACHABLE, "agent " + base + " unreachable: " + e, e);
  }

  /** The handshake failure behind {@code e}: java.net.http wraps it in an IOException of its own. */
  private static javax.net.ssl.SSLHandshakeException handshakeFailure(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof javax.net.ssl.SSLHandshakeException h) {
        return h;
      }
    }
    return null;
  }

  private static boolean causedBy(Throwable e, Class<? extends Throwable> type) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (type.isInstance(t) || java.util.Arrays.stream(t.getSuppressed()).anyMatch(type::isInstance)) {
        return true;
      }
    }
    return false;
  }

}
