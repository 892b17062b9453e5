"""Objects are fetched once per host, verified, and never held in memory."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scanners.downloads import DownloadError, SharedDownloads, UnsafeDirectory, file_sha256


def _source(tmp_path: Path, data: bytes) -> tuple[str, str]:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    return path.as_uri(), hashlib.sha256(data).hexdigest()


def test_engines_share_one_download_and_the_last_one_out_cleans_up(tmp_path: Path) -> None:
    url, sha = _source(tmp_path, b"shared bytes" * 1000)
    downloads = SharedDownloads(tmp_path / "cache", linger_s=0)
    with downloads.fetch(url, sha, 5) as first, downloads.fetch(url, sha, 5) as second:
        assert first == second and file_sha256(first) == sha
    assert not (tmp_path / "cache" / sha).exists() and downloads.downloaded == 1


def test_a_scanner_after_the_last_one_out_reuses_the_file_until_it_expires(
    tmp_path: Path,
) -> None:
    """The scanners of a host take a document one after the other, not at once: each one
    used to download it again."""
    url, sha = _source(tmp_path, b"taken later" * 1000)
    downloads = SharedDownloads(tmp_path / "cache")
    for _ in range(3):
        with downloads.fetch(url, sha, 5) as path:
            assert file_sha256(path) == sha
    assert downloads.downloaded == 1 and (tmp_path / "cache" / sha).exists()
    downloads.evict()
    assert (tmp_path / "cache" / sha).exists()  # not idle for 30 s yet
    downloads.linger_s = 0
    downloads.evict()
    assert not (tmp_path / "cache" / sha).exists()
    with downloads.fetch(url, sha, 5):
        assert downloads.downloaded == 2


def test_idle_files_beyond_the_bytes_kept_go_oldest_first(tmp_path: Path) -> None:
    downloads = SharedDownloads(tmp_path / "cache", keep_bytes=15_000)
    shas = []
    for name in ("a", "b", "c"):
        url, sha = _source(tmp_path / name, name.encode() * 10_000)
        with downloads.fetch(url, sha, 5):
            shas.append(sha)
    assert [(tmp_path / "cache" / sha).exists() for sha in shas] == [False, False, True]
    downloads.close()
    assert not list((tmp_path / "cache").iterdir())


def test_files_a_killed_process_left_an_hour_ago_are_swept_at_start(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir(mode=0o700)
    old, fresh = tmp_path / "cache" / ("0" * 64), tmp_path / "cache" / ("1" * 64 + ".1.2.part")
    old.write_bytes(b"left behind")
    fresh.write_bytes(b"another process is writing this")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    SharedDownloads(tmp_path / "cache")
    assert not old.exists() and fresh.exists()


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
from pathlib import Path
from ops.settings import Settings
from scanners.downloads import SharedDownloads
from scanners.hash_reputation import HashReputation
from scanners.runner import Runner
from tests.scanners.http_files import FileServer
from tests.scanners.records import request

path, sha = Path(sys.argv[1]), sys.argv[2]
files = FileServer(path.parent).start()
engine = HashReputation({"verify": "1", "deadline_s": "120"})
runner = Runner(Settings(), "hash", engine, SharedDownloads(Path(sys.argv[3])))
runner.engines.start()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = path.stat().st_size
scan = runner.scan_request(request(files.url(path.name), b"", file_size=size, sha256=sha))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
runner.engines.close()
print(scan.verdict.verdict, (after - before) / 1024)
"""


@pytest.mark.resource  # ~7 s: a memory bound, not logic (the logic is tested above)
@pytest.mark.skipif(sys.platform == "win32", reason="ru_maxrss is POSIX")
def test_a_1_gb_file_through_the_runner_keeps_memory_flat(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as handle:
        handle.truncate(1 << 30)  # 1 GiB of zeros, no disk blocks
    sha = "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14"  # of 1 GiB of zeros
    result = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(sparse), sha, str(tmp_path / "cache")],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    verdict, grew_mb = result.stdout.split()
    assert verdict == "clean"
    assert float(grew_mb) < 50, f"peak RSS grew by {grew_mb} MB"


# -- the directory is the runner's alone ----------------------------------------------------
def test_the_directory_is_created_0700_and_files_in_it_0600(tmp_path: Path) -> None:
    url, sha = _source(tmp_path, b"a private document")
    downloads = SharedDownloads(tmp_path / "cache")
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    with downloads.fetch(url, sha, 5) as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.stat().st_uid == os.geteuid()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_directory_others_can_enter_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir(mode=0o755)
    (tmp_path / "cache").chmod(0o755)
    with pytest.raises(UnsafeDirectory, match="has mode 0755; it must be 0700"):
        SharedDownloads(tmp_path / "cache")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir(mode=0o700)
    os.chown(tmp_path / "cache", 65534, -1)
    with pytest.raises(UnsafeDirectory, match="belongs to uid 65534, not to this runner's uid 0"):
        SharedDownloads(tmp_path / "cache")


def test_a_link_in_place_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeDirectory, match="is not a directory"):
        SharedDownloads(tmp_path / "cache")


def test_a_sha256_that_is_a_path_names_no_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    url, _ = _source(tmp_path, b"whatever")
    with (
        pytest.raises(DownloadError, match="is not a sha256"),
        SharedDownloads(tmp_path / "cache").fetch(url, "../victim.txt", 5),
    ):
        pass
    assert victim.read_bytes() == b"keep me"
