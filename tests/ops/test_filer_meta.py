"""The filer's metadata events off the protobuf wire (pure; the live stream is exercised by
tests/gateway/test_storage_events.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.filer_meta import (
    FilerEntry,
    MetaEvent,
    TlsFiles,
    WireError,
    _encode_varint,
    decode_response,
    encode_request,
    filer_address,
    tls_files,
)
from ops.services.seaweedfs import SeaweedFS
from ops.settings import S3Settings, Settings


def field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _encode_varint(number << 3) + _encode_varint(value)
    return _encode_varint(number << 3 | 2) + _encode_varint(len(value)) + value


def entry(name: str, size: int, directory: bool = False, extended: tuple[str, ...] = ()) -> bytes:
    attributes = field(1, size) + field(2, 1_795_867_958) + b"\x1d\x01\x02\x03\x04"  # + fixed32
    maps = b"".join(field(5, field(1, k.encode()) + field(2, b"\x00\xff")) for k in extended)
    return field(1, name.encode()) + field(2, int(directory)) + field(4, attributes) + maps


def test_a_version_file_event_decodes() -> None:
    new = entry("v_6713cb", 5, extended=("Seaweed-X-Amz-Version-Id",))
    notification = field(2, new) + field(4, b"/buckets/b-2026/k.versions") + field(6, 7)
    message = field(1, b"/buckets/b-2026/k.versions") + field(2, notification) + field(3, 42)
    assert decode_response(message) == [
        MetaEvent(
            "/buckets/b-2026/k.versions",
            42,
            None,
            FilerEntry("v_6713cb", False, 5, frozenset({"Seaweed-X-Amz-Version-Id"})),
            "/buckets/b-2026/k.versions",
        )
    ]


def test_a_deletion_and_batched_events_decode() -> None:
    deleted = field(1, b"/buckets") + field(2, field(1, entry("old", 3))) + field(3, 1)
    batch = field(3, 2) + field(4, deleted) + field(4, deleted)
    events = decode_response(batch)
    assert [(e.ts_ns, e.old, e.new) for e in events] == [(1, FilerEntry("old", size=3), None)] * 2


def test_an_empty_message_is_no_event_and_negative_times_stay_negative() -> None:
    assert decode_response(b"") == []
    message = field(2, b"") + field(3, (1 << 64) - 5)
    assert decode_response(message)[0].ts_ns == -5


@pytest.mark.parametrize(
    "garbage",
    [b"\x0a\x05abc", b"\x80", b"\x0b", b"\x1d\x01", b"\x0a\x02\xff\xfe"],
    ids=["short field", "cut varint", "group wire type", "cut fixed32", "not utf-8"],
)
def test_broken_messages_raise_wire_errors(garbage: bytes) -> None:
    with pytest.raises(WireError):
        decode_response(garbage)


def test_the_request_carries_name_prefix_position_and_id() -> None:
    request = encode_request("storage-events:x", "/buckets/x-", 1_795_867_958_000_000_000, 7)
    assert request == (
        field(1, b"storage-events:x")
        + field(2, b"/buckets/x-")
        + field(3, 1_795_867_958_000_000_000)
        + field(7, 7)
        + field(9, 1)
    )


def test_the_default_address_is_the_local_filers_grpc_port() -> None:
    settings = Settings(s3=S3Settings(port=20000))
    port = SeaweedFS(settings).port_flags()["filer.port.grpc"]
    assert filer_address(settings) == f"127.0.0.1:{port}"
    given = Settings(s3=S3Settings(filer_grpc="filer.internal:18888"))
    assert filer_address(given) == "filer.internal:18888"


def test_the_listener_finds_the_local_runtimes_certificate_or_the_configured_one(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path)
    assert tls_files(settings) is None  # a runtime from before mutual TLS: plaintext
    pki = SeaweedFS(settings).pki
    pki.ensure(settings.s3.host)
    found = tls_files(settings)
    assert found == TlsFiles(pki.ca.cert, pki.listener.cert, pki.listener.key)
    assert found.credentials() is not None
    given_tls = S3Settings(filer_grpc_ca="/a", filer_grpc_cert="/b", filer_grpc_key="/c")
    given = Settings(var_dir=tmp_path, s3=given_tls)
    assert tls_files(given) == TlsFiles(Path("/a"), Path("/b"), Path("/c"))


def test_the_pki_is_kept_across_starts_and_the_security_toml_names_it(tmp_path: Path) -> None:
    pki = SeaweedFS(Settings(var_dir=tmp_path)).pki
    pki.ensure("127.0.0.1")
    first = pki.server.cert.read_bytes()
    pki.ensure("127.0.0.1")
    assert pki.server.cert.read_bytes() == first  # running clients keep working
    assert {p.key.stat().st_mode & 0o777 for p in (pki.ca, pki.server, pki.listener)} == {0o600}
    toml = pki.security_toml()
    assert f'ca = "{pki.ca.cert}"' in toml
    assert 'allowed_commonNames = "seaweedfs,intellidox-storage-events"' in toml  # the filer
    assert toml.count("intellidox-storage-events") == 1  # and no other component
