# The site-recovery image: one jar for the worker, the agents and the CLI
# (`docker run IMAGE <verb> ...`, the verbs of ./site-recovery). Used by docker-compose.yml.
#
# Certificates are never part of the image: the build copies only the Maven modules, and the
# compose file mounts each service's certificate and key read-only at run time.

# Build stage: the runnable jar, with neither the tests nor their dependencies.
FROM maven:3-eclipse-temurin-17 AS build
WORKDIR /src
COPY pom.xml ./
COPY agent/pom.xml agent/
COPY activities/pom.xml activities/
COPY workflows/pom.xml workflows/
COPY workers/pom.xml workers/
COPY agent/src agent/src
COPY activities/src activities/src
COPY workflows/src workflows/src
COPY workers/src workers/src
RUN mvn -B -q -Dmaven.test.skip=true package -pl workers -am

# Runtime stage: a JRE and the jar. The agent runs no external tool of its own (quiesce hooks and
# plan scripts are the operator's files in its data directory), so nothing else is installed
# except curl, which the compose health checks use.
FROM eclipse-temurin:17-jre
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 site-recovery \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/site-recovery \
        --shell /usr/sbin/nologin site-recovery \
    && mkdir -p /var/lib/site-recovery /etc/site-recovery/certs \
    && chown site-recovery:site-recovery /var/lib/site-recovery
COPY --from=build /src/workers/target/site-recovery.jar /opt/site-recovery/site-recovery.jar
# Services log to the terminal (docker logs); the CLI's log file would only fill the container.
ENV SITE_RECOVERY_LOG_FILE=/dev/null
USER site-recovery
WORKDIR /var/lib/site-recovery
# An agent's disks, change logs, recovery points and hooks: a volume, never the container's layer.
VOLUME /var/lib/site-recovery
ENTRYPOINT ["java", "-jar", "/opt/site-recovery/site-recovery.jar"]
CMD ["--help"]
