"""The clamav engine against the real clamd the local runtime runs."""

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from ops.clamd import ClamdClient, ClamdError, ScanResult
from ops.settings import Settings
from scanners.base import ScanJob
from scanners.clamav import ClamAV
from scanners.downloads import SharedDownloads
from scanners.runner import Runner
from tests.scanners.http_files import FileServer
from tests.scanners.records import put_file, request

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _job(path: Path) -> ScanJob:
    return ScanJob("d", path.name, path.stat().st_size, None, None, "0" * 64)


def _private(tmp_path: Path, name: str, data: bytes) -> Path:
    """A file as the runner keeps downloads: 0600 in a 0700 directory clamd's user cannot open."""
    directory = tmp_path / "private"
    directory.mkdir(mode=0o700)
    path = put_file(directory, name, data)
    os.chmod(path, 0o600)
    return path


@pytest.mark.integration
def test_eicar_is_malicious_and_clean_is_clean(
    tmp_path: Path, clamd: object, settings: Settings
) -> None:
    scanner = ClamAV()
    bad, good = tmp_path / "eicar.com", tmp_path / "notes.txt"
    bad.write_bytes(EICAR)
    good.write_bytes(b"nothing to see here\n" * 1000)
    verdict = scanner.scan(bad, _job(bad))
    assert verdict.verdict == "malicious" and verdict.result.startswith("Eicar-Test-Signature")
    assert scanner.scan(good, _job(good)).verdict == "clean"
    assert scanner.engine_version()[0].isdigit()
    assert scanner.signatures_version()


@pytest.mark.integration
def test_a_private_file_is_scanned_by_descriptor_on_the_local_socket(
    tmp_path: Path, clamd: ClamdClient
) -> None:
    """clamd cannot open the runner's 0700 directory: by path it fails, FILDES does not."""
    bad = _private(tmp_path, "eicar.com", EICAR)
    with pytest.raises(ClamdError, match="Permission denied"):
        clamd.scan_path(bad)
    verdict = ClamAV().scan(bad, _job(bad))
    assert verdict.verdict == "malicious"
    assert verdict.result == "Eicar-Test-Signature.UNOFFICIAL (fildes)"
    assert ClamAV({"mode": "fildes"}).scan(bad, _job(bad)).result.endswith("(fildes)")


@pytest.mark.integration
def test_the_runner_scans_its_download_by_descriptor(
    tmp_path: Path, clamd: ClamdClient, settings: Settings
) -> None:
    put_file(tmp_path, "eicar.com", EICAR)
    files = FileServer(tmp_path).start()
    runner = Runner(settings, "clamav", ClamAV(), SharedDownloads(tmp_path / "objects"))
    try:
        scan = runner.scan_request(request(files.url("eicar.com"), EICAR))
    finally:
        runner.engines.close()
        files.stop()
    assert (scan.verdict.verdict, scan.verdict.result) == (
        "malicious",
        "Eicar-Test-Signature.UNOFFICIAL (fildes)",
    )


@pytest.mark.integration
def test_clamd_over_tcp_gets_the_file_streamed(
    tmp_path: Path, clamd: ClamdClient, settings: Settings
) -> None:
    bad = _private(tmp_path, "eicar.com", EICAR)
    scanner = ClamAV()
    scanner.client = ClamdClient(host=settings.clamd.host, port=settings.clamd.port, timeout=30)
    assert not scanner.client.can_pass_fds
    assert scanner.scan(bad, _job(bad)).result == "Eicar-Test-Signature.UNOFFICIAL (stream)"
    with pytest.raises(ClamdError, match="cannot take a file descriptor"), bad.open("rb") as f:
        scanner.client.scan_fd(f)


class _RefusesFildes(ClamdClient):
    """A clamd that does not know FILDES (an old or Windows build), streaming still works."""

    def __init__(self) -> None:
        super().__init__(socket_path="/nonexistent/clamd.sock")
        self.streamed = 0

    def scan_fd(self, fileobj: BinaryIO) -> ScanResult:
        raise ClamdError("clamd: UNKNOWN COMMAND")

    def instream(self, fileobj: BinaryIO, chunk: int = 0) -> ScanResult:
        self.streamed += len(fileobj.read())
        return ScanResult(False, None, "stream: OK")


def test_a_clamd_that_refuses_fildes_gets_the_file_streamed(tmp_path: Path) -> None:
    path, refusing = put_file(tmp_path, "a.txt", b"abc"), _RefusesFildes()
    auto, strict = ClamAV(), ClamAV({"mode": "fildes"})
    auto.client = strict.client = refusing
    assert auto.scan(path, _job(path)).result == "OK (stream)" and refusing.streamed == 3
    with pytest.raises(ClamdError, match="UNKNOWN COMMAND"):
        strict.scan(path, _job(path))


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, fildes, path, stream"):
        ClamAV({"mode": "carrier-pigeon"})


@pytest.mark.integration
def test_a_file_over_max_file_size_is_too_large_without_download(clamd: object) -> None:
    runner = Runner(Settings(), "clamav", ClamAV({"max_file_size": "1000"}))
    scan = runner.scan_request(request("http://127.0.0.1:9/big.bin", b"\0" * 4096))
    assert scan.verdict.verdict == "too_large" and "over this engine's 1000" in scan.verdict.result
