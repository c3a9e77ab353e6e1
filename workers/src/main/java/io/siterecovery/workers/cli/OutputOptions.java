package io.siterecovery.workers.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.siterecovery.agent.Json;
import java.io.PrintStream;
import java.util.function.Supplier;
import picocli.CommandLine.Option;

/**
 * {@code --output text|json}, shared by every verb that prints a result: with json, stdout holds
 * one JSON document and nothing else (progress and errors go to stderr), for scripts and jq.
 */
final class OutputOptions {
  enum Format { text, json }

  @Option(names = "--output", defaultValue = "text", paramLabel = "text|json",
      description = "text (default) or json: one JSON document on stdout")
  Format format = Format.text;

  boolean json() {
    return format == Format.json;
  }

  /** Where progress and remarks go: stdout for a person, stderr when stdout is the document. */
  PrintStream remarks() {
    return json() ? System.err : System.out;
  }

  /** The result: {@code document} as JSON, or the text a person reads. */
  void print(Object document, Supplier<String> text) {
    System.out.println(json() ? toJson(document) : text.get());
  }

  static String toJson(Object document) {
    try {
      return Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(document);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write the result as JSON: " + e.getMessage(), e);
    }
  }

  /** What a verb that starts or signals a workflow did, as its JSON result. */
  record Sent(String workflowId, String action, String detail) {}
}
