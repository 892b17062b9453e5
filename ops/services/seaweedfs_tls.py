"""Mutual TLS on SeaweedFS's gRPC ports, for the local runtime.

Without it anyone who reaches a gRPC port may drive the store: SeaweedFS's JWTs guard only
the filer's and volume servers' HTTP.  So ``weed mini`` gets a CA of its own: every component
presents the ``seaweedfs`` certificate to the others, and the filer also admits the
``intellidox-storage-events`` client certificate (the storage-events listener's subscription,
gateway/storage_listener.py).  A connection without a certificate from this CA is refused.

The CA's key never leaves ``<var dir>/seaweedfs/grpc-tls`` (0600).  Certificates are made once
and kept (a restart does not invalidate running clients), and made again a month before they
expire.  Production brings its own PKI: point ``[grpc]`` in SeaweedFS's ``security.toml`` and
``INTELLIDOX_FILER_GRPC_CA/_CERT/_KEY`` at it.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "seaweedfs"
LISTENER_NAME = "intellidox-storage-events"
VALID_DAYS = 365
RENEW_DAYS = 30
# The weed components that open a gRPC port (weed mini runs most of them).
COMPONENTS = ("master", "volume", "filer", "s3", "admin", "worker", "msg_broker", "msg_agent")


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca(self) -> Pair:
        return Pair(self.directory / "ca.crt", self.directory / "ca.key")

    @property
    def server(self) -> Pair:
        return self._pair(SERVER_NAME)

    @property
    def listener(self) -> Pair:
        return self._pair(LISTENER_NAME)

    def _pair(self, name: str) -> Pair:
        return Pair(self.directory / f"{name}.crt", self.directory / f"{name}.key")

    def ensure(self, host: str) -> None:
        """Make what is missing or about to expire (a new CA re-issues both certificates)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        renewed = _stale(self.ca.cert)
        if renewed:
            _write(self.ca, *_issue("intellidox-seaweedfs-ca", None, server=None))
        ca_key = _load_key(self.ca.key)
        ca_cert = x509.load_pem_x509_certificate(self.ca.cert.read_bytes())
        for pair, name, server in (
            (self.server, SERVER_NAME, host),
            (self.listener, LISTENER_NAME, None),
        ):
            if renewed or _stale(pair.cert):
                _write(pair, *_issue(name, (ca_cert, ca_key), server=server))

    def security_toml(self) -> str:
        """The ``[grpc]`` sections of SeaweedFS's ``security.toml``."""
        text = f'[grpc]\nca = "{self.ca.cert}"\n\n'
        for component in COMPONENTS:
            allowed = f"{SERVER_NAME},{LISTENER_NAME}" if component == "filer" else SERVER_NAME
            text += (
                f'[grpc.{component}]\ncert = "{self.server.cert}"\nkey = "{self.server.key}"\n'
                f'allowed_commonNames = "{allowed}"\n\n'
            )
        return text + f'[grpc.client]\ncert = "{self.server.cert}"\nkey = "{self.server.key}"\n'


def _stale(cert: Path) -> bool:
    if not cert.exists():
        return True
    expires = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
    return expires - datetime.datetime.now(datetime.UTC) < datetime.timedelta(days=RENEW_DAYS)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _issue(
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    server: str | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for ``name``: self-signed CA when ``issuer`` is None; for a server,
    valid for ``server`` (an IP or a host name) and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS * (10 if not issuer else 1)))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server is not None:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(_names(server), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _names(server: str) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(server)))
    except ValueError:
        names.append(x509.DNSName(server))
    if server != "127.0.0.1":
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    return x509.SubjectAlternativeName(names)


def _write(pair: Pair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pair.key.touch(mode=0o600)
    pair.key.chmod(0o600)
    pair.key.write_bytes(pem)
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
