"""SeaweedFS's gRPC wants mutual TLS (ops/services/seaweedfs_tls.py), on a private ``weed
mini`` started exactly as ``intellidox up`` starts the shared one: S3 still works through it,
the storage-events listener's certificate gets the filer's metadata events, and a connection
without a certificate, or with one the filer does not admit, is refused."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from ops.filer_meta import MetaEvent, TlsFiles, filer_address, subscribe, tls_files
from ops.s3 import bucket_for, s3_client
from ops.services.runtime import start, stop
from ops.services.seaweedfs import SeaweedFS
from ops.services.seaweedfs_tls import Pair, _issue, _load_key, _write
from ops.settings import S3Settings, Settings

pytestmark = pytest.mark.integration


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var = tmp_path_factory.mktemp("seaweedfs-tls")
    for _ in range(50):  # a port block of its own (every offset of ops/services/seaweedfs.py)
        # Below the kernel's ephemeral ports (32768-60999) with the whole block (+15400): an
        # outgoing connection elsewhere on the box can take none of them before weed binds.
        settings = Settings(var_dir=var, s3=S3Settings(port=random.randrange(2000, 17000)))
        if all(_free(p) for p in SeaweedFS(settings).ports()):
            break
    service = SeaweedFS(settings)
    start(service)
    try:
        yield settings
    finally:
        stop(service)


async def first_event(settings: Settings, tls: TlsFiles | None) -> MetaEvent:
    """Subscribe, then PUT an object through S3: the event of that PUT."""
    connected = asyncio.Event()
    bucket = bucket_for(settings, 2026)
    events = subscribe(
        filer_address(settings), "test", f"/buckets/{bucket}", time.time_ns(), 1, connected, tls
    )
    put = asyncio.create_task(_put_when(connected, settings, bucket))
    try:
        async with asyncio.timeout(15):
            async for event in events:
                if event.new is not None and not event.new.is_directory:
                    return event
    finally:
        put.cancel()
        await events.aclose()  # type: ignore[attr-defined]
    raise AssertionError("the stream ended")


async def _put_when(connected: asyncio.Event, settings: Settings, bucket: str) -> None:
    await connected.wait()
    client = s3_client(settings)
    await asyncio.to_thread(client.put_object, Bucket=bucket, Key="k", Body=b"through mTLS")


async def test_the_listeners_certificate_gets_the_events_of_s3_writes(private: Settings) -> None:
    tls = tls_files(private)
    assert tls is not None and tls.cert.exists()
    assert oct(tls.key.stat().st_mode & 0o777) == "0o600"
    event = await first_event(private, tls)
    assert event.new is not None and event.new.size == len(b"through mTLS")


@pytest.mark.parametrize("who", ["no certificate", "another name", "another CA"])
async def test_anyone_else_is_refused(private: Settings, tmp_path: Path, who: str) -> None:
    ours = tls_files(private)
    assert ours is not None
    tls = None
    if who != "no certificate":
        ca = (
            x509.load_pem_x509_certificate(ours.ca.read_bytes()),
            _load_key(ours.ca.with_suffix(".key")),
        )
        issuer = _issue("someone-ca", None, server=None) if who == "another CA" else ca
        tls = TlsFiles(ours.ca, tmp_path / "x.crt", tmp_path / "x.key")
        _write(Pair(tls.cert, tls.key), *_issue("intruder", issuer, server=None))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await first_event(private, tls)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
