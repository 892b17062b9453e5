"""Engines survive hostile files: each engine scans in its own process under a memory ceiling.

The RSS probe runs a scanner host's worth of runners in a subprocess on the hostile files
(a 1 MB .docm whose vbaProject.bin inflates to 1 GiB; a zip of a million entries whose end
record hides a signature in its counts) and reports the peak RSS of the runner process and
of its engine processes.  The Kafka tests run real runners on a test's own topics: an engine
that kills its process, or one that hits its memory ceiling, ends with one ``error`` verdict
and a DLQ record; a request whose sha256 is a path lands in the DLQ and touches no file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.settings import Settings
from scanners.downloads import SharedDownloads
from scanners.registry import build
from scanners.runner import Runner
from schemas import codec, topics
from tests.scanners.hostile import docm_bomb, million_entry_zip
from tests.scanners.http_files import FileServer
from tests.scanners.kafka_io import publish, read, wait_for
from tests.scanners.records import put_file, scan_record

REPO = Path(__file__).parents[2]
PROBE = r"""
import json, sys, threading, time
from pathlib import Path
from ops.hashing import file_sha256
from ops.settings import Settings
from scanners.downloads import SharedDownloads
from scanners.registry import build
from scanners.runner import Runner
from tests.scanners.http_files import FileServer
from tests.scanners.kafka_io import publish, read, wait_for
from tests.scanners.records import request

served, objects, specs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
files = FileServer(served).start()
downloads = SharedDownloads(objects)
runners = [Runner(Settings(), *build(spec), downloads=downloads) for spec in specs]
for runner in runners:
    runner.engines.start()
results = {}

def scan(runner, path):
    size, sha = path.stat().st_size, file_sha256(path)
    names = tuple(r.name for r in runners)
    asked = request(files.url(path.name), b"", file_size=size, sha256=sha, scanners=names)
    started = time.monotonic()
    verdict = runner.scan_request(asked).verdict
    took = time.monotonic() - started
    results[f"{path.name} {runner.name}"] = [verdict.verdict, verdict.result, took]

for path in sorted(served.iterdir()):  # the engines of a host scan one file side by side
    threads = [threading.Thread(target=scan, args=(r, path)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

def peak_mb(pid):  # VmHWM: this process image's own peak (ru_maxrss counts the forking parent's)
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024

engines_mb = {r.name: max(peak_mb(pid) for pid in r.engines.pids()) for r in runners}
runner_mb = peak_mb("self")
for runner in runners:
    runner.engines.close()
print(json.dumps({"results": results, "runner_mb": runner_mb, "engines_mb": engines_mb}))
"""
HOST = [
    "office-macros?deadline_s=60",
    "archive-inspector?deadline_s=60",
    "type-mismatch?deadline_s=30",
    "hash-reputation?deadline_s=30",
    "sim:simulated?latency_ms=0&deadline_s=30",
]


@pytest.mark.resource  # a whole host's peak memory; each engine's verdict is a unit test
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_hostile_zips_end_in_verdicts_with_bounded_memory_and_spare_the_other_engines(
    tmp_path: Path,
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    put_file(served, "bomb.docm", docm_bomb(1024))
    put_file(served, "many.zip", million_entry_zip())
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(served), str(tmp_path / "objects"), *HOST],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    report = json.loads(probe.stdout)
    verdicts = {key: verdict for key, (verdict, _, _) in report["results"].items()}
    assert verdicts == {
        "bomb.docm office-macros": "too_large",  # took 2 GiB of RSS before
        "bomb.docm archive-inspector": "malicious",  # zip bomb
        "bomb.docm type-mismatch": "clean",
        "bomb.docm hash-reputation": "clean",
        "bomb.docm sim": "clean",
        "many.zip office-macros": "unsupported",
        "many.zip archive-inspector": "suspicious",  # more than 10000 entries
        "many.zip type-mismatch": "clean",
        "many.zip hash-reputation": "clean",
        "many.zip sim": "clean",
    }, report["results"]
    assert max(took for _, _, took in report["results"].values()) < 30
    print(f"peak RSS MB: runner {report['runner_mb']:.0f}, engines {report['engines_mb']}")
    assert max(report["engines_mb"].values()) < 150, report
    assert report["runner_mb"] < 150, report


# -- through Kafka ------------------------------------------------------------------------------
Start = Callable[[str], Runner]


@pytest.fixture
def host(kafka_topics: str, settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Start]]:
    """Runners consuming this test's topics, stopped (and their engines) afterwards."""
    ours = settings.with_overrides(topic_prefix=kafka_topics, scanner_heartbeat_s=60.0)
    downloads = SharedDownloads(tmp_path / "objects")
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(spec: str) -> Runner:
        runner = Runner(ours, *build(spec), downloads=downloads)
        thread = threading.Thread(target=runner.run, args=(stop,), name=runner.name)
        thread.start()
        threads.append(thread)
        return runner

    yield ours, start
    stop.set()
    for thread in threads:
        thread.join(60)


@pytest.mark.integration
def test_an_engine_that_crashes_on_a_file_gives_one_error_verdict_and_a_dlq_record(
    host: tuple[Settings, Start], tmp_path: Path
) -> None:
    settings, start = host
    files = FileServer(put_file(tmp_path, "doc.txt", b"crash me").parent).start()
    try:
        runners = [
            start("exits:simulated?crash=exit"),
            start("hog:simulated?crash=memory&memory_mb=300"),
            start("calm:simulated?latency_ms=0"),
        ]
        record = scan_record(files.url("doc.txt"), b"crash me", scanners=("exits", "hog", "calm"))
        publish(settings, record)
        verdicts = wait_for(settings, topics.SCAN_VERDICTS, 3)
        dead = wait_for(settings, topics.dlq(topics.SCAN_REQUESTS), 2)
        time.sleep(5)  # nothing more comes: no redelivery loop
        assert len(read(settings, topics.SCAN_VERDICTS)) == 3
        assert len(read(settings, topics.dlq(topics.SCAN_REQUESTS))) == 2
    finally:
        files.stop()
    by_scanner = {v["scanner"]: v for v in (codec.decode(m.value()) for m in verdicts)}
    assert by_scanner["calm"]["verdict"] == "clean"
    assert by_scanner["exits"]["verdict"] == by_scanner["hog"]["verdict"] == "error"
    assert "exited with status 70" in by_scanner["exits"]["result"]
    assert "memory ceiling" in by_scanner["hog"]["result"]
    reasons = {dict(m.headers())["x-scanner"]: dict(m.headers())["x-error"] for m in dead}
    assert set(reasons) == {b"exits", b"hog"}
    assert b"crashed on this file 3 time(s)" in reasons[b"exits"]
    assert [r.crashes for r in runners] == [3, 3, 0]


@pytest.mark.integration
def test_a_sha256_that_is_a_path_goes_to_the_dlq_and_deletes_nothing(
    host: tuple[Settings, Start], tmp_path: Path
) -> None:
    """The runner named the download by sha256: "../victim.txt" deleted a file outside."""
    settings, start = host
    victim = put_file(tmp_path, "victim.txt", b"keep me")
    start("sim:simulated?latency_ms=0")
    record = scan_record("http://127.0.0.1:9/x", b"x", sha256="../victim.txt")
    publish(settings, record)
    dead = wait_for(settings, topics.dlq(topics.SCAN_REQUESTS), 1)
    headers = dict(dead[0].headers())
    assert headers["x-error"].startswith(b"InvalidRequest: sha256 must be 64 lowercase hex")
    assert victim.read_bytes() == b"keep me"
    assert read(settings, topics.SCAN_VERDICTS) == []
