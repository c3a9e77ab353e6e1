package io.siterecovery.workers.chaos;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A main class of this product in a JVM of its own, started from the classpath this process runs
 * on (the classpath itself, or the runnable jar through Spring Boot's {@code PropertiesLauncher}).
 * It exists so that the chaos harness can {@code kill -9} it ({@link Process#destroyForcibly()}
 * sends SIGKILL on Linux): a thread in our own JVM cannot be killed like that, and a fault that
 * lets shutdown hooks or finally blocks run is not the fault we want to measure.
 */
final class ChildJvm {
  private final Process process;
  private final String name;

  private ChildJvm(Process process, String name) {
    this.process = process;
    this.name = name;
  }

  /**
   * Starts {@code mainClass} with {@code args}; stderr and stdout go to the end of {@code log}.
   * Returns once a line of stdout matches {@code ready} (null: at once), or fails after 90 s.
   */
  static ChildJvm start(String name, Class<?> mainClass, List<String> jvmOptions,
      List<String> args, Path log, Map<String, String> env, Predicate<String> ready)
      throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    if (mainClass.getClassLoader() == ClassLoader.getSystemClassLoader()) {
      command.add(mainClass.getName());
    } else { // nested in the Spring Boot jar: let its launcher build the class path
      command.add("-Dloader.main=" + mainClass.getName());
      command.add("org.springframework.boot.loader.launch.PropertiesLauncher");
    }
    command.addAll(args);
    ProcessBuilder builder = new ProcessBuilder(command)
        .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
    builder.environment().putAll(env);
    Process p = builder.start();
    CompletableFuture<String> readyLine = new CompletableFuture<>();
    if (ready == null) {
      readyLine.complete("");
    }
    // Drains stdout for the life of the process (a full pipe would block the child) into the
    // log as well: a test classpath's logback configuration logs to stdout.
    Thread reader = new Thread(() -> {
      try (BufferedReader out = new BufferedReader(
          new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
          java.io.Writer tee = Files.newBufferedWriter(log, StandardCharsets.UTF_8,
              StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
        for (String line; (line = out.readLine()) != null; ) {
          tee.write(line);
          tee.write('\n');
          tee.flush();
          if (ready != null && ready.test(line)) {
            readyLine.complete(line);
          }
        }
      } catch (IOException e) {
        readyLine.completeExceptionally(e);
      }
      readyLine.completeExceptionally(new IOException(name + " exited before it was ready"));
    }, name + "-stdout");
    reader.setDaemon(true);
    reader.start();
    ChildJvm child = new ChildJvm(p, name);
    try {
      child.readyLine = readyLine.get(90, TimeUnit.SECONDS);
      return child;
    } catch (Exception e) {
      p.destroyForcibly();
      throw new IOException(name + " did not start (log: " + log + "): " + e, e);
    }
  }

  private String readyLine;

  String readyLine() {
    return readyLine;
  }

  long pid() {
    return process.pid();
  }

  boolean alive() {
    return process.isAlive();
  }

  /** SIGKILL, and waits until the kernel has reaped it (its ports are free again). */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  /** SIGTERM (shutdown hooks run), then SIGKILL after 30 s. */
  void stop() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      kill();
    }
  }

  @Override
  public String toString() {
    return name + " (pid " + process.pid() + ")";
  }
}
