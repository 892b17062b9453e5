"""Apache Kafka in KRaft mode as a plain process: one node that is both broker and controller.

The jars come from Maven Central (``kafka_2.13`` plus a logging binding) into the cache; the
config and the log segments live under ``<var_dir>/kafka/``.  The broker logs to stdout, which
the supervisor writes to ``kafka.log``.

Nothing is anonymous.  Clients log in with SASL/SCRAM on the client listener and get only what
their role's ACLs grant (``super.users`` is ``admin`` alone).  Two more listeners sit on
loopback, both SASL/PLAIN with the admin password from the (0600) properties file: the
controller's, and an internal broker listener that inter-broker traffic, the health check and
the bootstrap use.  PLAIN needs no user in the metadata log, so a data directory formatted
before SCRAM existed here comes up, and the bootstrap then creates the SCRAM users.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from ops.services.base import Launch, Service, ServiceFailed, port_open, require_command
from ops.services.maven import classpath, fetch_jars
from ops.settings import Settings

# Fixed so a re-format (``--ignore-formatted``) never fights an existing data directory.
# Base64 of the 16 bytes "IntelliDoxLocal1", which is what Kafka's Uuid parser wants.
CLUSTER_ID = "SW50ZWxsaURveExvY2FsMQ"
LOG4J2_VERSION = "2.24.3"  # the log4j2 line Kafka 4.x ships in its own distribution
LOOPBACK = "127.0.0.1"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"

# Kafka 4.x logs through log4j2; 3.x through reload4j (log4j 1 API).  Console only: the
# supervisor captures stdout, so no rolling files of our own.
LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = info
"""
LOG4J1_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
"""


class Kafka(Service):
    name = "kafka"
    start_timeout_s = 90.0

    def __init__(self, settings: Settings, admin_config: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        # How the bootstrap is admin: by default on the local broker's internal PLAIN listener
        # (the SCRAM users do not exist yet); a broker started elsewhere whose admin already
        # has SCRAM credentials (the tests' container) is given the admin's client config.
        self.admin_config = admin_config

    @property
    def version(self) -> str:
        return self.settings.kafka.version

    @property
    def legacy_logging(self) -> bool:
        return int(self.version.split(".")[0]) < 4

    @property
    def dist_dir(self) -> Path:
        return self.settings.cache_dir / f"kafka-{self.version}"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_config_file(self) -> Path:
        return self.home / ("log4j.properties" if self.legacy_logging else "log4j2.properties")

    @property
    def data_dir(self) -> Path:
        # Per version: a newer Kafka may upgrade the metadata log in a way an older one
        # cannot read back, so switching versions must not share the directory.
        return self.home / f"data-{self.version}"

    def ports(self) -> list[int]:
        s = self.settings
        return [s.kafka.port, s.kafka.controller_port, s.kafka.internal_port]

    def check_prerequisites(self) -> None:
        self.java()
        if not (self.dist_dir / ".complete").exists():
            require_command("mvn", "apt-get install -y maven")

    def java(self) -> str:
        candidate = self.settings.java17_home / "bin" / "java"
        if candidate.exists():
            return str(candidate)
        return require_command("java", "apt-get install -y openjdk-17-jre-headless")

    def artifacts(self) -> list[str]:
        kafka = f"org.apache.kafka:kafka_2.13:{self.version}"
        if self.legacy_logging:
            return [kafka, "org.slf4j:slf4j-reload4j:1.7.36"]
        log4j = "org.apache.logging.log4j"
        return [
            kafka,
            f"{log4j}:log4j-slf4j-impl:{LOG4J2_VERSION}",
            f"{log4j}:log4j-core:{LOG4J2_VERSION}",
        ]

    def install(self) -> None:
        fetch_jars(self.dist_dir, self.artifacts())

    def configure(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # It holds the admin password: 0600, also when the file already existed.
        fd = os.open(self.properties_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.server_properties())
        self.properties_file.chmod(0o600)
        self.log_config_file.write_text(
            LOG4J1_PROPERTIES if self.legacy_logging else LOG4J2_PROPERTIES
        )
        self._format_storage()

    def server_properties(self) -> str:
        props = broker_properties(self.settings, self.data_dir)
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _format_storage(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        argv = [
            self.java(),
            "-cp",
            self._classpath(),
            *self._log_options(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            CLUSTER_ID,
            "-c",
            str(self.properties_file),
            "--ignore-formatted",
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceFailed(f"kafka storage format failed:\n{done.stdout}{done.stderr}")

    def launch(self) -> Launch:
        heap = f"{self.settings.kafka.heap_mb}m"
        argv = [
            self.java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            *self._log_options(),
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.properties_file),
        ]
        return Launch(argv=argv)

    def _classpath(self) -> str:
        return classpath(self.dist_dir / "lib")

    def _log_options(self) -> list[str]:
        if self.legacy_logging:
            return [f"-Dlog4j.configuration=file:{self.log_config_file}"]
        return [f"-Dlog4j2.configurationFile={self.log_config_file}"]

    def healthy(self) -> bool:
        # The port opens before the broker has registered with the controller; only a
        # metadata answer that lists a broker means clients can work.
        if not port_open(self.settings.bind.host, self.settings.kafka.port):
            return False
        return broker_answers(internal_admin_config(self.settings))

    def bootstrap(self) -> None:
        """SCRAM users, then topics and ACLs (over the internal listener unless given another
        admin); then check that every role can log in before any of our processes starts."""
        from confluent_kafka.admin import AdminClient

        from ops.bootstrap.acls import ensure_users, wait_logins
        from ops.bootstrap.topics import create_topics

        config = self.admin_config or internal_admin_config(self.settings)
        ensure_users(AdminClient(config), self.settings)
        create_topics(
            self.settings,
            prefix=self.settings.topic_prefix,
            partitions=self.settings.kafka.partitions,
            admin_config=config,
        )
        wait_logins(self.settings)


def broker_properties(s: Settings, data_dir: Path | str) -> dict[str, str]:
    """The broker's configuration: one KRaft node, SASL and ACLs (the local runtime's, and the
    tests' container's, which changes only where it listens)."""
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOOPBACK}:{s.kafka.controller_port}",
        **listener_properties(s),
        "log.dirs": str(data_dir),
        "num.partitions": str(s.kafka.partitions),
        "auto.create.topics.enable": "false",  # every topic is declared in schemas/topics.py
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",  # tests join groups many times a run
        "offsets.topic.num.partitions": "10",  # fewer than 50: faster start, less RSS
        "num.network.threads": "2",
        "num.io.threads": "4",
    }


def listener_properties(s: Settings) -> dict[str, str]:
    """Listeners, SASL and the authorizer (see the module docstring)."""
    plain = plain_jaas(s.kafka.admin_password)
    mechanism = s.kafka.sasl_mechanism
    return {
        "listeners": f"CLIENT://{s.bind.host}:{s.kafka.port},"
        f"INTERNAL://{LOOPBACK}:{s.kafka.internal_port},"
        f"CONTROLLER://{LOOPBACK}:{s.kafka.controller_port}",
        "advertised.listeners": f"CLIENT://{s.kafka.host}:{s.kafka.port},"
        f"INTERNAL://{LOOPBACK}:{s.kafka.internal_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,"
        "CONTROLLER:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": mechanism,
        "listener.name.client.sasl.enabled.mechanisms": mechanism,
        f"listener.name.client.{mechanism.lower()}.sasl.jaas.config": SCRAM_LOGIN,
        "listener.name.internal.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.internal.plain.sasl.jaas.config": plain,
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": plain,
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": "User:admin",
    }


def plain_jaas(password: str) -> str:
    """The broker's PLAIN login (as admin) and its one PLAIN user (admin)."""
    if not password.isprintable() or any(c in password for c in '"\\'):
        raise ValueError('kafka_admin_password: printable characters other than " and \\')
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="admin" password="{password}" user_admin="{password}";'
    )


def internal_admin_config(settings: Settings) -> dict[str, Any]:
    """The admin on the local broker's internal (loopback, PLAIN) listener."""
    return {
        "bootstrap.servers": f"{LOOPBACK}:{settings.kafka.internal_port}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "admin",
        "sasl.password": settings.kafka.admin_password,
    }


def broker_answers(config: dict[str, Any], timeout_s: float = 3.0) -> bool:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**config, "log_level": 0})
    try:
        return len(admin.list_topics(timeout=timeout_s).brokers) > 0
    except KafkaException:
        return False
