"""The clamav engine against the real clamd the local runtime runs."""

from pathlib import Path

import pytest

from ops.settings import Settings
from scanners.base import ScanJob
from scanners.clamav import ClamAV
from scanners.runner import Runner
from tests.scanners.records import request

pytestmark = pytest.mark.integration
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _job(path: Path) -> ScanJob:
    return ScanJob("d", path.name, path.stat().st_size, None, None, "0" * 64)


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


def test_a_file_over_max_file_size_is_too_large_without_download(clamd: object) -> None:
    runner = Runner(Settings(), "clamav", ClamAV({"max_file_size": "1000"}))
    scan = runner.scan_request(request("http://127.0.0.1:9/big.bin", b"\0" * 4096))
    assert scan.verdict.verdict == "too_large" and "over this engine's 1000" in scan.verdict.result
