package io.siterecovery.agent.scripts;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.ErrorBody;
import io.siterecovery.agent.api.AgentMessages.ScriptRunRequest;
import io.siterecovery.agent.api.AgentMessages.ScriptRunResult;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.server.AgentHttpServer;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.RawHttp;
import io.siterecovery.agent.testing.TestCerts;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Recovery-plan scripts as the workflow sees them, with real files and real processes: a script
 * is named, never sent; it runs with the plan's context and a clean environment, is killed with
 * what it started at its timeout, and its output's end comes back. What the agent may not trust
 * (a path, a link out of its directory, a file others may write) is refused before anything runs.
 */
class ScriptRunnerTest {
  private static final String CONTEXT = "{\"plan\":\"dc-move\",\"operation\":\"failover\","
      + "\"group\":\"web\",\"vms\":[{\"name\":\"web01\",\"exports\":"
      + "[\"nbd://127.0.0.1:10809/web01/disk0\"]}]}";

  @TempDir Path tmp;
  private HostAgent agent;
  private AgentClient operator;
  private Path scripts;
  /** Every script that must not run touches this file. */
  private Path marker;

  @BeforeEach
  void start() throws IOException {
    agent = AgentPair.start("primary", tmp.resolve("primary"));
    operator = TestCerts.operatorClient(agent);
    scripts = tmp.resolve("primary").resolve(PlanScripts.DEFAULT_DIR);
    marker = tmp.resolve("ran");
  }

  @AfterEach
  void stop() throws IOException {
    agent.close();
  }

  // ---------------------------------------------------------------- running

  @Test
  void aScriptGetsThePlansContextInACleanEnvironmentAndItsExitCodeIsData() throws Exception {
    script("env-and-exit", """
        echo "plan=$SR_PLAN operation=$SR_OPERATION group=$SR_GROUP site=$SR_SITE"
        echo "direction=$SR_DIRECTION"
        echo "cwd=$(pwd)"
        echo "path=$PATH lang=$LANG home=$HOME"
        if read line; then echo "stdin=$line"; else echo "stdin=closed"; fi
        echo "context-file=$SR_CONTEXT_FILE mode=$(stat -c %a "$SR_CONTEXT_FILE")"
        echo "context=$(cat "$SR_CONTEXT_FILE")"
        echo "to stderr" >&2
        echo "after stderr"
        echo "--- env"
        env
        exit 3
        """);
    Instant before = Instant.now();
    ScriptRunResult r = operator.runScript("env-and-exit", new ScriptRunRequest("dc-move",
        "failover", "web", "primary -> secondary", CONTEXT, 30));

    assertThat(r.exitCode()).as(r.output()).isEqualTo(3);
    assertThat(r.timedOut()).isFalse();
    assertThat(r.outputTruncated()).isFalse();
    assertThat(r.script()).isEqualTo("env-and-exit");
    assertThat(r.site()).isEqualTo("primary");
    assertThat(r.startedAt()).isBetween(before.minusSeconds(1), Instant.now());
    assertThat(r.durationMillis()).isBetween(0L, 30_000L);
    String out = r.output();
    assertThat(out).contains("plan=dc-move operation=failover group=web site=primary\n")
        .contains("direction=primary -> secondary\n")
        .contains("cwd=" + scripts.toRealPath() + "\n")
        .contains("path=/usr/sbin:/usr/bin:/sbin:/bin lang=C.UTF-8 home="
            + System.getProperty("user.home") + "\n")
        .contains("stdin=closed\n")
        .contains("context=" + CONTEXT + "\n")
        .as("stdout and stderr as they were interleaved")
        .contains("\nto stderr\nafter stderr\n");
    String file = line(out, "context-file=").split(" ")[0];
    assertThat(line(out, "context-file=")).endsWith(" mode=600");
    assertThat(Path.of(file)).as("the context file, after the run").doesNotExist();

    Set<String> env = Arrays.stream(out.substring(out.indexOf("--- env\n") + 8).split("\n"))
        .filter(l -> l.contains("=")).map(l -> l.substring(0, l.indexOf('=')))
        .collect(Collectors.toSet());
    assertThat(env).contains("PATH", "HOME", "LANG", "SR_PLAN", "SR_OPERATION", "SR_GROUP",
        "SR_DIRECTION", "SR_SITE", "SR_CONTEXT_FILE");
    Set<String> agentsOwn = new HashSet<>(System.getenv().keySet());
    agentsOwn.removeAll(Set.of("PATH", "HOME", "LANG", "PWD", "OLDPWD", "SHLVL", "_"));
    assertThat(env).as("nothing of the agent's own environment").doesNotContainAnyElementsOf(
        agentsOwn);
    assertThat(env).allMatch(k -> k.startsWith("SR_") || Set.of("PATH", "HOME", "LANG", "PWD",
        "OLDPWD", "SHLVL", "_").contains(k), "set by the agent or the shell");

    // a plan-level action: no group, no direction
    script("plain", "echo \"group=[$SR_GROUP] direction=[$SR_DIRECTION]\"\n");
    ScriptRunResult plain = operator.runScript("plain",
        new ScriptRunRequest("dc-move", "test", null, null, "{}", 5));
    assertThat(plain.exitCode()).isZero();
    assertThat(plain.output()).isEqualTo("group=[] direction=[]\n");
  }

  @Test
  void aScriptStillRunningAtItsTimeoutIsKilledWithTheProcessesItStarted() throws Exception {
    Path pids = tmp.resolve("pids");
    script("hangs", "echo started\nsleep 60 &\necho $$ $! > '" + pids + "'\nwait\n"
        + "touch '" + marker + "'\n");
    long begin = System.nanoTime();
    ScriptRunResult r = operator.runScript("hangs", request(1));
    Duration took = Duration.ofNanos(System.nanoTime() - begin);

    assertThat(took).as("the answer comes soon after the timeout").isLessThan(
        Duration.ofSeconds(10));
    assertThat(r.timedOut()).isTrue();
    assertThat(r.exitCode()).isEqualTo(-1);
    assertThat(r.durationMillis()).isBetween(1000L, 10_000L);
    assertThat(r.output()).isEqualTo("started\n");
    List<Long> started = Arrays.stream(Files.readString(pids).trim().split("\\s+"))
        .map(Long::parseLong).toList();
    assertThat(started).hasSize(2);
    for (long pid : started) {
      assertDies(pid);
    }
    assertThat(marker).as("the script went no further").doesNotExist();
  }

  @Test
  void theLast64KiBOfALongOutputAreKept() throws Exception {
    script("chatty", "i=0\nwhile [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done\n"
        + "echo 'the end' >&2\n");
    String all = IntStream.range(0, 20000).mapToObj(i -> "line " + i + "\n")
        .collect(Collectors.joining()) + "the end\n";
    ScriptRunResult r = operator.runScript("chatty", request(60));
    assertThat(r.exitCode()).isZero();
    assertThat(r.outputTruncated()).isTrue();
    assertThat(r.output()).hasSize(PlanScripts.OUTPUT_TAIL)
        .isEqualTo(all.substring(all.length() - PlanScripts.OUTPUT_TAIL))
        .endsWith("line 19999\nthe end\n");

    script("short", "echo short\n");
    ScriptRunResult small = operator.runScript("short", request(60));
    assertThat(small.output()).isEqualTo("short\n");
    assertThat(small.outputTruncated()).isFalse();
  }

  @Test
  void aRunLongerThanTheApisIdleTimeoutAndRequestDeadlineIsNotCut() throws Exception {
    AgentHttpServer.Limits d = AgentHttpServer.Limits.defaults();
    AgentHttpServer.Limits tight = new AgentHttpServer.Limits(d.maxThreads(),
        d.maxConnections(), d.handshakeTimeout(), Duration.ofSeconds(1), Duration.ofSeconds(1),
        d.maxJsonBytes(), d.maxHeaderBytes());
    try (HostAgent quick = AgentPair.start("quick", tmp.resolve("quick"), tight)) {
      Path dir = Files.createDirectory(tmp.resolve("quick").resolve(PlanScripts.DEFAULT_DIR));
      write(dir.resolve("slow"), "echo begun\nsleep 3\necho done\n", "rwx------");
      ScriptRunResult r = TestCerts.operatorClient(quick).runScript("slow", request(30));
      assertThat(r.timedOut()).isFalse();
      assertThat(r.exitCode()).isZero();
      assertThat(r.output()).isEqualTo("begun\ndone\n");
      assertThat(r.durationMillis()).isGreaterThanOrEqualTo(3000);
    }
  }

  @Test
  void aScriptStillRunningWhenTheAgentStopsIsKilled() throws Exception {
    Path fifo = tmp.resolve("started");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
    assertThat(mkfifo.waitFor(10, TimeUnit.SECONDS) && mkfifo.exitValue() == 0).isTrue();
    script("long", "echo $$ > '" + fifo + "'\nsleep 60\ntouch '" + marker + "'\n");
    CompletableFuture<ScriptRunResult> run = CompletableFuture.supplyAsync(
        () -> operator.runScript("long", request(600)));
    long pid = assertTimeoutPreemptively(Duration.ofSeconds(30),
        () -> Long.parseLong(Files.readString(fifo).trim()), "the script started");

    agent.close();
    assertDies(pid);
    Throwable failed = catchThrowableOfType(Exception.class, () -> run.get(30, TimeUnit.SECONDS));
    assertThat(failed).as("no answer from an agent that stopped").isNotNull();
    assertThat(marker).doesNotExist();
  }

  // ---------------------------------------------------------------- what runs, and what not

  @Test
  void withoutAScriptsDirectoryThereAreNoScripts() throws Exception {
    assertThat(scripts).doesNotExist();
    assertThat(operator.scripts()).isEmpty();
    assertThat(codeOf(() -> operator.runScript("anything", request(5))))
        .isEqualTo(ErrorCode.NO_SUCH_SCRIPT);
  }

  @Test
  void onlyRunnableScriptsAreListed() throws Exception {
    script("backup-db", "true\n");
    script("notify.sh", "true\n");
    Files.createSymbolicLink(scripts.resolve("notify-link"), Path.of("notify.sh"));
    write(scripts.resolve("group-writable"), "touch '" + marker + "'\n", "rwxrwx---");
    write(scripts.resolve("not-executable"), "touch '" + marker + "'\n", "rw-------");
    write(scripts.resolve(".hidden"), "true\n", "rwx------");
    write(scripts.resolve("with space"), "true\n", "rwx------");
    Files.createDirectory(scripts.resolve("a-directory"));
    Path outside = Files.createDirectory(tmp.resolve("outside"));
    write(outside.resolve("evil"), "touch '" + marker + "'\n", "rwx------");
    Files.createSymbolicLink(scripts.resolve("link-out"), outside.resolve("evil"));
    Files.createSymbolicLink(scripts.resolve("dangling"), scripts.resolve("gone"));

    assertThat(operator.scripts()).containsExactly("backup-db", "notify-link", "notify.sh");
    assertThat(operator.runScript("notify-link", request(5)).exitCode())
        .as("a link to a script of the same directory").isZero();
    assertThat(marker).doesNotExist();
  }

  @Test
  void whatTheAgentMayNotTrustIsRefusedWithItsReasonAndNothingRuns() throws Exception {
    String touch = "touch '" + marker + "'\n";
    Files.createDirectories(scripts);
    write(scripts.resolve("group-writable"), touch, "rwxrwx---");
    write(scripts.resolve("others-writable"), touch, "rwx---rwx");
    write(scripts.resolve("not-executable"), touch, "rw-------");
    Path outside = Files.createDirectory(tmp.resolve("outside"));
    write(outside.resolve("evil"), touch, "rwx------");
    Files.createSymbolicLink(scripts.resolve("link-out"), outside.resolve("evil"));
    Files.createSymbolicLink(scripts.resolve("relative-out"), Path.of("../../outside/evil"));
    Files.createDirectory(scripts.resolve("a-directory"));

    Map<String, ErrorCode> refused = new java.util.LinkedHashMap<>();
    refused.put("missing", ErrorCode.NO_SUCH_SCRIPT);
    refused.put("group-writable", ErrorCode.INVALID_STATE);
    refused.put("others-writable", ErrorCode.INVALID_STATE);
    refused.put("not-executable", ErrorCode.INVALID_STATE);
    refused.put("link-out", ErrorCode.INVALID_STATE);
    refused.put("relative-out", ErrorCode.INVALID_STATE);
    refused.put("a-directory", ErrorCode.INVALID_STATE);
    for (Map.Entry<String, ErrorCode> e : refused.entrySet()) {
      AgentException x = catchThrowableOfType(AgentException.class,
          () -> operator.runScript(e.getKey(), request(5)));
      assertThat(x).as(e.getKey()).isNotNull();
      assertThat(x.code()).as(e.getKey() + ": " + x.getMessage()).isEqualTo(e.getValue());
      assertThat(x.getMessage()).as(e.getKey()).contains("'" + e.getKey() + "'");
    }
    assertThat(message(() -> operator.runScript("group-writable", request(5))))
        .contains("writable by others");
    assertThat(message(() -> operator.runScript("link-out", request(5))))
        .contains("out of the scripts directory");
    assertThat(message(() -> operator.runScript("not-executable", request(5))))
        .contains("not executable");

    // a file of another user (only root can make one here)
    if (isRoot()) {
      write(scripts.resolve("someone-elses"), touch, "rwx------");
      Files.setAttribute(scripts.resolve("someone-elses"), "unix:uid", 65534);
      assertThat(codeOf(() -> operator.runScript("someone-elses", request(5))))
          .isEqualTo(ErrorCode.INVALID_STATE);
      assertThat(message(() -> operator.runScript("someone-elses", request(5))))
          .contains("owned by uid 65534");
    }

    // names that are paths: refused by the client before it sends them ...
    for (String name : List.of("../etc/passwd", "/etc/passwd", "a/b", "..", ".", "", "x y")) {
      assertThat(codeOf(() -> operator.runScript(name, request(5)))).as(name)
          .isEqualTo(ErrorCode.BAD_REQUEST);
    }
    // ... by the agent when sent all the same ...
    for (String path : List.of("/v1/scripts/..%2F..%2Foutside%2Fevil/run",
        "/v1/scripts/../../outside/evil/run", "/v1/scripts/%2E%2E/run",
        "/v1/scripts/a..b/run")) {
      HttpResponse<String> r = RawHttp.send(agent, Identity.operator(), "POST", path,
          Json.MAPPER.writeValueAsString(request(5)));
      assertThat(r.statusCode()).as(path + ": " + r.body()).isIn(400, 404);
    }
    // ... and by the scripts room itself
    PlanScripts room = new PlanScripts("primary", scripts);
    for (String name : List.of("../outside/evil", "/etc/passwd", "..", "a/b")) {
      AgentException x = catchThrowableOfType(AgentException.class,
          () -> room.run(name, request(5)));
      assertThat(x.code()).as(name).isEqualTo(ErrorCode.BAD_REQUEST);
    }

    // a scripts directory others may write: whoever can write it could put a script there
    script("fine", "true\n");
    Files.setPosixFilePermissions(scripts, PosixFilePermissions.fromString("rwxrwxr-x"));
    assertThat(codeOf(() -> operator.runScript("fine", request(5))))
        .isEqualTo(ErrorCode.INVALID_STATE);
    assertThat(codeOf(operator::scripts)).isEqualTo(ErrorCode.INVALID_STATE);
    Files.setPosixFilePermissions(scripts, PosixFilePermissions.fromString("rwx------"));
    assertThat(operator.runScript("fine", request(5)).exitCode()).isZero();

    assertThat(marker).as("no refused script ran").doesNotExist();
  }

  @Test
  void aRequestOutOfBoundsIsRefusedAndNothingRuns() throws Exception {
    script("touches", "touch '" + marker + "'\n");
    String big = "{\"a\":\"" + "x".repeat(ScriptRunRequest.MAX_CONTEXT_BYTES) + "\"}";
    List<ScriptRunRequest> bad = List.of(
        new ScriptRunRequest("p", "failover", "g", null, "{}", null),
        new ScriptRunRequest("p", "failover", "g", null, "{}", 0),
        new ScriptRunRequest("p", "failover", "g", null, "{}", 3601),
        new ScriptRunRequest(null, "failover", "g", null, "{}", 5),
        new ScriptRunRequest("../p", "failover", "g", null, "{}", 5),
        new ScriptRunRequest("p", null, "g", null, "{}", 5),
        new ScriptRunRequest("p", "failover", "g/h", null, "{}", 5),
        new ScriptRunRequest("p", "failover", "g", "x".repeat(201), "{}", 5),
        new ScriptRunRequest("p", "failover", "g", "a\nb", "{}", 5),
        new ScriptRunRequest("p", "failover", "g", null, null, 5),
        new ScriptRunRequest("p", "failover", "g", null, "[1, 2]", 5),
        new ScriptRunRequest("p", "failover", "g", null, "\"text\"", 5),
        new ScriptRunRequest("p", "failover", "g", null, "{} {}", 5),
        new ScriptRunRequest("p", "failover", "g", null, "{\"a\":", 5),
        new ScriptRunRequest("p", "failover", "g", null, big, 5));
    for (ScriptRunRequest r : bad) {
      String what = r.toString().substring(0, Math.min(200, r.toString().length()));
      assertThat(codeOf(() -> operator.runScript("touches", r))).as(what)
          .isEqualTo(ErrorCode.BAD_REQUEST);
    }
    HttpResponse<String> noBody = RawHttp.send(agent, Identity.operator(), "POST",
        "/v1/scripts/touches/run", null);
    assertThat(noBody.statusCode()).isEqualTo(400);
    HttpResponse<String> command = RawHttp.send(agent, Identity.operator(), "POST",
        "/v1/scripts/touches/run", "{\"plan\":\"p\",\"operation\":\"o\",\"contextJson\":\"{}\","
            + "\"timeoutSeconds\":5,\"command\":[\"sh\",\"-c\",\"id\"]}");
    assertThat(command.statusCode()).as("a command is no field of the request").isEqualTo(400);
    assertThat(Json.MAPPER.readValue(command.body(), ErrorBody.class).message())
        .contains("unknown field 'command'");
    assertThat(marker).doesNotExist();

    // control: the same script with a request within bounds runs
    String edge = "{\"a\":\"" + "x".repeat(ScriptRunRequest.MAX_CONTEXT_BYTES - 8) + "\"}";
    assertThat(operator.runScript("touches", new ScriptRunRequest("p", "failover", "g",
        "x".repeat(200), edge, 3600)).exitCode()).isZero();
    assertThat(marker).exists();
  }

  @Test
  void aPeerSiteMayNeitherListNorRunScripts() throws Exception {
    script("touches", "touch '" + marker + "'\n");
    Identity peer = Identity.site("secondary");
    String body = Json.MAPPER.writeValueAsString(request(5));
    for (String[] c : new String[][] {{"GET", "/v1/scripts", null},
        {"POST", "/v1/scripts/touches/run", body}}) {
      HttpResponse<String> r = RawHttp.send(agent, peer, c[0], c[1], c[2]);
      assertThat(r.statusCode()).as(c[1] + ": " + r.body()).isEqualTo(403);
      ErrorBody error = Json.MAPPER.readValue(r.body(), ErrorBody.class);
      assertThat(error.code()).isEqualTo("FORBIDDEN");
      assertThat(error.message()).contains("site:secondary").contains("operator")
          .doesNotContain("touches");
    }
    AgentClient asPeer = TestCerts.clientAs(peer, agent);
    assertThat(codeOf(asPeer::scripts)).isEqualTo(ErrorCode.FORBIDDEN);
    assertThat(codeOf(() -> asPeer.runScript("touches", request(5))))
        .isEqualTo(ErrorCode.FORBIDDEN);
    assertThat(marker).doesNotExist();
  }

  // ---------------------------------------------------------------- helpers

  private static ScriptRunRequest request(int timeoutSeconds) {
    return new ScriptRunRequest("dc-move", "failover", "web", "primary -> secondary", CONTEXT,
        timeoutSeconds);
  }

  /** A shell script in the agent's scripts directory, 0700. */
  private void script(String name, String body) throws IOException {
    Files.createDirectories(scripts);
    write(scripts.resolve(name), body, "rwx------");
  }

  private static void write(Path file, String body, String mode) throws IOException {
    Files.writeString(file, "#!/bin/sh\n" + body, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString(mode));
  }

  private static String line(String text, String prefix) {
    return Arrays.stream(text.split("\n")).filter(l -> l.startsWith(prefix)).findFirst()
        .map(l -> l.substring(prefix.length()))
        .orElseThrow(() -> new AssertionError("no line " + prefix + " in\n" + text));
  }

  private static boolean isRoot() throws IOException {
    Path probe = Files.createTempFile("uid-", "");
    try {
      return (Integer) Files.getAttribute(probe, "unix:uid") == 0;
    } finally {
      Files.delete(probe);
    }
  }

  private static ErrorCode codeOf(ThrowingCall call) {
    AgentException e = catchThrowableOfType(AgentException.class, call::run);
    assertThat(e).as("an AgentException").isNotNull();
    return e.code();
  }

  private static String message(ThrowingCall call) {
    AgentException e = catchThrowableOfType(AgentException.class, call::run);
    assertThat(e).as("an AgentException").isNotNull();
    return e.getMessage();
  }

  @FunctionalInterface
  private interface ThrowingCall {
    void run() throws Exception;
  }

  /**
   * Gone, or a zombie waiting for a reaper (the container's init may never come), within a
   * deadline: /proc polled every 10 ms.
   */
  private static void assertDies(long pid) throws IOException {
    Path stat = Path.of("/proc", Long.toString(pid), "stat");
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (System.nanoTime() < deadline) {
      try {
        String s = Files.readString(stat);
        if (s.substring(s.lastIndexOf(')') + 2).startsWith("Z")) {
          return;
        }
      } catch (java.nio.file.NoSuchFileException gone) {
        return;
      }
      LockSupport.parkNanos(10_000_000);
    }
    throw new AssertionError("process " + pid + " still runs after its script was killed");
  }
}
