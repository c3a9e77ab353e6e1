package io.siterecovery.agent.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * curl as an oracle we did not write: its own TLS stack (OpenSSL) checks the agent's certificate
 * against the CA and the host name, and presents whatever client certificate a test gives it.
 */
public final class Curl {
  /** How curl ended: its exit code, the HTTP status (0 when none came), headers, body, stderr. */
  public record Result(int exitCode, int status, String headers, String body, String stderr) {
    /** An HTTP answer arrived (any status). */
    public boolean answered() {
      return status != 0;
    }

    @Override
    public String toString() {
      return "curl exit " + exitCode + ", status " + status + "\n" + headers + body
          + "\n--- stderr ---\n" + stderr;
    }
  }

  private Curl() {}

  /** TLS options presenting {@code stem}.pem and {@code stem}-key.pem from {@code dir}. */
  public static List<String> as(Path dir, String stem) {
    return List.of("--cert", dir.resolve(stem + ".pem").toString(),
        "--key", dir.resolve(stem + "-key.pem").toString());
  }

  /** Runs curl with the tests' CA as its only trust anchor, TLS 1.3, and {@code args}. */
  public static Result run(List<String> args) {
    try {
      Path work = Files.createTempDirectory("sr-curl-");
      try {
        Path headers = work.resolve("headers");
        Path body = work.resolve("body");
        Path stderr = work.resolve("stderr");
        List<String> command = new ArrayList<>(List.of("curl", "-sS", "--max-time", "30",
            "--tlsv1.3", "--cacert", TestCerts.dir().resolve("ca.pem").toString(),
            "-D", headers.toString(), "-o", body.toString(), "-w", "%{http_code}"));
        command.addAll(args);
        Process process = new ProcessBuilder(command)
            .redirectError(stderr.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
            .start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
          process.destroyForcibly().waitFor();
          throw new AssertionError("curl " + args + " did not finish within 60 s");
        }
        String code = out.trim();
        return new Result(process.exitValue(), code.matches("[0-9]{3}") ? Integer.parseInt(code) : 0,
            read(headers), read(body), read(stderr));
      } finally {
        try (var files = Files.list(work)) {
          for (Path p : files.toList()) {
            Files.deleteIfExists(p);
          }
        }
        Files.deleteIfExists(work);
      }
    } catch (IOException e) {
      throw new AssertionError("cannot run curl", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted running curl", e);
    }
  }

  private static String read(Path file) throws IOException {
    return Files.exists(file) ? Files.readString(file, StandardCharsets.UTF_8) : "";
  }
}
