package io.siterecovery.agent.server;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.api.AgentMessages.BlockDigest;
import io.siterecovery.agent.api.AgentMessages.ChecksumRequest;
import io.siterecovery.agent.api.AgentMessages.ErrorBody;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.transport.RangeStream;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.Curl;
import io.siterecovery.agent.testing.RawHttp;
import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.testing.TlsProbe;
import io.siterecovery.agent.testing.Tools;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.Role;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.Stream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent API's security as a client sees it: who may connect (a certificate from the
 * deployment CA, in date, naming an identity, checked at the TLS handshake, by curl as well as
 * by Java clients), who may do what once connected (the operator drives, a site feeds only its own
 * replicas, targets come from configuration), and that failures tell nothing of the internals.
 */
class SecurityTest {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(SecurityTest.class);
  private static final long SIZE = 4L << 20;
  private static final String VM = "web01";

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void start() throws IOException {
    agents = AgentPair.start(tmp.resolve("agents"));
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  // ---------------------------------------------------------------- authentication (handshake)

  @Test
  void curlWithTheOperatorsCertificateReadsHealthAndTheVmList() throws IOException {
    assumeInstalled("curl");
    agents.p.createVm(VM, List.of(SIZE));
    Curl.Result health = curlAs("operator", "/v1/health");
    assertThat(health.status()).as("%s", health).isEqualTo(200);
    assertThat(Json.MAPPER.readValue(health.body(), Map.class))
        .containsEntry("site", "primary").containsEntry("status", "UP");

    Curl.Result vms = curlAs("operator", "/v1/vms");
    assertThat(vms.status()).as("%s", vms).isEqualTo(200);
    assertThat(vms.headers()).containsIgnoringCase("content-type: application/json")
        .doesNotContainIgnoringCase("server:");
    VmRecord[] list = Json.MAPPER.readValue(vms.body(), VmRecord[].class);
    assertThat(list).extracting(VmRecord::name).containsExactly(VM);

    // curl also checked the agent's own certificate: CA and the name 127.0.0.1; as "localhost"
    // too, which every agent certificate names.
    Curl.Result byName = Curl.run(concat(Curl.as(TestCerts.dir(), "operator"),
        "https://localhost:" + agents.primary.httpPort() + "/v1/health"));
    assertThat(byName.status()).as("%s", byName).isEqualTo(200);
  }

  @Test
  void aClientWithoutACertificateIsRefusedAtTheHandshake() throws Exception {
    assumeInstalled("curl");
    agents.p.createVm(VM, List.of(SIZE));
    Curl.Result curl = Curl.run(List.of(url("/v1/vms")));
    assertRefused(curl, "curl without a client certificate");

    SSLContext noCert = TlsProbe.context(null, null, caPem());
    assertRefused(TlsProbe.exchange(noCert, agents.primary.httpPort(), TlsProbe.get("/v1/vms")),
        "an SSLSocket without a client certificate");

    HttpClient java = HttpClient.newBuilder().sslContext(noCert)
        .connectTimeout(Duration.ofSeconds(10)).build();
    IOException e = catchThrowableOfType(IOException.class, () -> java.send(
        HttpRequest.newBuilder(URI.create(url("/v1/vms"))).timeout(Duration.ofSeconds(20))
            .build(), HttpResponse.BodyHandlers.ofString()));
    assertThat(e).as("java.net.http without a client certificate").isNotNull();
  }

  @Test
  void aCertificateFromAnotherCaIsRefused() throws IOException {
    assumeInstalled("curl");
    Path otherDir = tmp.resolve("other-ca");
    CertificateAuthority other = CertificateAuthority.create(otherDir, "other");
    other.issue(Identity.operator(), List.of());
    other.issue(Identity.site("primary"), List.of());

    for (String stem : List.of("operator", "site-primary")) {
      assertRefused(Curl.run(concat(Curl.as(otherDir, stem), url("/v1/health"))),
          "curl with " + stem + " of another CA");
      assertRefused(TlsProbe.exchange(contextOf(otherDir, stem), agents.primary.httpPort(),
          TlsProbe.get("/v1/health")), "an SSLSocket with " + stem + " of another CA");
    }
  }

  @Test
  void aCertificateOutOfDateIsRefusedEvenFromTheDeploymentCa() throws IOException {
    assumeInstalled("curl");
    // A copy of the deployment CA (same key), so the shared test certificates are not replaced.
    CertificateAuthority ca = copyOfTheDeploymentCa();
    Instant now = Instant.now();
    issueAs(ca, Identity.operator(), now.minus(Duration.ofMinutes(5)),
        now.plus(Duration.ofDays(1)), "fresh");
    issueAs(ca, Identity.operator(), now.minus(Duration.ofDays(10)),
        now.minus(Duration.ofDays(1)), "expired");
    issueAs(ca, Identity.operator(), now.plus(Duration.ofDays(1)),
        now.plus(Duration.ofDays(10)), "future");

    // control: the copy signs certificates the agent accepts
    Curl.Result fresh = Curl.run(concat(Curl.as(ca.dir(), "fresh"), url("/v1/health")));
    assertThat(fresh.status()).as("%s", fresh).isEqualTo(200);
    assertThat(TlsProbe.exchange(contextOf(ca.dir(), "fresh"), agents.primary.httpPort(),
        TlsProbe.get("/v1/health")).text()).startsWith("HTTP/1.1 200");

    for (String stem : List.of("expired", "future")) {
      assertRefused(Curl.run(concat(Curl.as(ca.dir(), stem), url("/v1/health"))),
          "curl with an operator certificate " + stem);
      assertRefused(TlsProbe.exchange(contextOf(ca.dir(), stem), agents.primary.httpPort(),
          TlsProbe.get("/v1/health")), "an SSLSocket with an operator certificate " + stem);
    }
  }

  @Test
  void aCertificateFromTheDeploymentCaNamingNoIdentityIsRefused() throws IOException {
    assumeInstalled("curl", "openssl");
    agents.p.createVm(VM, List.of(SIZE));
    Path dir = Files.createDirectories(tmp.resolve("openssl"));
    // control: openssl's certificate naming the operator is accepted, so what follows is
    // refused for the identity it lacks and for nothing else
    opensslCertificate(dir, "named", "URI:urn:site-recovery:operator");
    Curl.Result named = Curl.run(concat(Curl.as(dir, "named"), url("/v1/vms")));
    assertThat(named.status()).as("%s", named).isEqualTo(200);
    assertThat(named.body()).contains(VM);

    Map<String, String> unnamed = new java.util.LinkedHashMap<>();
    unnamed.put("nosan", null);
    unnamed.put("hosts", "DNS:localhost,IP:127.0.0.1");
    unnamed.put("otherurn", "URI:urn:example:operator");
    unnamed.put("badidentity", "URI:urn:site-recovery:root");
    unnamed.put("twoidentities", "URI:urn:site-recovery:site:primary,URI:urn:site-recovery:operator");
    for (Map.Entry<String, String> e : unnamed.entrySet()) {
      opensslCertificate(dir, e.getKey(), e.getValue());
      String why = "a certificate of the deployment CA with SAN " + e.getValue();
      Curl.Result curl = Curl.run(concat(Curl.as(dir, e.getKey()), url("/v1/vms")));
      assertThat(curl.body()).as(why).doesNotContain(VM);
      if (curl.answered()) {
        assertForbidden(curl.status(), curl.body(), why, "names no site-recovery identity");
      } else {
        assertRefused(curl, why);
      }
      TlsProbe.Answer java = TlsProbe.exchange(contextOf(dir, e.getKey()),
          agents.primary.httpPort(), TlsProbe.get("/v1/vms"));
      log.info("{}: {}", why, java);
      assertThat(java.text()).as(why).doesNotContain(VM);
      if (java.answered()) {
        assertThat(java.text()).as(why).startsWith("HTTP/1.1 403");
      }
    }
  }

  @Test
  void plainHttpToTheApiPortGetsNoAnswerWithData() throws IOException {
    assumeInstalled("curl");
    agents.p.createVm(VM, List.of(SIZE));
    Curl.Result curl = Curl.run(List.of("http://127.0.0.1:" + agents.primary.httpPort()
        + "/v1/vms"));
    log.info("plain http to the API port: {}", curl);
    assertThat(curl.status()).as("%s", curl).matches(s -> s < 200 || s >= 400, "no success");
    assertThat(curl.body()).doesNotContain(VM);

    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", agents.primary.httpPort()), 5000);
      socket.setSoTimeout(20_000);
      socket.getOutputStream().write(TlsProbe.get("/v1/vms").getBytes(StandardCharsets.US_ASCII));
      String answer;
      try {
        answer = TlsProbe.readAll(socket.getInputStream());
      } catch (SocketException reset) {
        answer = "";
      }
      // a TLS alert at most (7 bytes), no HTTP
      assertThat(answer).doesNotContain(VM).doesNotContain("HTTP/").hasSizeLessThan(64);
    }
  }

  @Test
  void theOperatorsClientRefusesAnAgentWithAnotherSitesCertificate() {
    // the secondary's agent, where the operator expects the primary's
    AgentClient wrong = TestCerts.operatorClient(agents.secondary.url(), "primary");
    AgentException e = catchThrowableOfType(AgentException.class, wrong::listVms);
    assertThat(e).isNotNull();
    assertThat(e.code()).as("a configuration error, not retried").isEqualTo(
        ErrorCode.NOT_AUTHENTICATED);
    assertThat(e.code().recoverable()).isFalse();
    assertThat(e.getMessage()).contains("handshake").contains("site:secondary");

    // an agent whose configured peer address answers with another site's certificate does not
    // replicate there: the primary's own address posing as the secondary
    agents.p.createVm(VM, List.of(SIZE));
    agents.primary.addPeer("secondary", agents.primary.url());
    AgentException enable = catchThrowableOfType(AgentException.class,
        () -> agents.p.enableProtection(VM, "secondary"));
    assertThat(enable).isNotNull();
    assertThat(enable.code()).isEqualTo(ErrorCode.NOT_AUTHENTICATED);
    assertThat(enable.getMessage()).contains("handshake");
    assertThat(agents.p.getVm(VM).protection()).isNull();
    assertThat(codeOf(() -> agents.s.getVm(VM))).isEqualTo(ErrorCode.VM_NOT_FOUND);
  }

  // ---------------------------------------------------------------- authorization (403)

  @Test
  void aPeerSiteCannotCallTheOperatorsEndpoints() throws Exception {
    protectAndReplicate();
    Snapshot before = snapshot();
    Identity peer = Identity.site("secondary");
    // a plan script the peer names: it must not run
    Path ran = tmp.resolve("script-ran");
    Path script = Files.createDirectories(tmp.resolve("agents/primary/scripts"))
        .resolve("failover-db");
    Files.writeString(script, "#!/bin/sh\ntouch '" + ran + "'\n");
    Files.setPosixFilePermissions(script,
        java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
    String[][] calls = {
        {"GET", "/v1/vms", null},
        {"GET", "/v1/vms/" + VM, null},
        {"POST", "/v1/vms", "{\"name\":\"evil\",\"diskSizes\":[4194304]}"},
        {"POST", "/v1/vms/" + VM + "/power", "{\"state\":\"OFF\"}"},
        {"POST", "/v1/vms/" + VM + "/role", "{\"role\":\"FAILED_OVER\"}"},
        {"POST", "/v1/vms/" + VM + "/replicate", null},
        {"POST", "/v1/vms/" + VM + "/protection", "{\"targetSite\":\"secondary\"}"},
        {"DELETE", "/v1/vms/" + VM + "/protection", null},
        {"POST", "/v1/vms/" + VM + "/protection/initial-complete", null},
        {"POST", "/v1/vms/" + VM + "/disks/disk0/copy", "{\"offset\":0,\"length\":4194304}"},
        {"POST", "/v1/vms/" + VM + "/resync/begin", null},
        {"GET", "/v1/vms/" + VM + "/replication", null},
        {"POST", "/v1/replicas/" + VM + "/rollback", "{\"generation\":1}"},
        {"POST", "/v1/replicas/" + VM + "/start", "{\"generation\":1,\"key\":\"k\"}"},
        {"POST", "/v1/replicas/" + VM + "/stop", null},
        {"POST", "/v1/replicas/" + VM + "/promote", null},
        {"GET", "/v1/test-clones", null},
        {"POST", "/v1/replicas/" + VM + "/test-clone", "{\"generation\":1,\"key\":\"k\"}"},
        {"DELETE", "/v1/replicas/" + VM + "/test-clone", null},
        {"POST", "/v1/vms/" + VM + "/bucket/cloud/resync", "{\"budgetMillis\":3000}"},
        {"GET", "/v1/bucket-recoveries", null},
        {"POST", "/v1/vms/" + VM + "/recover-from-bucket",
            "{\"site\":\"cloud\",\"bucketVmId\":\"vm-1\"}"},
        {"GET", "/v1/vms/" + VM + "/recovery-progress", null},
        {"DELETE", "/v1/vms/" + VM + "/recover-from-bucket", null},
        {"POST", "/v1/vms/" + VM + "/recover-from-bucket/promote",
            "{\"oldSource\":\"secondary\"}"},
        {"GET", "/v1/bucket-sites/cloud/vms/" + VM + "/points", null},
        {"POST", "/v1/vms/" + VM + "/bucket/cloud/reattach", null},
        {"GET", "/v1/object-stores", null},
        {"DELETE", "/v1/vms/" + VM, null},
        {"GET", "/v1/scripts", null},
        {"GET", "/v1/storage", null},
        {"POST", "/v1/scripts/failover-db/run", "{\"plan\":\"p\",\"operation\":\"failover\","
            + "\"contextJson\":\"{}\",\"timeoutSeconds\":5}"},
    };
    for (String[] c : calls) {
      HttpResponse<String> r = RawHttp.send(agents.primary, peer, c[0], c[1], c[2]);
      assertForbidden(r.statusCode(), r.body(), c[0] + " " + c[1] + " as " + peer,
          "site:secondary", "operator");
    }
    if (Tools.find("curl") != null) { // curl agrees
      Curl.Result curl = curlAs("site-secondary", "/v1/vms");
      assertForbidden(curl.status(), curl.body(), "curl as site:secondary", "operator");
    }
    // the peer is authenticated: what any identity may read, it reads
    assertThat(RawHttp.send(agents.primary, peer, "GET", "/v1/health", null).statusCode())
        .isEqualTo(200);

    assertThat(snapshot()).isEqualTo(before);
    assertThat(agents.p.listVms()).extracting(VmRecord::name).containsExactly(VM);
    assertThat(ran).as("the plan script the peer named").doesNotExist();
    assertThat(agents.p.scripts()).as("control: a script the operator may run")
        .containsExactly("failover-db");
  }

  /** A plan's dry run compares it with what test clones and reverse tracking need. */
  @Test
  void theOperatorReadsTheFreeSpaceWhereTheAgentKeepsItsData() throws Exception {
    io.siterecovery.agent.api.AgentMessages.StorageInfo s = agents.p.storage();
    java.nio.file.FileStore store = Files.getFileStore(tmp);
    assertThat(s.site()).isEqualTo("primary");
    assertThat(s.totalBytes()).isEqualTo(store.getTotalSpace());
    assertThat(s.freeBytes()).isPositive().isLessThanOrEqualTo(s.totalBytes());
    // a peer site may not: the host's storage is the operator's business
    assertThat(RawHttp.send(agents.primary, Identity.site("secondary"), "GET", "/v1/storage",
        null).statusCode()).isEqualTo(403);
  }

  @Test
  void aThirdSiteCannotFeedReadOrDeleteAnotherSitesReplica() throws Exception {
    protectAndReplicate();
    // a genuine payload: a sealed log of new writes on the primary, and range frames of its disk
    VirtualDisk disk = agents.primary.vms().get(VM).disk("disk0");
    disk.write(8192, ByteBuffer.wrap(random(65536, 3)), true);
    long sealed = disk.withWritesHeld(() -> disk.tracker().swap());
    Path log = disk.tracker().sealedLogs().get(0).path();
    Snapshot before = snapshot();

    // The bodies on the wire, sent by a client that hears an answer given before the body is
    // all sent (see aRefusalGivenBeforeALargeBodyIsSentReachesTheAgentsClient).
    SSLContext asIntruder = TestCerts.site("intruder").clientContext(Identity.site("secondary"));
    String feedPath = "/v1/replicas/" + VM + "/disks/disk0/";
    Map<String, Supplier<InputStream>> bodies = new java.util.LinkedHashMap<>();
    bodies.put("PUT " + feedPath + "ranges", () -> new RangeStream.Sender(disk, 0, SIZE));
    bodies.put("PUT " + feedPath + "logs/" + sealed, () -> {
      try {
        return Files.newInputStream(log);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    for (Map.Entry<String, Supplier<InputStream>> b : bodies.entrySet()) {
      TlsProbe.Streamed r = TlsProbe.stream(asIntruder, agents.secondary.httpPort(),
          b.getKey() + " HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
              + "Content-Type: application/octet-stream\r\n\r\n", b.getValue().get(), true,
          Duration.ofSeconds(30));
      assertThat(r.status()).as(b.getKey() + " as site:intruder: " + r).isEqualTo(403);
      assertForbidden(r.status(), r.body(), b.getKey(), "site:intruder", "source");
    }

    // the same and every other replica call through the agents' own client
    AgentClient intruder = TestCerts.clientAs(Identity.site("intruder"), agents.secondary);
    Map<String, Executable> calls = new java.util.LinkedHashMap<>();
    calls.put("POST apply", () -> intruder.applyLogs(VM,
        new ApplyRequest(sealed, Instant.now(), false, null)));
    calls.put("POST resync/begin", () -> intruder.beginReplicaResync(VM, sealed));
    calls.put("POST checksums", () -> intruder.replicaChecksums(VM, "disk0",
        new ChecksumRequest(0, 16, 65536, BlockDigest.values()[0], 0L)));
    calls.put("POST resync/complete", () -> intruder.completeReplicaResync(VM, sealed));
    calls.put("POST initial-complete", () -> intruder.completeReplica(VM));
    calls.put("POST rollback", () -> intruder.rollbackReplica(VM, 1));
    calls.put("DELETE replica", () -> intruder.deleteReplica(VM));
    calls.put("GET fence-check", () -> intruder.fenceCheck(VM));
    for (Map.Entry<String, Executable> c : calls.entrySet()) {
      AgentException e = catchThrowableOfType(AgentException.class, c.getValue()::execute);
      assertThat(e).as(c.getKey() + " as site:intruder").isNotNull();
      assertThat(e.code()).as(c.getKey() + ": " + e.getMessage()).isEqualTo(ErrorCode.FORBIDDEN);
      assertThat(e.getMessage()).as(c.getKey()).contains("site:intruder");
    }
    for (Executable send : List.<Executable>of(
        () -> intruder.sendRanges(VM, "disk0", () -> new RangeStream.Sender(disk, 0, SIZE)),
        () -> intruder.sendLog(VM, "disk0", sealed, log))) {
      AgentException e = catchThrowableOfType(AgentException.class, send::execute);
      assertThat(e).isNotNull();
      assertThat(e.code()).as(e.getMessage()).isEqualTo(ErrorCode.FORBIDDEN);
    }
    // its own source may not roll it back either: that is the operator's decision
    assertThat(codeOf(() -> agents.feed.rollbackReplica(VM, 1))).isEqualTo(ErrorCode.FORBIDDEN);
    // nor start, commit or test it: failovers and drills are the operator's too
    assertThat(codeOf(() -> agents.feed.startReplica(VM, 1, "k"))).isEqualTo(ErrorCode.FORBIDDEN);
    assertThat(codeOf(() -> agents.feed.promoteReplica(VM))).isEqualTo(ErrorCode.FORBIDDEN);
    assertThat(codeOf(() -> agents.feed.createTestClone(VM, 1, "k")))
        .isEqualTo(ErrorCode.FORBIDDEN);

    assertThat(snapshot()).isEqualTo(before);
    Path incoming = agents.secondary.diskImage(VM, "disk0").resolveSibling("incoming");
    if (Files.exists(incoming)) {
      try (Stream<Path> staged = Files.list(incoming)) {
        assertThat(staged.toList()).as("logs staged by the intruder").isEmpty();
      }
    }

    // control: the payload was real — shipped by its source it moves the replica on
    // (the cycle ships the sealed generation and the one it seals itself)
    assertThat(agents.p.replicate(VM).appliedGeneration()).isEqualTo(sealed + 1);
    assertThat(agents.s.getVm(VM).replica().appliedGeneration()).isEqualTo(sealed + 1);
    assertThat(Files.mismatch(agents.primary.diskImage(VM, "disk0"),
        agents.secondary.diskImage(VM, "disk0"))).isEqualTo(-1L);
  }

  /**
   * java.net.http (HTTP/1.1), which AgentClient uses, reads no answer before it has sent the
   * whole body. An agent that answered a refusal (403, 404) and closed the connection at once
   * made a body of a megabyte or more mostly fail as a broken connection (PEER_UNREACHABLE,
   * retried for ever) instead of, for a source whose replica is gone, VM_NOT_FOUND. The agent now
   * reads a refused body to its end (up to a copy slice) before it answers.
   */
  @Test
  void aRefusalGivenBeforeALargeBodyIsSentReachesTheAgentsClient() throws Exception {
    agents.createProtected(VM, SIZE);
    VirtualDisk disk = agents.primary.vms().get(VM).disk("disk0");
    disk.write(0, ByteBuffer.wrap(random((int) SIZE, 5)), true); // data, so the copy sends it
    agents.feed.deleteReplica(VM);
    AgentClient intruder = TestCerts.clientAs(Identity.site("intruder"), agents.secondary);
    agents.s.createVm("local01", List.of(SIZE));
    List<ErrorCode> copies = new ArrayList<>();
    List<ErrorCode> intrusions = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      copies.add(codeOf(() -> agents.p.copyRange(VM, "disk0", 0, SIZE)));
      intrusions.add(codeOf(() -> intruder.sendRanges("local01", "disk0",
          () -> new RangeStream.Sender(disk, 0, SIZE))));
    }
    assertThat(copies).as("a copy to a replica that is gone").containsOnly(ErrorCode.VM_NOT_FOUND);
    assertThat(intrusions).as("ranges from a site that is not the source")
        .containsOnly(ErrorCode.FORBIDDEN);
  }

  @Test
  void onlyTheSourceSiteMayCreateItsReplica() throws Exception {
    protectAndReplicate();
    agents.s.createVm("local01", List.of(SIZE));
    VmRecord local = agents.s.getVm("local01");
    Snapshot before = snapshot();
    List<VmRecord.DiskSpec> disks = agents.p.getVm(VM).disks();
    AgentClient intruder = TestCerts.clientAs(Identity.site("intruder"), agents.secondary);

    assertThat(codeOf(() -> intruder.createReplica("new01", "primary", disks)))
        .as("a replica claiming another site as its source").isEqualTo(ErrorCode.FORBIDDEN);
    assertThat(codeOf(() -> intruder.createReplica(VM, "intruder", disks)))
        .as("re-creating the primary's replica as its own").isEqualTo(ErrorCode.FORBIDDEN);
    assertThat(codeOf(() -> intruder.createReplica("local01", "intruder", disks)))
        .as("over the secondary's own VM").isEqualTo(ErrorCode.FORBIDDEN);
    assertThat(codeOf(() -> agents.s.createReplica("new02", "primary", disks)))
        .as("the operator: replicas are created by their source").isEqualTo(ErrorCode.FORBIDDEN);
    ErrorCode overLocal = codeOf(() -> agents.feed.createReplica("local01", "primary", disks));
    assertThat(overLocal).as("the primary over a VM that is not its replica")
        .isIn(ErrorCode.FORBIDDEN, ErrorCode.VM_EXISTS, ErrorCode.INVALID_STATE);

    assertThat(codeOf(() -> agents.s.getVm("new01"))).isEqualTo(ErrorCode.VM_NOT_FOUND);
    assertThat(codeOf(() -> agents.s.getVm("new02"))).isEqualTo(ErrorCode.VM_NOT_FOUND);
    assertThat(agents.secondary.diskImage("new01", "disk0").getParent()).doesNotExist();
    assertThat(agents.s.getVm("local01")).isEqualTo(local);
    assertThat(snapshot()).isEqualTo(before);

    // control: the source creates a replica of its own
    VmRecord created = agents.feed.createReplica("new03", "primary", disks);
    assertThat(created.role()).isEqualTo(Role.REPLICA);
    assertThat(created.replica().sourceSite()).isEqualTo("primary");
  }

  @Test
  void replicationTargetsComeOnlyFromTheAgentsConfiguration() throws Exception {
    agents.p.createVm(VM, List.of(SIZE));
    try (ServerSocketChannel bait = ServerSocketChannel.open()) {
      bait.bind(new InetSocketAddress("127.0.0.1", 0));
      bait.configureBlocking(false);
      String baitUrl = "https://127.0.0.1:" + ((InetSocketAddress) bait.getLocalAddress()).getPort();

      for (String body : List.of(
          "{\"targetSite\":\"secondary\",\"targetUrl\":\"" + baitUrl + "\"}",
          "{\"targetUrl\":\"" + baitUrl + "\"}")) {
        HttpResponse<String> r = RawHttp.send(agents.primary, Identity.operator(), "POST",
            "/v1/vms/" + VM + "/protection", body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
        ErrorBody error = Json.MAPPER.readValue(r.body(), ErrorBody.class);
        assertThat(error.code()).isEqualTo("BAD_REQUEST");
        assertThat(error.message()).contains("targetUrl");
      }
      // a site the agent has no --peer for is an error that says how to configure one
      HttpResponse<String> unknown = RawHttp.send(agents.primary, Identity.operator(), "POST",
          "/v1/vms/" + VM + "/protection", "{\"targetSite\":\"tertiary\"}");
      assertThat(unknown.statusCode()).as(unknown.body()).isBetween(400, 499);
      assertThat(Json.MAPPER.readValue(unknown.body(), ErrorBody.class).message())
          .contains("--peer").contains("tertiary");

      assertThat(bait.accept()).as("a connection to the address named in a request").isNull();
    }
    assertThat(agents.p.getVm(VM).protection()).isNull();
    assertThat(codeOf(() -> agents.s.getVm(VM))).isEqualTo(ErrorCode.VM_NOT_FOUND);

    // control: the configured peer is used
    assertThat(agents.p.enableProtection(VM, "secondary").targetSite()).isEqualTo("secondary");
    assertThat(agents.s.getVm(VM).role()).isEqualTo(Role.REPLICA);
  }

  // ---------------------------------------------------------------- failures tell no internals

  @Test
  void anInternalErrorAnswers500WithAnErrorRefAndNoInternals() throws Exception {
    assumeInstalled("curl");
    protectAndReplicate();
    // The replica's staging folder replaced by a file behind the agent's back: staging a log
    // then fails inside the agent (FileAlreadyExistsException from createDirectories).
    Path incoming = agents.secondary.diskImage(VM, "disk0").resolveSibling("incoming");
    if (Files.isDirectory(incoming)) {
      try (Stream<Path> left = Files.list(incoming)) {
        for (Path p : left.toList()) {
          Files.delete(p);
        }
      }
      Files.delete(incoming);
    }
    Files.writeString(incoming, "not a folder");
    VirtualDisk disk = agents.primary.vms().get(VM).disk("disk0");
    disk.write(0, ByteBuffer.wrap(random(4096, 4)), true);
    long sealed = disk.withWritesHeld(() -> disk.tracker().swap());
    Path log = disk.tracker().sealedLogs().get(0).path();

    Curl.Result r = Curl.run(concat(Curl.as(TestCerts.dir(), "site-primary"), "-X", "PUT",
        "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + log,
        "https://127.0.0.1:" + agents.secondary.httpPort() + "/v1/replicas/" + VM
            + "/disks/disk0/logs/" + sealed));
    assertThat(r.status()).as("%s", r).isEqualTo(500);
    ErrorBody error = Json.MAPPER.readValue(r.body(), ErrorBody.class);
    assertThat(error.code()).isEqualTo("IO_ERROR");
    assertThat(error.message()).containsPattern("error ref [0-9]+");
    assertNoInternals(r.headers() + r.body(), "the 500 answer");

    // through the agents' own client the source sees a recoverable error, with the same text
    AgentException e = catchThrowableOfType(AgentException.class,
        () -> agents.feed.sendLog(VM, "disk0", sealed, log));
    assertThat(e.code()).isEqualTo(ErrorCode.IO_ERROR);
    assertThat(e.code().recoverable()).isTrue();
    assertNoInternals(e.getMessage(), "the error the source sees");
  }

  @Test
  void refusalsOfBadInputTellNoInternalsEither() throws Exception {
    assumeInstalled("curl");
    agents.p.createVm(VM, List.of(SIZE));
    List<Curl.Result> answers = new ArrayList<>();
    // malformed JSON, a wrong type, a header over 16 KiB, a path outside the API
    answers.add(curlAs("operator", "/v1/vms", "-X", "POST", "-H",
        "Content-Type: application/json", "--data-binary", "{\"name\":"));
    answers.add(curlAs("operator", "/v1/vms/" + VM + "/power", "-X", "POST", "-H",
        "Content-Type: application/json", "--data-binary", "{\"state\":[1,2]}"));
    answers.add(curlAs("operator", "/v1/vms", "-H", "X-Filler: " + "a".repeat(20_000)));
    answers.add(curlAs("operator", "/v1/../../etc/passwd", "--path-as-is"));
    answers.add(curlAs("operator", "/v1/vms/%2e%2e%2fetc/power", "-X", "POST",
        "--data-binary", "{\"state\":\"OFF\"}"));
    answers.add(curlAs("operator", "/v1/vms/" + VM + "/power", "-X", "POST", "-H",
        "Content-Type: application/json", "--data-binary", "{\"state\":\"ASLEEP\"}"));
    for (Curl.Result r : answers) {
      assertThat(r.status()).as("%s", r).isBetween(400, 499);
      assertNoInternals(r.headers() + r.body(), "a " + r.status() + " answer");
    }
    assertThat(answers.get(answers.size() - 1).body())
        .contains("field 'state' must be one of [RUNNING, OFF]");
    assertThat(answers.get(2).status()).as("%s", answers.get(2)).isEqualTo(431);
    assertThat(agents.p.getVm(VM).power()).isEqualTo(Power.RUNNING);
  }

  // ---------------------------------------------------------------- helpers

  /** No exception, stack frame, class or package name, server software or file path. */
  private void assertNoInternals(String text, String what) {
    assertNoStackOrPaths(text, what);
    assertThat(text).as(what).doesNotContain("java.", "io.siterecovery", "org.");
  }

  /**
   * No exception name, stack frame, server software or file path. (A 400 may name a class of
   * the agent's messages: Jackson's message for a field of the wrong type does.)
   */
  private void assertNoStackOrPaths(String text, String what) {
    assertThat(text).as(what)
        .doesNotContainPattern("[A-Za-z]+(Exception|Error)\\b")
        .doesNotContainPattern("\\bat [a-z]+\\.[a-z]+")
        .doesNotContain(".java:", "Caused by", "org.eclipse", "java.lang", "java.io",
            "java.nio")
        .doesNotContain(tmp.toString())
        .doesNotContainIgnoringCase("jetty");
  }

  /** Records what an unauthorized call could have changed: VMs, replica, images. */
  private record Snapshot(List<VmRecord> primaryVms, List<VmRecord> secondaryVms,
      long activeGeneration, String primaryImage, String replicaImage) {}

  private Snapshot snapshot() throws IOException {
    boolean replicated = agents.secondary.vms().find(VM).isPresent();
    return new Snapshot(agents.p.listVms(), agents.s.listVms(),
        agents.p.sourceStatus(VM).activeGeneration(),
        sha256(agents.primary.diskImage(VM, "disk0")),
        replicated ? sha256(agents.secondary.diskImage(VM, "disk0")) : null);
  }

  /** A protected VM with data, initially replicated and one delta cycle on. */
  private void protectAndReplicate() throws IOException {
    agents.createProtected(VM, SIZE);
    VirtualDisk disk = agents.primary.vms().get(VM).disk("disk0");
    disk.write(0, ByteBuffer.wrap(random(1 << 20, 1)), true);
    agents.initialCopy(VM, "disk0", SIZE, SIZE, null);
    agents.p.replicate(VM);
    agents.p.completeInitialReplication(VM);
    disk.write(2 << 20, ByteBuffer.wrap(random(4096, 2)), true);
    assertThat(agents.p.replicate(VM).appliedGeneration()).isEqualTo(2);
    assertThat(agents.s.getVm(VM).replica().points()).isNotEmpty();
  }

  private static void assertForbidden(int status, String body, String why, String... mentions)
      throws IOException {
    assertThat(status).as(why + ": " + body).isEqualTo(403);
    ErrorBody error = Json.MAPPER.readValue(body, ErrorBody.class);
    assertThat(error.code()).as(why).isEqualTo("FORBIDDEN");
    assertThat(error.message()).as(why).contains(mentions);
  }

  private static void assertRefused(Curl.Result r, String why) {
    log.info("{}: curl exit {}, {}", why, r.exitCode(), r.stderr().trim());
    assertThat(r.answered()).as(why + " got an HTTP answer: " + r).isFalse();
    assertThat(r.exitCode()).as(why + ": " + r).isNotZero();
  }

  private static void assertRefused(TlsProbe.Answer a, String why) {
    log.info("{}: {}", why, a);
    assertThat(a.answered()).as(why + " got an answer: " + a).isFalse();
    if (a.failure() != null) {
      assertThat(a.failure()).as(why).isInstanceOfAny(SSLException.class, SocketException.class);
    }
  }

  private static ErrorCode codeOf(Executable call) {
    AgentException e = catchThrowableOfType(AgentException.class, call::execute);
    assertThat(e).as("an AgentException").isNotNull();
    return e.code();
  }

  private Curl.Result curlAs(String stem, String path, String... more) {
    List<String> args = new ArrayList<>(Curl.as(TestCerts.dir(), stem));
    args.addAll(List.of(more));
    args.add(url(path));
    return Curl.run(args);
  }

  private String url(String path) {
    return agents.primary.url() + path;
  }

  private static Path caPem() {
    return TestCerts.dir().resolve(CertificateAuthority.CA_CERT);
  }

  private static SSLContext contextOf(Path dir, String stem) {
    return TlsProbe.context(dir.resolve(stem + ".pem"), dir.resolve(stem + "-key.pem"), caPem());
  }

  private CertificateAuthority copyOfTheDeploymentCa() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("ca-copy"));
    for (String f : List.of(CertificateAuthority.CA_CERT, CertificateAuthority.CA_KEY)) {
      Files.copy(TestCerts.dir().resolve(f), dir.resolve(f));
    }
    TestCerts.operator(); // make sure the shared CA exists before it is copied
    return CertificateAuthority.open(dir);
  }

  /** Issues {@code identity} valid between the instants, saved as {@code stem}.pem/-key.pem. */
  private static void issueAs(CertificateAuthority ca, Identity identity, Instant notBefore,
      Instant notAfter, String stem) throws IOException {
    Path cert = ca.issue(identity, List.of(), notBefore, notAfter);
    Files.move(cert, ca.dir().resolve(stem + ".pem"));
    Files.move(ca.dir().resolve(identity.fileStem() + "-key.pem"),
        ca.dir().resolve(stem + "-key.pem"));
  }

  /**
   * A client certificate made by openssl and signed with the deployment CA's key, with the given
   * subject alternative names (null: none), saved as {@code stem}.pem/-key.pem in {@code dir}.
   */
  private static void opensslCertificate(Path dir, String stem, String san) throws IOException {
    Path ext = dir.resolve(stem + ".ext");
    StringBuilder text = new StringBuilder("basicConstraints=critical,CA:FALSE\n"
        + "keyUsage=critical,digitalSignature,keyAgreement\n"
        + "extendedKeyUsage=serverAuth,clientAuth\n");
    if (san != null) {
      text.append("subjectAltName=").append(san).append('\n');
    }
    Files.writeString(ext, text);
    Path csr = dir.resolve(stem + ".csr");
    Tools.run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", dir.resolve(stem + "-key.pem").toString(),
        "-subj", "/CN=" + stem + "/O=site-recovery", "-out", csr.toString()).assertOk();
    Tools.run("openssl", "x509", "-req", "-in", csr.toString(),
        "-CA", TestCerts.dir().resolve(CertificateAuthority.CA_CERT).toString(),
        "-CAkey", TestCerts.dir().resolve(CertificateAuthority.CA_KEY).toString(),
        "-set_serial", "0x" + HexFormat.of().formatHex(random(16, stem.hashCode())),
        "-days", "1", "-extfile", ext.toString(),
        "-out", dir.resolve(stem + ".pem").toString()).assertOk();
  }

  private static List<String> concat(List<String> first, String... more) {
    List<String> all = new ArrayList<>(first);
    all.addAll(List.of(more));
    return all;
  }

  private static byte[] random(int size, long seed) {
    byte[] b = new byte[size];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static String sha256(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[1 << 16];
      for (int n = in.read(buf); n >= 0; n = in.read(buf)) {
        md.update(buf, 0, n);
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
