package io.siterecovery.workflows.common;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.temporal.api.common.v1.Payload;
import io.temporal.common.converter.DataConverterException;
import io.temporal.common.converter.DefaultDataConverter;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * Workers read what operators type strictly; the CLI reads what a newer worker answers leniently,
 * so that the field a later version adds to {@code status} does not break an older CLI.
 */
class SiteRecoveryDataConverterTest {
  /** A status as a newer worker would answer it: one field this build does not know. */
  private static final Optional<io.temporal.api.common.v1.Payloads> NEWER_STATUS = Optional.of(
      io.temporal.api.common.v1.Payloads.newBuilder().addPayloads(json(
          "{\"vm\":\"web01\",\"state\":\"PROTECTED\",\"aFieldFromTheFuture\":42}")).build());

  @Test
  void theCliReadsAStatusWithAFieldItDoesNotKnow() {
    ProtectionStatus status = SiteRecoveryDataConverter.forClients()
        .fromPayloads(0, NEWER_STATUS, ProtectionStatus.class, ProtectionStatus.class);
    assertThat(status.vm()).isEqualTo("web01");
    assertThat(status.state()).isEqualTo(ProtectionState.PROTECTED);
  }

  @Test
  void workersStillRefuseAFieldTheyDoNotKnow() {
    var signal = Optional.of(io.temporal.api.common.v1.Payloads.newBuilder().addPayloads(json(
        "{\"reason\":\"go\",\"aFieldFromTheFuture\":42}")).build());
    assertThatThrownBy(() -> SiteRecoveryDataConverter.create()
        .fromPayloads(0, signal, OperatorRequest.class, OperatorRequest.class))
        .isInstanceOf(DataConverterException.class).hasStackTraceContaining("aFieldFromTheFuture");
    assertThat(SiteRecoveryDataConverter.forClients()
        .fromPayloads(0, signal, OperatorRequest.class, OperatorRequest.class).reason())
        .isEqualTo("go");
  }

  private static Payload json(String text) {
    return DefaultDataConverter.newDefaultInstance().toPayload(text).orElseThrow().toBuilder()
        .setData(com.google.protobuf.ByteString.copyFromUtf8(text)).build();
  }
}
