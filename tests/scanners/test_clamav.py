"""The clamav engine against the real clamd the local runtime runs."""

from pathlib import Path

import pytest

from ops.settings import Settings
from scanners.base import ScanJob
from scanners.clamav import ClamAV

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


def test_clamd_refusing_a_stream_over_its_limit_is_too_large(tmp_path: Path, clamd: object) -> None:
    from scanners.downloads import file_sha256
    from scanners.runner import Runner

    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 4096)
    runner = Runner(Settings(), "clamav", ClamAV({"max_file_size": "1000"}))
    request = {
        "doc_id": "d",
        "file_name": "big.bin",
        "file_size": 4096,
        "sha256": file_sha256(big),
        "download_url": big.as_uri(),
    }
    from datetime import UTC, datetime, timedelta

    verdict, _ = runner.scan_request(request, datetime.now(UTC) + timedelta(seconds=5))
    assert verdict.verdict == "too_large" and "over this engine's 1000" in verdict.result
