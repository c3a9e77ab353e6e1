package io.siterecovery.workers.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.FreePorts;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.temporal.api.enums.v1.IndexedValueType;
import io.temporal.common.SearchAttributeKey;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The production stack's files agree with the code and with each other, checked without a Docker
 * engine: docker-compose itself accepts docker-compose.yml; what it mounts from the repository
 * exists, and each service gets only its own certificate, from the folder git and the image build
 * ignore; the setup job creates exactly the workflows' search attributes; the worker gets the
 * environment it reads and a configuration naming the compose services; the UI and Prometheus
 * point at the services they need.
 */
class ComposeFileTest {
  private static final Path ROOT = repositoryRoot();
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static final String CERTS_DEFAULT = "ops/compose/certs";
  /** The environment the worker reads (its Spring Boot configuration's contract). */
  private static final Set<String> WORKER_ENV = Set.of("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE",
      "SITE_RECOVERY_CONFIG", "WORKER_HTTP_ADDRESS", "WORKER_HTTP_PORT");
  /** PostgreSQL visibility has ten preallocated Keyword columns for custom search attributes. */
  private static final int SQL_VISIBILITY_KEYWORD_COLUMNS = 10;
  private static final Pattern VARIABLE =
      Pattern.compile("\\$\\{(\\w+)(?::-([^}]*)|:\\?[^}]*)?}");

  @TempDir Path tmp;

  private final JsonNode services = read(ROOT.resolve("docker-compose.yml")).get("services");

  @Test
  void dockerComposeAcceptsTheFileAndRequiresADatabasePassword() throws Exception {
    assumeTrue(onPath("docker-compose"), "docker-compose (Debian package docker-compose) is not "
        + "installed; ./run-tests installs it");
    Path noEnv = Files.writeString(tmp.resolve("empty.env"), "");
    Result ok = dockerCompose(noEnv, Map.of("TEMPORAL_DB_PASSWORD", "from-the-test"));
    assertThat(ok.exit()).as("docker-compose config -q: %s", ok.output()).isZero();

    Result withoutPassword = dockerCompose(noEnv, Map.of());
    assertThat(withoutPassword.exit()).as("without a password").isNotZero();
    assertThat(withoutPassword.output()).contains("TEMPORAL_DB_PASSWORD");
  }

  @Test
  void everyMountedFileExistsAndEachServiceGetsOnlyItsOwnCertificate() throws IOException {
    Path certs = ROOT.resolve(CERTS_DEFAULT);
    Map<String, Set<String>> certFiles = new LinkedHashMap<>();
    services.fields().forEachRemaining(service -> {
      for (Mount mount : mounts(service.getValue())) {
        if (!mount.bind()) {
          continue;
        }
        assertThat(mount.readOnly()).as("%s mounts %s read-only", service.getKey(),
            mount.source()).isTrue();
        Path source = ROOT.resolve(mount.source()).normalize();
        if (source.startsWith(certs)) {
          certFiles.computeIfAbsent(service.getKey(), k -> new TreeSet<>())
              .add(source.getFileName().toString());
        } else {
          assertThat(source).as("%s mounts %s from the repository", service.getKey(),
              mount.source()).exists();
        }
      }
    });
    assertThat(certFiles).containsOnlyKeys("agent-primary", "agent-secondary", "worker",
        "prometheus");
    assertThat(certFiles.get("agent-primary"))
        .containsExactlyInAnyOrder("ca.pem", "site-primary.pem", "site-primary-key.pem");
    assertThat(certFiles.get("agent-secondary"))
        .containsExactlyInAnyOrder("ca.pem", "site-secondary.pem", "site-secondary-key.pem");
    assertThat(certFiles.get("worker")).containsExactlyInAnyOrder("ca.pem", "operator.pem",
        "operator-key.pem", "worker.pem", "worker-key.pem");
    assertThat(certFiles.get("prometheus"))
        .containsExactlyInAnyOrder("ca.pem", "monitor.pem", "monitor-key.pem");

    assertThat(Files.readAllLines(ROOT.resolve(".gitignore"))).contains(CERTS_DEFAULT + "/");
    assertThat(Files.readAllLines(ROOT.resolve(".dockerignore"))).contains(CERTS_DEFAULT + "/");
  }

  @Test
  void theSetupJobCreatesExactlyTheWorkflowsSearchAttributesInTheWorkersNamespace() {
    Map<String, String> setup = environment(services.get("temporal-setup"));
    List<String> created = List.of(setup.get("SEARCH_ATTRIBUTES").trim().split("\\s+"));
    assertThat(created).containsExactlyElementsOf(
        SearchAttributeKeys.ALL.stream().map(SearchAttributeKey::getName).toList());
    assertThat(SearchAttributeKeys.ALL).as("the job creates them as Keyword")
        .allMatch(k -> k.getValueType() == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD);
    assertThat(created).hasSizeLessThanOrEqualTo(SQL_VISIBILITY_KEYWORD_COLUMNS);
    Map<String, String> worker = environment(services.get("worker"));
    assertThat(setup.get("TEMPORAL_NAMESPACE")).isEqualTo(worker.get("TEMPORAL_NAMESPACE"));
    assertThat(setup.get("TEMPORAL_ADDRESS")).isEqualTo(worker.get("TEMPORAL_ADDRESS"));
  }

  /**
   * The setup script run against a stand-in for the temporal CLI that records its calls and has
   * no namespace yet: the namespace first, then each search attribute, as Keyword, in it.
   */
  @Test
  void theSetupScriptCreatesTheNamespaceThenEachSearchAttribute() throws Exception {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    Path calls = tmp.resolve("calls");
    Path fake = bin.resolve("temporal");
    Files.writeString(fake, """
        #!/bin/sh
        echo "$*" >> "$CALLS"
        case "$*" in
          "operator namespace describe"*) exit 1 ;;
        esac
        """);
    Files.setPosixFilePermissions(fake, PosixFilePermissions.fromString("rwxr-xr-x"));

    JsonNode setupService = services.get("temporal-setup");
    Map<String, String> env = new LinkedHashMap<>(environment(setupService));
    env.put("CALLS", calls.toString());
    env.put("PATH", bin + File.pathSeparator + System.getenv("PATH"));
    List<String> command = new ArrayList<>();
    setupService.get("entrypoint").forEach(w -> command.add(w.asText()));
    command.set(1, bindSource(setupService, command.get(1)).toString());
    Result result = run(command, env);
    assertThat(result.exit()).as("%s", result.output()).isZero();

    String ns = env.get("TEMPORAL_NAMESPACE");
    String at = "--address " + env.get("TEMPORAL_ADDRESS");
    List<String> expected = new ArrayList<>(List.of(
        "operator cluster health " + at,
        "operator namespace describe " + at + " --namespace " + ns,
        "operator namespace create " + at + " --namespace " + ns
            + " --retention " + env.get("NAMESPACE_RETENTION")));
    for (SearchAttributeKey<String> key : SearchAttributeKeys.ALL) {
      expected.add("operator search-attribute create " + at + " --namespace " + ns
          + " --name " + key.getName() + " --type Keyword");
    }
    assertThat(Files.readAllLines(calls)).containsExactlyElementsOf(expected);
  }

  /**
   * The schema job, run against a stand-in for temporal-sql-tool that records its calls: both
   * databases the server reads (its defaults, as the compose file names none), created, set up
   * and updated from the postgres12 schemas, with the server's connection settings.
   */
  @Test
  void theSchemaScriptPreparesBothDatabasesTheServerReads() throws Exception {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    Path calls = tmp.resolve("calls");
    Path fake = bin.resolve("temporal-sql-tool");
    Files.writeString(fake, "#!/bin/sh\necho \"$*\" >> \"$CALLS\"\n");
    Files.setPosixFilePermissions(fake, PosixFilePermissions.fromString("rwxr-xr-x"));
    JsonNode schemaService = services.get("temporal-schema");
    Map<String, String> env = new LinkedHashMap<>(environment(schemaService));
    env.put("SQL_PASSWORD", "from-the-test");
    env.put("CALLS", calls.toString());
    env.put("PATH", bin + File.pathSeparator + System.getenv("PATH"));
    Result result = run(List.of("sh",
        bindSource(schemaService, "/scripts/temporal-schema.sh").toString()), env);
    assertThat(result.exit()).as("%s", result.output()).isZero();

    Map<String, String> server = environment(services.get("temporal"));
    assertThat(server).doesNotContainKeys("DBNAME", "VISIBILITY_DBNAME");
    assertThat(server.get("DB")).isEqualTo("postgres12");
    assertThat(server.get("POSTGRES_SEEDS")).isEqualTo(env.get("POSTGRES_SEEDS"));
    assertThat(server.get("DB_PORT")).isEqualTo(env.get("DB_PORT"));
    assertThat(server.get("POSTGRES_USER")).isEqualTo(env.get("POSTGRES_USER"));
    String connect = "--plugin postgres12 --ep " + server.get("POSTGRES_SEEDS") + " -p "
        + server.get("DB_PORT") + " -u " + server.get("POSTGRES_USER");
    List<String> expected = new ArrayList<>();
    for (String[] db : List.of(new String[] {"temporal", "temporal"},
        new String[] {"temporal_visibility", "visibility"})) {
      String on = connect + " --db " + db[0];
      expected.addAll(List.of(on + " create", on + " setup-schema -v 0.0",
          on + " update-schema -d /etc/temporal/schema/postgresql/v12/" + db[1] + "/versioned"));
    }
    assertThat(Files.readAllLines(calls)).containsExactlyElementsOf(expected);
  }

  /**
   * The same script against a real server ({@code temporal server start-dev}, on ports of its
   * own) with the real CLI, in a namespace it has to create, twice: the admin-tools image ships
   * this CLI's 1.5 line, so the flags and the wait for a new namespace are the ones it needs.
   */
  @Test
  void theSetupScriptPreparesARealServerAndCanRunAgain() throws Exception {
    String temporal = which("temporal");
    assumeTrue(temporal != null, "the temporal CLI is not on the PATH; ./run-tests builds it "
        + "into ~/go/bin");
    int port = FreePorts.next();
    String address = "127.0.0.1:" + port;
    Process server = new ProcessBuilder(temporal, "server", "start-dev", "--headless",
        "--ip", "127.0.0.1", "--port", String.valueOf(port),
        "--ui-port", String.valueOf(FreePorts.next()), "--http-port", String.valueOf(FreePorts.next()),
        "--metrics-port", String.valueOf(FreePorts.next()), "--log-level", "warn")
        .redirectErrorStream(true).redirectOutput(tmp.resolve("server.log").toFile()).start();
    try {
      JsonNode setupService = services.get("temporal-setup");
      Map<String, String> env = new LinkedHashMap<>(environment(setupService));
      env.put("TEMPORAL_ADDRESS", address);
      env.put("TEMPORAL_NAMESPACE", "compose-check");
      env.put("SETUP_TIMEOUT_SECONDS", "120");
      env.put("HOME", System.getProperty("user.home"));
      env.put("PATH", Path.of(temporal).getParent() + File.pathSeparator + System.getenv("PATH"));
      List<String> command = List.of("sh",
          bindSource(setupService, "/scripts/temporal-setup.sh").toString());
      for (String run : List.of("first", "second")) {
        Result result = run(command, env);
        System.out.printf("temporal-setup.sh, %s run against start-dev:%n%s", run,
            result.output());
        assertThat(result.exit()).as("%s run: %s", run, result.output()).isZero();
      }
      assertThat(server.isAlive()).as("the test's own server answered (%s)",
          Files.readString(tmp.resolve("server.log"))).isTrue();

      Result listed = run(List.of(temporal, "operator", "search-attribute", "list",
          "--address", address, "--namespace", "compose-check", "-o", "json"), env);
      assertThat(listed.exit()).as(listed.output()).isZero();
      JsonNode custom = new ObjectMapper().readTree(listed.output()).get("customAttributes");
      Map<String, String> types = new LinkedHashMap<>();
      custom.fields().forEachRemaining(f -> types.put(f.getKey(), f.getValue().asText()));
      Map<String, String> expected = new LinkedHashMap<>();
      SearchAttributeKeys.ALL.forEach(k -> expected.put(k.getName(), k.getValueType().name()));
      assertThat(types).containsExactlyInAnyOrderEntriesOf(expected);

      Result described = run(List.of(temporal, "operator", "namespace", "describe",
          "--address", address, "--namespace", "compose-check", "-o", "json"), env);
      assertThat(new ObjectMapper().readTree(described.output()).path("config")
          .path("workflowExecutionRetentionTtl").asText())
          .as("retention %s", env.get("NAMESPACE_RETENTION")).isEqualTo("2592000s");
    } finally {
      server.destroy();
      if (!server.waitFor(30, TimeUnit.SECONDS)) {
        server.destroyForcibly().waitFor();
      }
    }
  }

  @Test
  void theWorkerGetsItsEnvironmentAndAConfigurationNamingTheComposeServices() throws IOException {
    JsonNode workerService = services.get("worker");
    Map<String, String> env = environment(workerService);
    assertThat(env.keySet()).containsExactlyInAnyOrderElementsOf(WORKER_ENV);
    assertThat(env.get("WORKER_HTTP_ADDRESS")).isEqualTo("0.0.0.0");
    assertThat(env.get("WORKER_HTTP_PORT")).matches("\\d+");
    assertThat(words(workerService.get("command")))
        .containsExactly("worker", "--config", env.get("SITE_RECOVERY_CONFIG"));
    assertThat(workerService.has("ports")).as("replicas would collide on a published port")
        .isFalse();
    assertThat(workerService.has("container_name")).isFalse();

    String[] temporal = env.get("TEMPORAL_ADDRESS").split(":");
    assertThat(services.has(temporal[0])).as("service %s", temporal[0]).isTrue();
    assertThat(words(services.get(temporal[0]).get("ports")))
        .anyMatch(p -> p.endsWith(":" + temporal[1]));

    SiteRecoveryConfig config =
        SiteRecoveryConfig.load(bindSource(workerService, env.get("SITE_RECOVERY_CONFIG")));
    assertThat(config.temporal()).isEqualTo(env.get("TEMPORAL_ADDRESS"));
    assertThat(config.namespace()).isEqualTo(env.get("TEMPORAL_NAMESPACE"));
    assertThat(mounts(workerService)).filteredOn(m -> m.target().endsWith("operator-key.pem"))
        .singleElement().extracting(m -> Path.of(m.target()).getParent().toString())
        .isEqualTo(config.certs());

    Map<String, List<String>> agents = agentCommands();
    assertThat(agents.keySet()).containsExactlyInAnyOrderElementsOf(config.sites().keySet());
    config.sites().forEach((site, url) -> {
      URI uri = URI.create(url);
      assertThat(uri.getScheme()).isEqualTo("https");
      assertThat(agentService(site)).as("the URL of site %s", site).isEqualTo(uri.getHost());
      List<String> agent = agents.get(site);
      assertThat(option(agent, "--http")).isEqualTo(String.valueOf(uri.getPort()));
      assertThat(option(agent, "--bind")).isEqualTo("0.0.0.0");
      String partner = config.partners().get(site);
      assertThat(option(agent, "--peer")).isEqualTo(partner + "=" + config.sites().get(partner));
    });
  }

  @Test
  void theUiConfigurationNamesTheFrontendAndTheDefaultNamespace() throws IOException {
    JsonNode ui = services.get("temporal-ui");
    Path dir = bindSource(ui, "/home/ui-server/config");
    Path file = dir.resolve("docker.yaml");
    JsonNode config = read(file);
    Map<String, String> worker = environment(services.get("worker"));
    assertThat(config.get("temporalGrpcAddress").asText())
        .isEqualTo(worker.get("TEMPORAL_ADDRESS"));
    assertThat(config.get("defaultNamespace").asText())
        .isEqualTo(worker.get("TEMPORAL_NAMESPACE"));
    assertThat(config.get("enableUi").asBoolean()).isTrue();
    assertThat(words(ui.get("ports"))).containsExactly("127.0.0.1:8080:" + config.get("port"));
    // ui-server renders a config file as a Go template when its first KiB says so; ours is YAML.
    String head = Files.readString(file);
    assertThat(head.substring(0, Math.min(1024, head.length()))).doesNotContain("enable-template");
  }

  @Test
  void prometheusScrapesEveryAgentAndEveryWorkerReplicaWithTheMonitorCertificate()
      throws IOException {
    JsonNode prometheus = services.get("prometheus");
    Path configFile = bindSource(prometheus, "/etc/prometheus/prometheus.yml");
    JsonNode config = read(configFile);
    for (JsonNode ruleFile : config.get("rule_files")) {
      assertThat(bindSource(prometheus, "/etc/prometheus/" + ruleFile.asText())).exists();
    }
    Set<String> mountedCerts = new TreeSet<>();
    mounts(prometheus).forEach(m -> mountedCerts.add(m.target()));
    Map<String, JsonNode> jobs = new LinkedHashMap<>();
    config.get("scrape_configs").forEach(job -> jobs.put(job.get("job_name").asText(), job));

    JsonNode agentsJob = jobs.get("site-recovery-agents");
    assertThat(agentsJob.get("scheme").asText()).isEqualTo("https");
    assertThat(agentsJob.get("metrics_path").asText()).isEqualTo("/metrics");
    List<String> expectedAgents = new ArrayList<>();
    agentCommands().forEach((site, command) -> expectedAgents.add(
        agentService(site) + ":" + option(command, "--http")));
    assertThat(words(agentsJob.get("static_configs").get(0).get("targets")))
        .containsExactlyInAnyOrderElementsOf(expectedAgents);

    JsonNode workerJob = jobs.get("site-recovery-worker");
    Map<String, String> workerEnv = environment(services.get("worker"));
    assertThat(workerJob.get("scheme").asText()).isEqualTo("https");
    assertThat(workerJob.get("metrics_path").asText()).isEqualTo("/actuator/prometheus");
    JsonNode dns = workerJob.get("dns_sd_configs").get(0);
    assertThat(words(dns.get("names"))).containsExactly("worker");
    assertThat(dns.get("port").asText()).isEqualTo(workerEnv.get("WORKER_HTTP_PORT"));
    assertThat(workerJob.get("tls_config").get("server_name").asText()).isEqualTo("worker");

    for (JsonNode job : List.of(agentsJob, workerJob)) {
      JsonNode tls = job.get("tls_config");
      assertThat(List.of(tls.get("ca_file").asText(), tls.get("cert_file").asText(),
          tls.get("key_file").asText()))
          .as("%s's certificate files are mounted", job.get("job_name"))
          .allMatch(mountedCerts::contains)
          .anyMatch(f -> f.endsWith("/monitor.pem"));
    }
  }

  /**
   * The image: its build copies every Maven module and nothing else of the repository (so no
   * certificate), runs the jar it built as a user other than root, and keeps the agents' data
   * where the compose file puts a volume.
   */
  @Test
  void theImageBuildsEveryModuleAndKeepsAgentDataInAVolume() throws IOException {
    List<String> dockerfile = Files.readAllLines(ROOT.resolve("Dockerfile"));
    List<String> modules = new ArrayList<>();
    Matcher module = Pattern.compile("<module>([^<]+)</module>")
        .matcher(Files.readString(ROOT.resolve("pom.xml")));
    while (module.find()) {
      modules.add(module.group(1));
    }
    Set<String> copiedPoms = new TreeSet<>();
    Set<String> copiedSources = new TreeSet<>();
    String jar = null;
    for (String line : dockerfile) {
      String[] w = line.trim().split("\\s+");
      if (!w[0].equals("COPY")) {
        continue;
      }
      if (w[1].startsWith("--from=")) {
        jar = w[3];
        assertThat(w[2]).endsWith("/workers/target/site-recovery.jar");
      } else if (w[1].endsWith("/pom.xml")) {
        copiedPoms.add(w[1].substring(0, w[1].indexOf('/')));
      } else if (w[1].endsWith("/src")) {
        copiedSources.add(w[1].substring(0, w[1].indexOf('/')));
      } else {
        assertThat(w[1]).as("the build copies only the modules: %s", line).isEqualTo("pom.xml");
      }
    }
    assertThat(copiedPoms).containsExactlyInAnyOrderElementsOf(modules);
    assertThat(copiedSources).containsExactlyInAnyOrderElementsOf(modules);
    assertThat(Files.readString(ROOT.resolve("workers/pom.xml")))
        .contains("<finalName>site-recovery</finalName>");
    String entrypoint = dockerfile.stream().filter(l -> l.startsWith("ENTRYPOINT")).findFirst()
        .orElseThrow();
    assertThat(entrypoint).contains("\"" + jar + "\"");
    assertThat(dockerfile).filteredOn(l -> l.startsWith("USER ")).singleElement()
        .isNotEqualTo("USER root");

    String volume = dockerfile.stream().filter(l -> l.startsWith("VOLUME ")).findFirst()
        .orElseThrow().substring("VOLUME ".length()).trim();
    agentCommands().forEach((site, command) -> {
      assertThat(option(command, "--data")).isEqualTo(volume);
      assertThat(mounts(services.get(agentService(site))))
          .anyMatch(m -> !m.bind() && m.target().equals(volume));
    });
  }

  // --- the compose file ---

  record Mount(boolean bind, String source, String target, boolean readOnly) {}

  /** Volumes in either syntax, with ${VAR:-default} in a source replaced by its default. */
  private static List<Mount> mounts(JsonNode service) {
    List<Mount> mounts = new ArrayList<>();
    for (JsonNode v : service.path("volumes")) {
      if (v.isTextual()) {
        String[] parts = interpolate(v.asText()).split(":");
        boolean bind = parts[0].startsWith(".") || parts[0].startsWith("/");
        mounts.add(new Mount(bind, parts[0], parts[1], parts.length > 2 && parts[2].equals("ro")));
      } else {
        mounts.add(new Mount("bind".equals(v.path("type").asText()),
            interpolate(v.get("source").asText()), v.get("target").asText(),
            v.path("read_only").asBoolean(false)));
      }
    }
    return mounts;
  }

  /** The repository file a service mounts at {@code target}. */
  private static Path bindSource(JsonNode service, String target) {
    return mounts(service).stream().filter(m -> m.bind() && m.target().equals(target))
        .map(m -> ROOT.resolve(m.source()).normalize()).findFirst()
        .orElseThrow(() -> new AssertionError("nothing mounted at " + target));
  }

  private static String interpolate(String s) {
    Matcher m = VARIABLE.matcher(s);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      m.appendReplacement(out, Matcher.quoteReplacement(m.group(2) == null ? "" : m.group(2)));
    }
    return m.appendTail(out).toString();
  }

  private static Map<String, String> environment(JsonNode service) {
    Map<String, String> env = new LinkedHashMap<>();
    JsonNode e = service.path("environment");
    if (e.isArray()) {
      e.forEach(kv -> env.put(kv.asText().split("=", 2)[0], kv.asText().split("=", 2)[1]));
    } else {
      e.fields().forEachRemaining(kv -> env.put(kv.getKey(), kv.getValue().asText()));
    }
    return env;
  }

  /** Each agent service's command, by the site it serves. */
  private Map<String, List<String>> agentCommands() {
    Map<String, List<String>> agents = new LinkedHashMap<>();
    services.fields().forEachRemaining(s -> {
      List<String> command = words(s.getValue().path("command"));
      if (!command.isEmpty() && command.get(0).equals("agent")) {
        agents.put(option(command, "--site"), command);
      }
    });
    return agents;
  }

  private String agentService(String site) {
    List<String> names = new ArrayList<>();
    services.fields().forEachRemaining(s -> {
      List<String> command = words(s.getValue().path("command"));
      if (!command.isEmpty() && command.get(0).equals("agent")
          && site.equals(option(command, "--site"))) {
        names.add(s.getKey());
      }
    });
    assertThat(names).as("the agent services of site %s", site).hasSize(1);
    return names.get(0);
  }

  private static String option(List<String> command, String name) {
    int i = command.indexOf(name);
    assertThat(i).as("%s in %s", name, command).isNotNegative();
    return command.get(i + 1);
  }

  private static List<String> words(JsonNode list) {
    List<String> words = new ArrayList<>();
    list.forEach(w -> words.add(w.asText()));
    return words;
  }

  private static JsonNode read(Path file) {
    try {
      return YAML.readTree(file.toFile());
    } catch (IOException e) {
      throw new AssertionError("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  // --- processes ---

  record Result(int exit, String output) {}

  private Result dockerCompose(Path envFile, Map<String, String> env) throws Exception {
    Map<String, String> environment = new LinkedHashMap<>(System.getenv());
    environment.remove("TEMPORAL_DB_PASSWORD");
    environment.remove("SR_CERTS");
    environment.putAll(env);
    return run(List.of("docker-compose", "--env-file", envFile.toString(), "-f",
        ROOT.resolve("docker-compose.yml").toString(), "config", "-q"), environment);
  }

  private Result run(List<String> command, Map<String, String> env) throws Exception {
    Path out = Files.createTempFile(tmp, "out", ".txt");
    ProcessBuilder builder = new ProcessBuilder(command).directory(ROOT.toFile())
        .redirectErrorStream(true).redirectOutput(out.toFile());
    builder.environment().clear();
    builder.environment().putAll(env);
    Process p = builder.start();
    if (!p.waitFor(2, TimeUnit.MINUTES)) {
      p.destroyForcibly().waitFor();
      throw new AssertionError("still running after 2 minutes: " + command);
    }
    return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
  }

  private static boolean onPath(String program) {
    return which(program) != null;
  }

  private static String which(String program) {
    return Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
        .map(d -> Path.of(d, program)).filter(Files::isExecutable).findFirst()
        .map(Path::toString).orElse(null);
  }


  private static Path repositoryRoot() {
    Path here = Path.of("").toAbsolutePath();
    while (here != null && !Files.exists(here.resolve("run-tests"))) {
      here = here.getParent();
    }
    if (here == null) {
      throw new IllegalStateException("no repository root (with run-tests) above "
          + Path.of("").toAbsolutePath());
    }
    return here;
  }
}
