"""The SeaweedFS filer's metadata events, read through its gRPC ``SubscribeMetadata`` stream.

Every change the filer makes (an S3 PUT, a completed multipart upload, a directory update)
is one event: the directory, the entry before and after, and the filer's time in ns.  The
filer keeps these events in a log on disk, so a subscriber resumes from any time it names
(``since_ns``): at-least-once, with the position kept by the subscriber.

We read the few fields we use straight off the protobuf wire (numbers from SeaweedFS 4.48's
``filer.proto``; unknown fields are skipped, as protobuf requires), which spares a generated
module and the ``protobuf`` runtime for one request and one response.  The request does not
ask for batched or chunked replies (``client_supports_batching`` and friends stay false), so
the filer sends one event per message.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from ops.settings import Settings

METHOD = "/filer_pb.SeaweedFiler/SubscribeMetadata"
CONNECT_TIMEOUT_S = 10.0
BUCKETS_DIR = "/buckets"  # the filer's default ``dir_buckets``: one folder per S3 bucket

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not the protobuf message we expected."""


@dataclass(frozen=True)
class FilerEntry:
    name: str
    is_directory: bool = False
    size: int = 0
    extended: frozenset[str] = frozenset()  # the extended attributes' names (S3 headers)


@dataclass(frozen=True)
class MetaEvent:
    """One filer change: ``old`` is None for a creation, ``new`` None for a deletion."""

    directory: str
    ts_ns: int
    old: FilerEntry | None = None
    new: FilerEntry | None = None
    new_parent_path: str = ""

    @property
    def new_directory(self) -> str:
        """Where ``new`` lives (a rename moves it to ``new_parent_path``)."""
        return self.new_parent_path or self.directory


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mutual TLS with the filer: its CA, our certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            self.ca.read_bytes(), self.key.read_bytes(), self.cert.read_bytes()
        )


def tls_files(settings: Settings) -> TlsFiles | None:
    """Configured files, else the local runtime's (made when SeaweedFS starts, with its
    mutual TLS: ops/services/seaweedfs_tls.py), else None (a filer without TLS)."""
    if settings.s3.filer_grpc_ca or settings.s3.filer_grpc_cert or settings.s3.filer_grpc_key:
        given = (settings.s3.filer_grpc_ca, settings.s3.filer_grpc_cert, settings.s3.filer_grpc_key)
        return TlsFiles(*(Path(p) for p in given))
    local = settings.var_dir / "seaweedfs" / "grpc-tls"
    found = TlsFiles(local / "ca.crt", local / f"{LISTENER}.crt", local / f"{LISTENER}.key")
    return found if found.cert.exists() else None


LISTENER = "intellidox-storage-events"  # the certificate's name (its common name)


def filer_address(settings: Settings) -> str:
    """``host:port`` of the filer's gRPC (the local runtime's, unless configured)."""
    s3 = settings.s3
    return s3.filer_grpc or f"{s3.host}:{s3.port + LOCAL_FILER_GRPC_OFFSET}"


# ops/services/seaweedfs.py moves the filer to s3.port + 555 and its gRPC 10000 above that
# (tests/ops/test_filer_meta.py checks the two agree).
LOCAL_FILER_GRPC_OFFSET = 555 + 10000


async def subscribe(
    address: str,
    client_name: str,
    path_prefix: str,
    since_ns: int,
    client_id: int,
    connected: asyncio.Event | None = None,
    tls: TlsFiles | None = None,
) -> AsyncIterator[MetaEvent]:
    """Events under ``path_prefix`` from ``since_ns`` on, until the stream breaks (then
    grpc.aio raises :class:`grpc.RpcError`; subscribe again from the last event's time).
    ``connected`` is set once the filer accepted the connection."""
    request = encode_request(client_name, path_prefix, since_ns, client_id)
    channel = (
        grpc.aio.secure_channel(address, tls.credentials())
        if tls is not None
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        call = channel.unary_stream(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )(request)
        if await _connected(channel, call) and connected is not None:
            connected.set()
        async for message in call:  # raises the RpcError of a call that failed
            for event in decode_response(message):
                yield event


async def _connected(channel: grpc.aio.Channel, call: grpc.aio.UnaryStreamCall) -> bool:
    """True once the channel is up; False as soon as the call ended instead (a refused TLS
    handshake, say: the caller's read raises why).  The filer sends nothing before the first
    event, so waiting for the call's first answer could take forever."""
    ready = asyncio.ensure_future(channel.channel_ready())
    ended = asyncio.ensure_future(call.code())
    try:
        finished, _ = await asyncio.wait(
            {ready, ended}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        ready.cancel()
        ended.cancel()
    if not finished:
        raise TimeoutError(f"no connection to the filer within {CONNECT_TIMEOUT_S:.0f}s")
    return ready in finished


def _identity(data: bytes) -> bytes:
    return data


# --- the wire format ------------------------------------------------------------------------


def encode_request(client_name: str, path_prefix: str, since_ns: int, client_id: int) -> bytes:
    """``SubscribeMetadataRequest``: client_name=1, path_prefix=2, since_ns=3, client_id=7,
    client_epoch=9 (1: one subscription per process, and the id is new each start)."""
    return b"".join(
        (
            _field_bytes(1, client_name.encode()),
            _field_bytes(2, path_prefix.encode()),
            _field_varint(3, since_ns),
            _field_varint(7, client_id),
            _field_varint(9, 1),
        )
    )


def decode_response(data: bytes) -> list[MetaEvent]:
    """``SubscribeMetadataResponse``: directory=1, event_notification=2, ts_ns=3 and, should a
    filer batch anyway, more responses in events=4."""
    directory, ts_ns = "", 0
    notification: bytes | None = None
    batched: list[MetaEvent] = []
    for number, value in _fields(data):
        if number == 1:
            directory = _text(value)
        elif number == 2:
            notification = _bytes(value)
        elif number == 3:
            ts_ns = _int(value)
        elif number == 4:
            batched += decode_response(_bytes(value))
    own = [] if notification is None else [_notification(directory, ts_ns, notification)]
    return own + batched


def _notification(directory: str, ts_ns: int, data: bytes) -> MetaEvent:
    """``EventNotification``: old_entry=1, new_entry=2, new_parent_path=4."""
    event = MetaEvent(directory, ts_ns)
    for number, value in _fields(data):
        if number == 1:
            event = dataclasses.replace(event, old=_entry(_bytes(value)))
        elif number == 2:
            event = dataclasses.replace(event, new=_entry(_bytes(value)))
        elif number == 4:
            event = dataclasses.replace(event, new_parent_path=_text(value))
    return event


def _entry(data: bytes) -> FilerEntry:
    """``Entry``: name=1, is_directory=2, attributes=4 (file_size=1), extended=5 (map)."""
    name, is_directory, size, extended = "", False, 0, set()
    for number, value in _fields(data):
        if number == 1:
            name = _text(value)
        elif number == 2:
            is_directory = bool(_int(value))
        elif number == 4:
            size = next((_int(v) for n, v in _fields(_bytes(value)) if n == 1), 0)
        elif number == 5:
            extended.add(next((_text(v) for n, v in _fields(_bytes(value)) if n == 1), ""))
    return FilerEntry(name, is_directory, size, frozenset(extended))


Value = int | bytes


def _fields(data: bytes) -> Iterator[tuple[int, Value]]:
    """(field number, value) of each field: an int for varints, bytes for length-delimited
    fields; fixed-width fields are skipped (we read none)."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise WireError("a field runs past the end of the message")
            yield number, data[pos : pos + size]
            pos += size
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
        else:
            raise WireError(f"unsupported wire type {wire}")
    if pos != len(data):
        raise WireError("a fixed-width field runs past the end of the message")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _int(value: Value) -> int:
    if not isinstance(value, int):
        raise WireError("expected a varint")
    return value - (1 << 64) if value >= 1 << 63 else value  # int64 is two's complement


def _bytes(value: Value) -> bytes:
    if not isinstance(value, bytes):
        raise WireError("expected a length-delimited field")
    return value


def _text(value: Value) -> str:
    try:
        return _bytes(value).decode()
    except UnicodeDecodeError as exc:
        raise WireError("a string field is not UTF-8") from exc


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _encode_varint(number << 3 | _VARINT) + _encode_varint(value) if value else b""


def _field_bytes(number: int, value: bytes) -> bytes:
    if not value:
        return b""
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(value)) + value
