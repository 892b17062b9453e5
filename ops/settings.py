"""The one settings module: every knob is an ``INTELLIDOX_*`` environment variable.

Nothing else in the project reads ``os.environ``; code asks :func:`get_settings` (or is handed
a :class:`Settings`).  Defaults match the local runtime that ``intellidox up`` starts, so a
fresh clone works with no configuration at all.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PREFIX = "INTELLIDOX_"


def _default_var_dir() -> Path:
    # Postgres refuses to run as root and runs as the ``postgres`` user, which cannot enter
    # /root; so root keeps its data in /var/lib, anyone else in their home.
    if os.geteuid() == 0:
        return Path("/var/lib/intellidox")
    return Path.home() / ".local" / "share" / "intellidox"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "intellidox"


@dataclasses.dataclass(frozen=True)
class Settings:
    """All configuration, read once from the environment (``INTELLIDOX_<FIELD>``)."""

    var_dir: Path = dataclasses.field(default_factory=_default_var_dir)
    cache_dir: Path = dataclasses.field(default_factory=_default_cache_dir)
    host: str = "127.0.0.1"

    kafka_version: str = "4.4.0"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap_mb: int = 512
    kafka_partitions: int = 6
    # Kafka principals (README "Kafka principals"): SASL/SCRAM, one principal per role, ACLs.
    # A process speaks as ``kafka_role``; the gateway, the worker and `scanner run` set their
    # own.  The passwords here are repository values for the local dev runtime only.
    kafka_role: str = "admin"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_admin_password: str = "intellidox-dev-kafka-admin"
    kafka_gateway_password: str = "intellidox-dev-kafka-gateway"
    kafka_worker_password: str = "intellidox-dev-kafka-worker"
    kafka_scanner_password: str = "intellidox-dev-kafka-scanner"
    analyst_user: str = "analyst"
    analyst_password: str = "intellidox-dev-analyst"

    cassandra_version: str = "5.0.9"
    cassandra_port: int = 19042
    cassandra_storage_port: int = 17000
    cassandra_heap_mb: int = 1024
    cassandra_keyspace: str = "intellidox"
    java17_home: Path = Path("/usr/lib/jvm/java-17-openjdk-amd64")

    postgres_port: int = 15432
    postgres_db: str = "intellidox"
    postgres_user: str = "intellidox"
    postgres_password: str = "intellidox-dev"

    s3_port: int = 18333
    s3_access_key: str = "intellidox-dev"
    s3_secret_key: str = "intellidox-dev-secret"
    s3_bucket_prefix: str = "intellidox"
    s3_region: str = "us-east-1"
    s3_allowed_origins: str = "http://127.0.0.1:8080,http://localhost:8080"
    # The SeaweedFS filer's gRPC (``host:port``), where `intellidox storage-events` reads the
    # metadata events that mark uploads "uploaded".  Empty: the local runtime's filer.
    filer_grpc: str = ""
    # Its mutual TLS (PEM paths): the CA of the filer's certificate, and the listener's own
    # certificate and key.  Empty: the local runtime's (ops/services/seaweedfs_tls.py).
    filer_grpc_ca: str = ""
    filer_grpc_cert: str = ""
    filer_grpc_key: str = ""
    storage_events_port: int = 6070  # its /healthz, /readyz and /metrics

    clamd_port: int = 13310

    # Gateway. The dev key is for the local run only; production keys live in Postgres.
    gateway_port: int = 8080
    # Only the local runtime (`intellidox up`, test stacks) turns this on for its children: it
    # installs the dev key and lets the repository's default secrets through.  Any other start
    # refuses them (ops/defaults.py) and deletes the dev key.
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
    worker_port: int = 6066
    scan_deadline_s: float = 60.0
    scan_url_ttl_s: int = 900  # scanners' pre-signed GETs (pinned to the confirmed version)
    scanner_heartbeat_s: float = 5.0
    scanner_alive_s: float = 30.0
    scanner_port_base: int = 6100
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
    # outbox and stuck documents run this often; the local Prometheus listens here.
    metrics_token: str = "intellidox-dev-metrics-token"
    metrics_interval_s: float = 15.0
    prometheus_port: int = 9090

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

    @property
    def scripts_bucket(self) -> str:
        return f"{self.s3_bucket_prefix}-scripts"

    def is_admin(self, tenant: str) -> bool:
        return tenant in {t.strip() for t in self.admin_tenants.split(",") if t.strip()}

    @property
    def gateway_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.gateway_port}").rstrip("/")

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def kafka_internal_port(self) -> int:
        """The local runtime's loopback-only admin listener (broker-internal, bootstrap)."""
        return self.kafka_controller_port + 1

    @property
    def postgres_dsn(self) -> str:
        return (
            f"host={self.host} port={self.postgres_port} dbname={self.postgres_db} "
            f"user={self.postgres_user} password={self.postgres_password}"
        )

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def clamd_socket(self) -> Path:
        return self.var_dir / "clamav" / "clamd.sock"

    def with_overrides(self, **changes: Any) -> Settings:
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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        raw = env.get(PREFIX + field.name.upper())
        if raw is not None:
            changes[field.name] = _convert(raw, field.type)
    return Settings(**changes)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The variables that make :func:`load_settings` rebuild ``settings`` (for a child)."""
    return {
        PREFIX + field.name.upper(): str(getattr(settings, field.name))
        for field in dataclasses.fields(Settings)
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
