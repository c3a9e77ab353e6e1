package io.siterecovery.agent.server;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.*;
import io.siterecovery.agent.api.BucketMessages;
import io.siterecovery.agent.metrics.AgentMetrics;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries;
import io.siterecovery.agent.replica.ReplicaRuns;
import io.siterecovery.agent.replica.ReplicaStore;
import io.siterecovery.agent.replica.Reversal;
import io.siterecovery.agent.source.ReplicationSource;
import io.siterecovery.agent.resync.ResyncSource;
import io.siterecovery.agent.resync.ResyncTarget;
import io.siterecovery.agent.scripts.PlanScripts;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testclone.TestClones;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The agent API's routes: path, method, who may call it, and the role that answers. Control
 * endpoints ({@code /v1/vms/...}, replica roll-back, plan scripts) are the operator's; the
 * replica-feeding ones
 * ({@code /v1/replicas/...}) belong to each replica's source site.
 */
final class AgentRoutes {
  private static final String NAME = "([A-Za-z0-9][A-Za-z0-9_.-]*)";
  /** Slack over a disk's size for a body of frames or a log: headers, records, trailers. */
  private static final long FRAMING_ALLOWANCE = 256L << 20;

  interface Handler {
    Object handle(Matcher path, Call call) throws IOException;
  }

  /** An answer that is text in a format of its own rather than JSON (the metrics). */
  record Text(String contentType, String body) {}

  record Route(String method, Pattern pattern, Access access, Handler handler) {}

  /** A route that matched a request, with the path's groups. */
  record Match(Route route, Matcher path) {}

  private final List<Route> routes = new ArrayList<>();
  private final VmHost host;

  AgentRoutes(VmHost host, AgentRoles roles) {
    this.host = host;
    ReplicationSource source = roles.source();
    ReplicaStore replicas = roles.replicas();
    ResyncSource resyncSource = roles.resyncSource();
    ResyncTarget resyncTarget = roles.resyncTarget();
    TestClones testClones = roles.testClones();
    ReplicaRuns runs = roles.runs();
    Reversal reversal = roles.reversal();
    PlanScripts scripts = roles.scripts();
    Access replicaSource = Access.replicaSource(host);

    route("GET", "/v1/health", Access.ANY, (m, x) -> Map.of("site", host.site(), "status", "UP"));

    // Prometheus scrapes here, with the monitor's certificate (or the operator's).
    route("GET", "/metrics", Access.MONITOR,
        (m, x) -> new Text(AgentMetrics.CONTENT_TYPE, roles.metrics().scrape()));

    // Free space where replicas, test clones and change logs grow: a plan's dry run checks it.
    // It describes the host, so it is the operator's, like the VM list.
    route("GET", "/v1/storage", Access.OPERATOR, (m, x) -> {
      java.nio.file.FileStore store = java.nio.file.Files.getFileStore(host.dataDir());
      return new StorageInfo(host.site(), host.dataDir().toString(), store.getUsableSpace(),
          store.getTotalSpace());
    });

    route("GET", "/v1/vms", Access.OPERATOR, (m, x) -> host.list());
    route("POST", "/v1/vms", Access.OPERATOR, (m, x) -> {
      CreateVmRequest r = x.json(CreateVmRequest.class);
      return host.create(r.name(), r.diskSizes()).record();
    });
    route("GET", "/v1/vms/" + NAME, Access.OPERATOR, (m, x) -> host.get(m.group(1)).record());
    // A copy a failover left fenced is retired when the VM's protection no longer needs it (its
    // site is an object store whose bucket is the replica); a running VM or a replica stays.
    route("DELETE", "/v1/vms/" + NAME, Access.OPERATOR, (m, x) -> {
      Vm vm = host.get(m.group(1));
      vm.operationLock().lock();
      try {
        if (vm.record().role() != VmRecord.Role.FAILED_OVER) {
          throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm.name() + " is a "
              + vm.record().role() + ": only a copy fenced by a failover (FAILED_OVER) may be "
              + "deleted");
        }
        host.delete(vm.name());
      } finally {
        vm.operationLock().unlock();
      }
      return Map.of("deleted", m.group(1));
    });
    route("POST", "/v1/vms/" + NAME + "/power", Access.OPERATOR, (m, x) -> {
      PowerRequest r = x.json(PowerRequest.class);
      require(r.state() != null, "state is required (RUNNING or OFF)");
      Vm vm = host.get(m.group(1));
      if (r.state() == VmRecord.Power.RUNNING && vm.record().role() == VmRecord.Role.REPLICA) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm.name() + " is a replica on "
            + host.site() + "; a replica runs only through a failover (POST /v1/replicas/"
            + vm.name() + "/start), which leaves its disks as they are until a commit");
      }
      host.setPower(vm, r.state());
      return vm.record();
    });
    route("POST", "/v1/vms/" + NAME + "/role", Access.OPERATOR, (m, x) -> {
      RoleRequest r = x.json(RoleRequest.class);
      require(r.role() != null, "role is required");
      Vm vm = host.get(m.group(1));
      host.update(vm, rec -> rec.withRole(r.role()));
      return vm.record();
    });
    route("POST", "/v1/vms/" + NAME + "/protection", Access.OPERATOR, (m, x) -> {
      EnableProtectionRequest r = x.json(EnableProtectionRequest.class);
      require(r.targetSite() != null, "targetSite is required");
      return source.enable(m.group(1), r.targetSite());
    });
    route("DELETE", "/v1/vms/" + NAME + "/protection", Access.OPERATOR, (m, x) -> {
      source.disable(m.group(1));
      return host.get(m.group(1)).record();
    });
    route("POST", "/v1/vms/" + NAME + "/protection/initial-complete", Access.OPERATOR,
        (m, x) -> source.completeInitial(m.group(1)));
    route("POST", "/v1/vms/" + NAME + "/disks/" + NAME + "/copy", Access.OPERATOR, (m, x) -> {
      CopyRangeRequest r = x.json(CopyRangeRequest.class);
      return source.copyRange(m.group(1), m.group(2), r.offset(), r.length(), r.transfer(),
          r.budgetMillis() == null ? null : java.time.Duration.ofMillis(r.budgetMillis()));
    });
    route("POST", "/v1/vms/" + NAME + "/replicate", Access.OPERATOR, (m, x) -> {
      ReplicateRequest r = x.optionalJson(ReplicateRequest.class);
      if (r == null) {
        return source.replicate(m.group(1));
      }
      require(r.retentionSeconds() == null || r.retentionSeconds() >= 0,
          "retentionSeconds must not be negative");
      return source.replicate(m.group(1), r);
    });
    route("POST", "/v1/vms/" + NAME + "/resync/begin", Access.OPERATOR,
        (m, x) -> resyncSource.begin(m.group(1)));
    route("POST", "/v1/vms/" + NAME + "/disks/" + NAME + "/resync", Access.OPERATOR, (m, x) ->
        resyncSource.step(m.group(1), m.group(2), x.json(ResyncStepRequest.class)));
    route("POST", "/v1/vms/" + NAME + "/resync/complete", Access.OPERATOR,
        (m, x) -> resyncSource.complete(m.group(1)));
    route("GET", "/v1/vms/" + NAME + "/replication", Access.OPERATOR,
        (m, x) -> source.status(m.group(1)));
    // Rolling a replica back is a failover step the operator decides, not its source.
    route("POST", "/v1/replicas/" + NAME + "/rollback", Access.OPERATOR, (m, x) -> {
      RollbackRequest r = x.json(RollbackRequest.class);
      require(r.generation() != null, "generation is required");
      return replicas.rollback(m.group(1), r.generation());
    });

    // Running a replica is the operator's failover, never its source's doing.
    route("POST", "/v1/replicas/" + NAME + "/start", Access.OPERATOR, (m, x) -> {
      StartReplicaRequest r = x.json(StartReplicaRequest.class);
      require(r.generation() != null, "generation is required");
      return runs.start(m.group(1), r.generation(), r.key());
    });
    route("POST", "/v1/replicas/" + NAME + "/stop", Access.OPERATOR,
        (m, x) -> runs.stop(m.group(1)));
    route("POST", "/v1/replicas/" + NAME + "/promote", Access.OPERATOR,
        (m, x) -> runs.promote(m.group(1)));

    // Reverse replication: the old source becomes the replica (saving what it never shipped),
    // the active site seeds it with what changed since the failover.
    route("POST", "/v1/vms/" + NAME + "/reverse", Access.OPERATOR, (m, x) -> {
      ReverseRequest r = x.json(ReverseRequest.class);
      require(r.newSource() != null, "newSource is required");
      return reversal.reverse(m.group(1), r.newSource());
    });
    route("GET", "/v1/salvage", Access.OPERATOR, (m, x) -> reversal.list());
    route("DELETE", "/v1/salvage/" + NAME, Access.OPERATOR, (m, x) -> {
      reversal.delete(m.group(1));
      return Map.of("deleted", m.group(1));
    });
    route("POST", "/v1/vms/" + NAME + "/protection/send-changed", Access.OPERATOR, (m, x) -> {
      SendChangedRequest r = x.json(SendChangedRequest.class);
      require(r.disk() != null, "disk is required");
      return source.sendChanged(m.group(1), r.disk(), r.transfer());
    });

    // Replication to an object-store site, driven by the operator like the peer routes above:
    // bounded steps of the initial copy and of a resync, delta cycles, the points, retention.
    String bucket = "/v1/vms/" + NAME + "/bucket/" + NAME;
    route("GET", "/v1/object-stores", Access.OPERATOR, (m, x) -> roles.buckets().describe());

    route("POST", bucket + "/initial", Access.OPERATOR, (m, x) -> roles.buckets().initial(
        m.group(1), m.group(2), x.optionalJson(BucketMessages.BucketInitialRequest.class)));
    route("POST", bucket + "/cycle", Access.OPERATOR, (m, x) -> roles.buckets().cycle(
        m.group(1), m.group(2), x.optionalJson(BucketMessages.BucketCycleRequest.class)));
    route("POST", bucket + "/resync", Access.OPERATOR, (m, x) -> roles.buckets().resync(
        m.group(1), m.group(2), x.optionalJson(BucketMessages.BucketResyncRequest.class)));
    route("POST", bucket + "/reattach", Access.OPERATOR,
        (m, x) -> roles.buckets().reattach(m.group(1), m.group(2)));
    route("GET", bucket + "/points", Access.OPERATOR,
        (m, x) -> roles.buckets().points(m.group(1), m.group(2)));
    route("POST", bucket + "/prune", Access.OPERATOR, (m, x) -> roles.buckets().prune(
        m.group(1), m.group(2), x.json(BucketMessages.BucketPruneRequest.class)));
    // The same points, from the bucket alone: the recovery host lists them when the source is
    // lost. The operator's, like the listing above.
    route("GET", "/v1/bucket-sites/" + NAME + "/vms/" + NAME + "/points", Access.OPERATOR,
        (m, x) -> roles.buckets().sitePoints(m.group(1), m.group(2)));

    // Test VMs are the operator's drills; the replica's source has no say in them.
    route("GET", "/v1/test-clones", Access.OPERATOR, (m, x) -> testClones.list());
    route("POST", "/v1/replicas/" + NAME + "/test-clone", Access.OPERATOR, (m, x) -> {
      TestCloneRequest r = x.json(TestCloneRequest.class);
      require(r.generation() != null, "generation is required");
      return testClones.create(m.group(1), r.generation(), r.key());
    });
    route("DELETE", "/v1/replicas/" + NAME + "/test-clone", Access.OPERATOR,
        (m, x) -> testClones.delete(m.group(1)));

    // Instant recovery from a bucket on this recovery host: the operator's, as every failover.
    BucketRecoveries bucketRecoveries = roles.bucketRecoveries();
    route("GET", "/v1/bucket-recoveries", Access.OPERATOR, (m, x) -> bucketRecoveries.list());
    route("POST", "/v1/vms/" + NAME + "/recover-from-bucket", Access.OPERATOR, (m, x) ->
        bucketRecoveries.create(m.group(1),
            x.json(BucketRecoveries.RecoverFromBucketRequest.class)));
    route("GET", "/v1/vms/" + NAME + "/recovery-progress", Access.OPERATOR,
        (m, x) -> bucketRecoveries.progress(m.group(1)));
    route("DELETE", "/v1/vms/" + NAME + "/recover-from-bucket", Access.OPERATOR,
        (m, x) -> bucketRecoveries.discard(m.group(1)));
    // The commit of a failover to the recovery host, like /v1/replicas/{vm}/promote.
    route("POST", "/v1/vms/" + NAME + "/recover-from-bucket/promote", Access.OPERATOR,
        (m, x) -> {
          BucketRecoveries.PromoteRecoveryRequest r =
              x.json(BucketRecoveries.PromoteRecoveryRequest.class);
          require(r.oldSource() != null, "oldSource is required");
          return bucketRecoveries.promote(m.group(1), r.oldSource(), r.home());
        });

    // Recovery-plan scripts: local executables run by name with the plan's context; the
    // request never carries a command. The operator's, like every control endpoint.
    route("GET", "/v1/scripts", Access.OPERATOR, (m, x) -> scripts.list());
    route("POST", "/v1/scripts/" + NAME + "/run", Access.OPERATOR,
        (m, x) -> scripts.run(m.group(1), x.json(ScriptRunRequest.class)));

    // A partner asks, as it starts, whether its copy must be fenced: the VM runs here.
    route("GET", "/v1/replicas/" + NAME + "/fence-check",
        Access.partnerOf(host, bucketRecoveries::runs), (m, x) -> {
      if (host.find(m.group(1)).isEmpty() && bucketRecoveries.runs(m.group(1))) {
        return new FenceCheck(m.group(1), host.site(), true, "VM " + m.group(1) + " runs on "
            + host.site() + " (recovered from a bucket, a failover awaiting commit)");
      }
      VmRecord r = host.get(m.group(1)).record();
      boolean runsHere = r.role() == VmRecord.Role.PRIMARY
          || (r.role() == VmRecord.Role.REPLICA && r.power() == VmRecord.Power.RUNNING);
      return new FenceCheck(r.name(), host.site(), runsHere, runsHere ? "VM " + r.name()
          + " runs on " + host.site() + (r.role() == VmRecord.Role.PRIMARY
              ? " (a committed failover)" : " (a failover awaiting commit)") : null);
    });

    // A replica is created by its source site, for itself only.
    route("POST", "/v1/replicas", Access.ANY, (m, x) -> {
      CreateReplicaRequest r = x.json(CreateReplicaRequest.class);
      String caller = x.caller().siteName().orElseThrow(() -> Access.forbidden(x.caller()
          + " may not create replicas: a replica is created by its source site"));
      require(r.sourceSite() != null, "sourceSite is required");
      if (!caller.equals(r.sourceSite())) {
        throw Access.forbidden(x.caller() + " may not create a replica whose source is site "
            + r.sourceSite());
      }
      if (host.find(r.vm()).isPresent()) {
        Access.requireSourceOf(host, x.caller(), r.vm());
      }
      return replicas.create(r.vm(), r.sourceSite(), r.disks(), r.home());
    });
    route("DELETE", "/v1/replicas/" + NAME, replicaSource, (m, x) -> {
      replicas.delete(m.group(1));
      return Map.of("deleted", m.group(1));
    });
    route("PUT", "/v1/replicas/" + NAME + "/disks/" + NAME + "/ranges", replicaSource,
        (m, x) -> {
          try (InputStream in = x.binary(bodyLimit(m), "a range stream")) {
            return Map.of("bytesWritten", replicas.receiveRanges(m.group(1), m.group(2), in));
          }
        });
    route("PUT", "/v1/replicas/" + NAME + "/disks/" + NAME + "/logs/([0-9]{1,18})",
        replicaSource, (m, x) -> {
          try (InputStream in = x.binary(bodyLimit(m), "a log")) {
            replicas.stageLog(m.group(1), m.group(2), Long.parseLong(m.group(3)), in);
            return Map.of("staged", Long.parseLong(m.group(3)));
          }
        });
    route("POST", "/v1/replicas/" + NAME + "/apply", replicaSource,
        (m, x) -> replicas.apply(m.group(1), x.json(ApplyRequest.class)));
    route("POST", "/v1/replicas/" + NAME + "/initial-complete", replicaSource,
        (m, x) -> replicas.completeInitial(m.group(1)));
    route("POST", "/v1/replicas/" + NAME + "/resync/begin", replicaSource,
        (m, x) -> resyncTarget.begin(m.group(1), x.json(ResyncBegin.class).generation()));
    route("POST", "/v1/replicas/" + NAME + "/disks/" + NAME + "/checksums", replicaSource,
        (m, x) -> resyncTarget.checksums(m.group(1), m.group(2), x.json(ChecksumRequest.class)));
    route("POST", "/v1/replicas/" + NAME + "/resync/complete", replicaSource,
        (m, x) -> resyncTarget.complete(m.group(1), x.json(ResyncBegin.class).generation()));
  }

  /**
   * A bound for a body feeding one disk: four times the disk plus framing. A log may hold a block
   * written many times in one cycle, but unshipped logs over half the disk trigger a resync, so a
   * legitimate body stays far below this; it stops a runaway sender from filling the replica.
   */
  private long bodyLimit(Matcher path) {
    long size = host.get(path.group(1)).disk(path.group(2)).size();
    return 4 * size + FRAMING_ALLOWANCE;
  }

  private void route(String method, String regex, Access access, Handler handler) {
    routes.add(new Route(method, Pattern.compile(regex), access, handler));
  }

  Optional<Match> match(String method, String path) {
    for (Route r : routes) {
      Matcher m = r.pattern().matcher(path);
      if (m.matches() && r.method().equals(method)) {
        return Optional.of(new Match(r, m));
      }
    }
    return Optional.empty();
  }

  static void require(boolean condition, String message) {
    if (!condition) {
      throw new AgentException(ErrorCode.BAD_REQUEST, message);
    }
  }

  /** Whether {@code caller} is who this route answers; throws FORBIDDEN with the reason if not. */
  static void authorize(Match match, Identity caller) {
    match.route().access().check(caller, match.path());
  }
}
