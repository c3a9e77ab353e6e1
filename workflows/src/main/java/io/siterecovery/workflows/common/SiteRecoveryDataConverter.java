package io.siterecovery.workflows.common;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.temporal.common.converter.DataConverter;
import io.temporal.common.converter.DataConverterException;
import io.temporal.common.converter.DefaultDataConverter;
import io.temporal.common.converter.JacksonJsonPayloadConverter;
import io.temporal.worker.WorkflowImplementationOptions;

/**
 * JSON as the operator types it. Unknown fields and invalid enum values are errors, and an input
 * that cannot be read fails the workflow at once instead of retrying its first task forever.
 */
public final class SiteRecoveryDataConverter {
  private SiteRecoveryDataConverter() {}

  public static DataConverter create() {
    ObjectMapper mapper = JacksonJsonPayloadConverter.newDefaultObjectMapper()
        .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
        .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
    return DefaultDataConverter.newDefaultInstance()
        .withPayloadConverterOverrides(new JacksonJsonPayloadConverter(mapper));
  }

  /**
   * For clients that only read what workflows answer (the CLI): a field a newer worker added is
   * ignored, so an operator's CLI older than the workers still reads their status. What clients
   * send is written the same way; workers keep reading it strictly.
   */
  public static DataConverter forClients() {
    ObjectMapper mapper = JacksonJsonPayloadConverter.newDefaultObjectMapper()
        .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    return DefaultDataConverter.newDefaultInstance()
        .withPayloadConverterOverrides(new JacksonJsonPayloadConverter(mapper));
  }

  public static WorkflowImplementationOptions implementationOptions() {
    @SuppressWarnings("unchecked")
    Class<? extends Throwable>[] failTypes = new Class[] {DataConverterException.class};
    return WorkflowImplementationOptions.newBuilder().setFailWorkflowExceptionTypes(failTypes).build();
  }

}
