"""The one settings module: every knob is an ``INTELLIDOX_*`` environment variable.

Nothing else in the project reads ``os.environ``.  A process's entry point calls
:func:`get_settings` once and hands the :class:`Settings` on; no module reads them when it is
imported.  Each dependency (Kafka, Postgres, Cassandra, S3, clamd) has a section with its own
address and credentials (``INTELLIDOX_KAFKA_HOST``, ``INTELLIDOX_POSTGRES_PASSWORD``, ...), and
where our processes listen is a section of its own (``bind``).  Defaults match the local runtime
that ``intellidox up`` starts, so a fresh clone works with no configuration at all.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

PREFIX = "INTELLIDOX_"


def _default_var_dir() -> Path:
    # Postgres refuses to run as root and runs as the ``postgres`` user, which cannot enter
    # /root; so root keeps its data in /var/lib, anyone else in their home.
    if os.geteuid() == 0:
        return Path("/var/lib/intellidox")
    return Path.home() / ".local" / "share" / "intellidox"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "intellidox"


LOCALHOST = "127.0.0.1"
# A section's ``host`` falls back to ``INTELLIDOX_HOST`` (one machine: the dev runtime).
_HOST_FALLBACK = {"fallback": "HOST"}


def _host() -> Any:
    return dataclasses.field(default=LOCALHOST, metadata=_HOST_FALLBACK)


def _env(name: str, default: Any) -> Any:
    """A field whose variable is ``INTELLIDOX_<name>`` instead of ``<section prefix><FIELD>``."""
    return dataclasses.field(default=default, metadata={"env": name})


class _Section:
    """A section's variables are ``INTELLIDOX_<ENV_PREFIX><FIELD>`` unless a field says."""

    ENV_PREFIX: ClassVar[str] = ""

    def with_overrides(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclasses.dataclass(frozen=True)
class KafkaSettings(_Section):
    """The brokers, and the SASL/SCRAM principals (README "Kafka principals").

    A process speaks as ``role``; the gateway, the worker and `scanner run` set their own.
    The passwords here are repository values for the local dev runtime only."""

    ENV_PREFIX: ClassVar[str] = "KAFKA_"

    host: str = _host()
    port: int = 19092
    controller_port: int = 19093
    version: str = "4.4.0"
    heap_mb: int = 512
    partitions: int = 6
    role: str = "admin"
    sasl_mechanism: str = "SCRAM-SHA-512"
    admin_password: str = "intellidox-dev-kafka-admin"
    gateway_password: str = "intellidox-dev-kafka-gateway"
    worker_password: str = "intellidox-dev-kafka-worker"
    scanner_password: str = "intellidox-dev-kafka-scanner"
    analyst_user: str = _env("ANALYST_USER", "analyst")
    analyst_password: str = _env("ANALYST_PASSWORD", "intellidox-dev-analyst")

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def internal_port(self) -> int:
        """The local runtime's loopback-only admin listener (broker-internal, bootstrap)."""
        return self.controller_port + 1


@dataclasses.dataclass(frozen=True)
class PostgresSettings(_Section):
    ENV_PREFIX: ClassVar[str] = "POSTGRES_"

    host: str = _host()
    port: int = 15432
    db: str = "intellidox"
    user: str = "intellidox"
    password: str = "intellidox-dev"

    @property
    def dsn(self) -> str:
        return (
            f"host={self.host} port={self.port} dbname={self.db} "
            f"user={self.user} password={self.password}"
        )


@dataclasses.dataclass(frozen=True)
class CassandraSettings(_Section):
    """The node and keyspace; ``user`` empty: no authentication (the local runtime's)."""

    ENV_PREFIX: ClassVar[str] = "CASSANDRA_"

    host: str = _host()
    port: int = 19042
    storage_port: int = 17000
    version: str = "5.0.9"
    heap_mb: int = 1024
    keyspace: str = "intellidox"
    user: str = ""
    password: str = ""


@dataclasses.dataclass(frozen=True)
class S3Settings(_Section):
    """The object store (SeaweedFS locally) and its filer's gRPC metadata stream."""

    ENV_PREFIX: ClassVar[str] = "S3_"

    host: str = _host()
    port: int = 18333
    access_key: str = "intellidox-dev"
    secret_key: str = "intellidox-dev-secret"
    bucket_prefix: str = "intellidox"
    region: str = "us-east-1"
    allowed_origins: str = "http://127.0.0.1:8080,http://localhost:8080"
    # The filer's gRPC (``host:port``), where `intellidox storage-events` reads the metadata
    # events that mark uploads "uploaded".  Empty: the local runtime's filer.
    filer_grpc: str = _env("FILER_GRPC", "")
    # Its mutual TLS (PEM paths): the CA of the filer's certificate, and the listener's own
    # certificate and key.  Empty: the local runtime's (ops/services/seaweedfs_tls.py).
    filer_grpc_ca: str = _env("FILER_GRPC_CA", "")
    filer_grpc_cert: str = _env("FILER_GRPC_CERT", "")
    filer_grpc_key: str = _env("FILER_GRPC_KEY", "")

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def scripts_bucket(self) -> str:
        return f"{self.bucket_prefix}-scripts"


@dataclasses.dataclass(frozen=True)
class ClamdSettings(_Section):
    """clamd over TCP (a scanner host's own socket, when it has one, goes first)."""

    ENV_PREFIX: ClassVar[str] = "CLAMD_"

    host: str = _host()
    port: int = 13310


@dataclasses.dataclass(frozen=True)
class BindSettings(_Section):
    """Where our own processes, and the local runtime's services, listen.

    Separate from the dependencies' addresses above: a gateway may listen on 0.0.0.0 while
    Kafka is another machine."""

    host: str = dataclasses.field(
        default=LOCALHOST, metadata={"env": "BIND_HOST", **_HOST_FALLBACK}
    )
    gateway_port: int = 8080
    worker_port: int = 6066  # the worker's /healthz, /readyz and /metrics
    scanner_port_base: int = 6100  # a scanner host's, the next host's + 1, ...
    storage_events_port: int = 6070  # `intellidox storage-events`' /healthz, /readyz, /metrics
    prometheus_port: int = 9090  # the local runtime's Prometheus


SECTIONS: dict[str, type[_Section]] = {
    "kafka": KafkaSettings,
    "postgres": PostgresSettings,
    "cassandra": CassandraSettings,
    "s3": S3Settings,
    "clamd": ClamdSettings,
    "bind": BindSettings,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """All configuration, read once from the environment: a section per dependency, the bind
    addresses, and the knobs of the services themselves (``INTELLIDOX_<FIELD>``)."""

    var_dir: Path = dataclasses.field(default_factory=_default_var_dir)
    cache_dir: Path = dataclasses.field(default_factory=_default_cache_dir)
    # The JDK that the local runtime's Kafka and Cassandra run on.
    java17_home: Path = Path("/usr/lib/jvm/java-17-openjdk-amd64")

    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    postgres: PostgresSettings = dataclasses.field(default_factory=PostgresSettings)
    cassandra: CassandraSettings = dataclasses.field(default_factory=CassandraSettings)
    s3: S3Settings = dataclasses.field(default_factory=S3Settings)
    clamd: ClamdSettings = dataclasses.field(default_factory=ClamdSettings)
    bind: BindSettings = dataclasses.field(default_factory=BindSettings)
    # Tests only: start the services as containers (a Docker engine must answer) instead of
    # using the running ones (tests/plugins/containers.py).
    testcontainers: bool = False

    # Gateway. The dev key is for the local run only; production keys live in Postgres.
    # Dev mode: only the local runtime (`intellidox up`, test stacks) turns it on for its
    # children: it installs the dev key and lets the repository's default secrets through.
    # Any other start refuses them (ops/defaults.py) and deletes the dev key.
    dev_mode: bool = False
    dev_api_key: str = "idx-dev-key"
    dev_tenant: str = "dev"
    # The key `intellidox upload` sends when --api-key is not given (CI: a secret in the
    # environment, not on a command line other users can read).  Empty: the dev key.
    api_key: str = ""
    signing_secret: str = "intellidox-dev-signing-secret"
    max_file_size: int = 1 << 30
    multipart_threshold: int = 64 << 20
    multipart_part_size: int = 16 << 20
    upload_url_ttl_s: int = 900
    content_url_ttl_s: int = 60  # GET /docs/{id}/content redirects to a URL this short-lived
    # The gateway's address as clients reach it: every URL in a response starts with it (never
    # with the request's Host header).  Empty: http://<host>:<gateway_port>.
    public_url: str = ""
    events_token_ttl_s: int = 3600
    sse_heartbeat_s: float = 15.0
    reuse_window_days: int = 7
    meta_cache_s: float = 1.0  # 0 turns the gateway's document cache off
    # Rate limits (README "Rate limits"): the defaults for keys whose row sets none.  Requests
    # per second with a burst, per tenant; uploads in progress (requested, bytes not confirmed,
    # upload URLs still valid); event streams have a bucket of their own so reconnects are
    # never starved by a tenant's API calls.
    rate_limit_per_s: float = 50.0
    rate_limit_burst: int = 100
    rate_limit_uploads: int = 100
    rate_limit_events_per_s: float = 20.0
    rate_limit_events_burst: int = 200
    topic_prefix: str = ""

    # Pipeline.
    # Where extraction keeps each object while its script reads it; empty: /dev/shm when it
    # holds every extraction at once at `max_file_size`, else the system's temporary directory.
    extraction_work_dir: str = ""
    scan_deadline_s: float = 60.0
    scan_url_ttl_s: int = 900  # scanners' pre-signed GETs (pinned to the confirmed version)
    scanner_heartbeat_s: float = 5.0
    scanner_alive_s: float = 30.0
    scanner_session_timeout_s: float = 10.0
    # Each engine scans in its own process with this address-space ceiling (POSIX; 0: none);
    # a scanner's `memory_mb` option overrides it.
    scanner_memory_mb: int = 1024
    # Retro-scan (README "Retro-scan"): when a scanner's signatures change, what it scanned in
    # the last `rescan_window_days` (the reuse window) is scanned again, at most
    # `rescan_rate_per_s` requests per second per scanner (all workers together), and only
    # while its engines have room to spare (new documents first).  Workers look for changed
    # signatures and open rescan jobs every `rescan_check_s`.
    rescan_window_days: float = 7.0
    rescan_rate_per_s: float = 5.0
    rescan_check_s: float = 2.0
    # What `intellidox up` runs: comma-separated scanner specs (see scanners/registry.py).
    scanner_fleet: str = (
        "clamav,yara,office-macros,pdf-active,hash-reputation,type-mismatch,archive-inspector,"
        "sim-fast:simulated?latency_ms=400&jitter_ms=300&vendor=Simulated Fast,"
        "sim-slow:simulated?latency_ms=3000&jitter_ms=1500&vendor=Simulated Slow"
    )

    # Metrics (README "Operating IntelliDox"): every process's /metrics wants this bearer token
    # (a repository value for the local runtime only); probes of Kafka lag, dead letters,
    # outbox and stuck documents run this often (the local Prometheus scrapes as often).
    metrics_token: str = "intellidox-dev-metrics-token"
    metrics_interval_s: float = 15.0

    # Extractor scripts (see README "Extractor scripts").  Keys of these tenants may call the
    # admin API (/admin/...): comma-separated; give production its own admin tenant and key.
    admin_tenants: str = "dev"
    extractor_timeout_s: int = 30
    extractor_memory_mb: int = 1024
    # Scripts run in bubblewrap sandboxes (streams/sandbox_*.py): warm sandboxes per process,
    # documents one serves before it is replaced, and a development-only escape hatch for
    # machines where bubblewrap cannot run (rlimits only, NOT contained; off = fail closed).
    extractor_pool_size: int = 2
    extractor_pool_jobs: int = 200
    extractor_allow_weak_sandbox: bool = False

    def is_admin(self, tenant: str) -> bool:
        return tenant in {t.strip() for t in self.admin_tenants.split(",") if t.strip()}

    @property
    def gateway_url(self) -> str:
        return (self.public_url or f"http://{self.bind.host}:{self.bind.gateway_port}").rstrip("/")

    @property
    def clamd_socket(self) -> Path:
        """The local runtime's clamd socket (a scanner host's clients try it before TCP)."""
        return self.var_dir / "clamav" / "clamd.sock"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with top-level fields or whole sections replaced
        (``settings.with_overrides(kafka=settings.kafka.with_overrides(port=1))``)."""
        return dataclasses.replace(self, **changes)


def _convert(raw: str, kind: Any) -> Any:
    if kind in (bool, "bool"):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    if kind in (Path, "Path"):
        return Path(raw).expanduser()
    return raw


def _variables(kind: type[Any], env_prefix: str) -> Iterator[tuple[dataclasses.Field[Any], str]]:
    """Each plain field of ``kind`` (a section or Settings) with its variable's name."""
    for field in dataclasses.fields(kind):
        if field.name not in SECTIONS or kind is not Settings:
            yield field, PREFIX + field.metadata.get("env", env_prefix + field.name.upper())


def _read(kind: type[Any], env_prefix: str, env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field, variable in _variables(kind, env_prefix):
        raw = env.get(variable)
        if raw is None and "fallback" in field.metadata:
            raw = env.get(PREFIX + field.metadata["fallback"])
        if raw is not None:
            values[field.name] = _convert(raw, field.type)
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    sections: dict[str, Any] = {
        name: kind(**_read(kind, kind.ENV_PREFIX, env)) for name, kind in SECTIONS.items()
    }
    return Settings(**_read(Settings, "", env), **sections)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The variables that make :func:`load_settings` rebuild ``settings`` (for a child)."""
    parts: list[tuple[Any, str]] = [(settings, "")]
    parts += [(getattr(settings, name), kind.ENV_PREFIX) for name, kind in SECTIONS.items()]
    return {
        variable: str(getattr(part, field.name))
        for part, env_prefix in parts
        for field, variable in _variables(type(part), env_prefix)
    }


@functools.cache
def get_settings() -> Settings:
    return load_settings()


def sandbox_environment() -> dict[str, str]:
    """The environment an extractor script gets: enough to run Python, no secrets."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "TEMP", "TMP", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment handed to a child process (a service or a worker)."""
    env = dict(os.environ)
    env.update(extra or {})
    return env
