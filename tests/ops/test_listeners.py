"""What the running local runtime exposes: no listener on every interface, no storage bypass,
no Faust table pages.

Checked on the live processes (``intellidox up``), since a listener opened by a library
default (Faust's web server binds 0.0.0.0 unless told) is invisible in our own config.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import psutil
import pytest

from ops.s3 import s3_client
from ops.services import build_services
from ops.services.runtime import read_pid
from ops.services.seaweedfs import OFFSETS
from ops.settings import Settings

EVERY_INTERFACE = {"0.0.0.0", "::"}
pytestmark = pytest.mark.integration


def status_of(url: str, method: str = "GET", data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        refused.close()
        return refused.code


def our_processes(settings: Settings) -> dict[str, set[int]]:
    """Pids of every service and process of the runtime, with their children."""
    found: dict[str, set[int]] = {}
    for service in build_services(settings):
        pid = read_pid(service)
        assert pid is not None, f"{service.name} is not running: run `intellidox up`"
        proc = psutil.Process(pid)
        found[service.name] = {pid, *(child.pid for child in proc.children(recursive=True))}
    return found


def test_no_process_of_ours_listens_on_every_interface(settings: Settings) -> None:
    owners = {pid: name for name, pids in our_processes(settings).items() for pid in pids}
    listening = [
        (owners[c.pid], *c.laddr)
        for c in psutil.net_connections("inet")
        if c.pid in owners and c.status == psutil.CONN_LISTEN and c.laddr
    ]
    assert {name for name, _, _ in listening} >= {"kafka", "seaweedfs", "worker", "gateway"}
    assert [sock for sock in listening if sock[1] in EVERY_INTERFACE] == []


def _other_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback."""
    return [
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family.name == "AF_INET" and not a.address.startswith("127.")
    ]


def test_storage_ports_are_closed_to_other_addresses(settings: Settings) -> None:
    if settings.bind.host != "127.0.0.1":
        pytest.skip("the runtime was started on another address on purpose")
    addresses = _other_addresses()
    assert addresses, "no non-loopback address to try from"
    for address in addresses:
        for flag in ("filer.port", "volume.port", "master.port", "s3.port"):
            port = settings.s3.port + OFFSETS[flag]
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=3).close()


def test_the_filer_serves_and_takes_nothing_without_credentials(
    settings: Settings, run_id: str
) -> None:
    s3 = s3_client(settings)
    bucket = settings.s3.scripts_bucket  # unversioned: the object sits at its plain path
    s3.put_object(Bucket=bucket, Key=run_id, Body=b"confidential")
    filer = f"http://{settings.s3.host}:{settings.s3.port + OFFSETS['filer.port']}"
    try:
        assert status_of(f"{filer}/buckets/{bucket}/{run_id}") == 401
        assert status_of(f"{filer}/buckets/{bucket}/") == 401
        assert status_of(f"{filer}/buckets/{bucket}/{run_id}-x", "PUT", b"x") == 401
    finally:
        s3.delete_object(Bucket=bucket, Key=run_id)


def test_a_volume_server_takes_no_write_without_a_token(settings: Settings) -> None:
    master = f"http://{settings.s3.host}:{settings.s3.port + OFFSETS['master.port']}"
    with urllib.request.urlopen(f"{master}/dir/assign", timeout=5) as response:
        assigned = json.load(response)
    volume = f"http://{assigned['url']}/{assigned['fid']}"
    assert status_of(volume, "PUT", b"bypass") == 401


@pytest.mark.parametrize("path", ["/table/", "/table/progress/", "/router/", "/graph/", "/stats/"])
def test_the_worker_serves_no_faust_pages(settings: Settings, path: str) -> None:
    url = f"http://{settings.bind.host}:{settings.bind.worker_port}"
    assert status_of(f"{url}/healthz") == 200
    assert status_of(f"{url}{path}") == 404
