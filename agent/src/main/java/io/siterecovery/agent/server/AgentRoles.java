package io.siterecovery.agent.server;

import io.siterecovery.agent.metrics.AgentMetrics;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.replica.ReplicaRuns;
import io.siterecovery.agent.replica.ReplicaStore;
import io.siterecovery.agent.replica.Reversal;
import io.siterecovery.agent.resync.ResyncSource;
import io.siterecovery.agent.resync.ResyncTarget;
import io.siterecovery.agent.scripts.PlanScripts;
import io.siterecovery.agent.source.ReplicationSource;
import io.siterecovery.agent.testclone.TestClones;

/** The roles the API dispatches to, one per room of the agent. */
public record AgentRoles(ReplicationSource source, ReplicaStore replicas, ReplicaRuns runs,
    Reversal reversal,
    ResyncSource resyncSource, ResyncTarget resyncTarget, TestClones testClones,
    PlanScripts scripts, AgentMetrics metrics, BucketRecoveries bucketRecoveries,
    BucketShipper buckets) {}
