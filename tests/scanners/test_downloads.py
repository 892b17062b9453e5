"""Objects are fetched once per host, verified, and never held in memory."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scanners.downloads import DownloadError, SharedDownloads, file_sha256


def _source(tmp_path: Path, data: bytes) -> tuple[str, str]:
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    return path.as_uri(), hashlib.sha256(data).hexdigest()


def test_engines_share_one_download_and_the_last_one_out_cleans_up(tmp_path: Path) -> None:
    url, sha = _source(tmp_path, b"shared bytes" * 1000)
    downloads = SharedDownloads(tmp_path / "cache")
    with downloads.fetch(url, sha, 5) as first, downloads.fetch(url, sha, 5) as second:
        assert first == second and file_sha256(first) == sha
    assert not (tmp_path / "cache" / sha).exists()


def test_concurrent_engines_wait_for_the_same_file(tmp_path: Path) -> None:
    url, sha = _source(tmp_path, b"x" * (4 << 20))
    downloads = SharedDownloads(tmp_path / "cache")
    seen: list[str] = []

    def engine() -> None:
        with downloads.fetch(url, sha, 10) as path:
            seen.append(file_sha256(path))

    threads = [threading.Thread(target=engine) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [sha] * 5


def test_content_with_another_hash_is_refused(tmp_path: Path) -> None:
    url, _ = _source(tmp_path, b"what was uploaded")
    with (
        pytest.raises(DownloadError, match="is not the expected"),
        SharedDownloads(tmp_path / "cache").fetch(url, "0" * 64, 5),
    ):
        pass


RSS_PROBE = r"""
import resource, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from ops.settings import Settings
from scanners.downloads import SharedDownloads
from scanners.hash_reputation import HashReputation
from scanners.runner import Runner

path, sha = Path(sys.argv[1]), sys.argv[2]
engine = HashReputation({"verify": "1"})
runner = Runner(Settings(), "hash", engine, SharedDownloads(Path(sys.argv[3])))
request = {"doc_id": "d", "file_name": path.name, "file_size": path.stat().st_size, "sha256": sha,
           "download_url": path.as_uri()}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
verdict, _ = runner.scan_request(request, datetime.now(UTC) + timedelta(seconds=120))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(verdict.verdict, (after - before) / 1024)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="ru_maxrss is POSIX")
def test_a_1_gb_file_through_the_runner_keeps_memory_flat(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as handle:
        handle.truncate(1 << 30)  # 1 GiB of zeros, no disk blocks
    sha = "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14"  # of 1 GiB of zeros
    result = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(sparse), sha, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    verdict, grew_mb = result.stdout.split()
    assert verdict == "clean"
    assert float(grew_mb) < 50, f"peak RSS grew by {grew_mb} MB"
