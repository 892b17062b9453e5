"""The runner's own logic, without Kafka: deadlines, limits, downloads, engine processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops.backoff import Backoff
from ops.settings import Settings
from scanners import downloads
from scanners import runner as runner_module
from scanners.base import Scanner
from scanners.downloads import SharedDownloads
from scanners.runner import Runner
from scanners.simulated import Simulated
from schemas.records import ScanVerdict
from tests.scanners.engines import BusyTwice, Raises, ReadsFile, SaysConnectionError
from tests.scanners.http_files import FileServer
from tests.scanners.records import put_file, request


@pytest.fixture(autouse=True)
def quick_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry logic with pauses of tens of milliseconds: what is tested is which failures
    are retried and for how long, not the length of a production pause."""
    monkeypatch.setattr(downloads, "OUTAGE", Backoff(attempts=None, base_s=0.02, cap_s=0.1))
    monkeypatch.setattr(runner_module, "ENGINE_PAUSE_S", 0.02)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    (tmp_path / "served").mkdir()
    server = FileServer(tmp_path / "served")
    yield server
    server.stop()


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[list[Runner]]:
    """Runners made by the test; their engine processes are stopped afterwards."""
    made: list[Runner] = []
    yield made
    for runner in made:
        runner.engines.close()


def runner_for(runners: list[Runner], tmp_path: Path, scanner: Scanner) -> Runner:
    downloads = SharedDownloads(tmp_path / "objects")
    runner = Runner(Settings(), scanner.name or "test", scanner, downloads)
    runners.append(runner)
    return runner


def test_the_engine_scans_the_download_in_its_own_process(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    put_file(files.directory, "doc.txt", b"hello from storage")
    runner = runner_for(runners, tmp_path, ReadsFile())
    scan = runner.scan_request(request(files.start().url("doc.txt"), b"hello from storage"))
    assert (scan.verdict.verdict, scan.verdict.result) == ("clean", "hello from storage")
    assert scan.dead_letter is None
    runner.downloads.close()
    assert not list((tmp_path / "objects").iterdir())  # nothing left behind


def test_a_request_that_waited_past_its_fan_out_deadline_is_still_scanned(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    """After an outage the fan-out's deadline_at is long past: that was our pipeline's time,
    not the engine's, and used to give "the deadline passed before the scan could start"."""
    put_file(files.directory, "late.txt", b"late")
    runner = runner_for(runners, tmp_path, Simulated({"latency_ms": "0", "verdict": "suspicious"}))
    late = request(files.start().url("late.txt"), b"late", deadline_in_s=-3600)
    assert runner.scan_request(late).verdict.verdict == "suspicious"


def test_the_engine_gets_its_own_deadline_from_the_start_of_its_scan(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    put_file(files.directory, "a.txt", b"a")
    runner = runner_for(runners, tmp_path, Simulated({"hang": "1", "deadline_s": "1"}))
    started = time.monotonic()
    scan = runner.scan_request(request(files.start().url("a.txt"), b"a", deadline_in_s=3600))
    assert scan.verdict.verdict == "timeout"
    assert "within 1.0s" in scan.verdict.result
    assert time.monotonic() - started < 5


def test_a_hung_engine_process_is_replaced_for_the_next_request(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    put_file(files.directory, "a.txt", b"a")
    runner = runner_for(runners, tmp_path, Simulated({"hang": "1", "deadline_s": "0.5"}))
    runner.scan_request(request(files.start().url("a.txt"), b"a"))
    with runner.engines.process() as engine:
        assert engine.pid is None  # killed at the deadline; the next scan starts a new one


def test_an_engine_exception_is_an_error_verdict_with_its_text(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    put_file(files.directory, "a.txt", b"a")
    runner = runner_for(runners, tmp_path, Raises())
    scan = runner.scan_request(request(files.start().url("a.txt"), b"a"))
    assert (scan.verdict.verdict, scan.verdict.result) == (
        "error",
        "RuntimeError: engine fell over",
    )
    assert scan.dead_letter is None and runner.crashes == 0


def test_a_transient_engine_error_is_tried_again_by_its_type(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    put_file(files.directory, "a.txt", b"a")
    runner = runner_for(runners, tmp_path, BusyTwice())
    scan = runner.scan_request(request(files.start().url("a.txt"), b"a"))
    assert (scan.verdict.verdict, scan.verdict.result) == ("clean", "answered on try 3")


def test_an_error_that_only_reads_like_a_transient_one_is_not_tried_again(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    """Retries follow the exception's type, never the wording of its message."""
    put_file(files.directory, "a.txt", b"a")
    runner = runner_for(runners, tmp_path, SaysConnectionError())
    scan = runner.scan_request(request(files.start().url("a.txt"), b"a"))
    assert (scan.verdict.verdict, scan.verdict.result) == (
        "error",
        "RuntimeError: ConnectionError: not really (call 1)",
    )


def test_an_engine_that_kills_its_process_gets_error_after_bounded_tries(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    put_file(files.directory, "a.txt", b"a")
    runner = runner_for(runners, tmp_path, Simulated({"crash": "exit"}))
    scan = runner.scan_request(request(files.start().url("a.txt"), b"a"))
    assert scan.verdict.verdict == "error"
    assert scan.verdict.result == (
        "the engine crashed on this file 3 time(s): the engine process exited with status 70"
    )
    assert scan.dead_letter == scan.verdict.result and runner.crashes == 3


def test_an_engine_over_its_memory_ceiling_is_a_crash_not_the_hosts_problem(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    put_file(files.directory, "a.txt", b"a")
    runner = runner_for(runners, tmp_path, Simulated({"crash": "memory", "memory_mb": "300"}))
    scan = runner.scan_request(request(files.start().url("a.txt"), b"a"))
    assert scan.verdict.verdict == "error"
    assert "MemoryError: the engine went over its memory ceiling" in scan.verdict.result


def test_a_file_over_the_engines_limit_is_too_large_without_download(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    runner = runner_for(runners, tmp_path, ReadsFile())
    runner.scanner.max_file_size = 4
    scan = runner.scan_request(request(files.url("nowhere.bin"), b"12345"))
    assert scan.verdict.verdict == "too_large"


def test_a_type_the_engine_does_not_take_is_unsupported_without_an_engine(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    """Normally the orchestrator does not ask; a worker that read an older heartbeat might."""
    runner = runner_for(runners, tmp_path, ReadsFile({"accepts": "pdf"}))
    put_file(files.directory, "a.txt", b"text")
    url = files.start().url("a.txt")
    scan = runner.scan_request(request(url, b"text", file_type="text"))
    assert scan.verdict.verdict == "unsupported"
    assert scan.verdict.result == "text is not a type reads-file accepts (pdf)"
    record = ScanVerdict.decode(runner._verdict(request(files.url("x"), b"text"), scan).value)
    assert (record.verdict, record.engine_version, record.signatures_version) == (
        "unsupported",
        "",  # no engine looked: the orchestrator's refusals look the same (never reused)
        "",
    )
    unknown = runner.scan_request(request(url, b"text"))
    assert unknown.verdict.verdict == "clean"  # a type not known (None) is scanned


def test_bytes_that_also_read_as_a_type_the_engine_takes_are_scanned(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    """The orchestrator asks pdf-active about a PDF behind junk (detected as text): the
    request's type alone must not make the runner refuse it."""
    runner = runner_for(runners, tmp_path, ReadsFile({"accepts": "pdf"}))
    data = b"junk before the header\n%PDF-1.7\n"
    put_file(files.directory, "a.txt", data)
    scan = runner.scan_request(request(files.start().url("a.txt"), data, file_type="text"))
    assert scan.verdict.verdict == "clean"


def test_an_object_the_store_refuses_is_an_error_verdict_at_once(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    runner = runner_for(runners, tmp_path, Simulated({"latency_ms": "0"}))
    started = time.monotonic()
    scan = runner.scan_request(request(files.start().url("missing"), b"x"))
    assert scan.verdict.verdict == "error" and "could not download" in scan.verdict.result
    assert "404" in scan.verdict.result and time.monotonic() - started < 5


def test_a_storage_outage_shorter_than_the_deadline_is_retried(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    """Three quick tries used to end in an ``error`` verdict."""
    put_file(files.directory, "a.txt", b"after the outage")
    runner = runner_for(runners, tmp_path, ReadsFile())
    runner.scanner.deadline_s = 15
    timer = files.start_after(0.5)  # storage is away for a while: many tries
    try:
        scan = runner.scan_request(request(files.url("a.txt"), b"after the outage"))
    finally:
        timer.join()
    assert (scan.verdict.verdict, scan.verdict.result) == ("clean", "after the outage")


def test_a_storage_outage_longer_than_the_deadline_is_waited_out_while_the_url_is_valid(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    """Our storage away is not the engine's time: the deadline (1 s) does not cut it short."""
    put_file(files.directory, "b.txt", b"after a long outage")
    runner = runner_for(runners, tmp_path, ReadsFile())
    runner.scanner.deadline_s = 1
    timer = files.start_after(1.5)
    try:
        scan = runner.scan_request(request(files.url("b.txt"), b"after a long outage"))
    finally:
        timer.join()
    assert (scan.verdict.verdict, scan.verdict.result) == ("clean", "after a long outage")


def test_a_storage_outage_that_outlives_the_url_is_an_error(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    runner = runner_for(runners, tmp_path, ReadsFile())
    runner.scanner.deadline_s = 0.5
    expires = datetime.now(UTC) + timedelta(seconds=1.2)
    started = time.monotonic()
    scan = runner.scan_request(request(files.url("a.txt"), b"never served", url_expires_at=expires))
    assert scan.verdict.verdict == "error" and "tries" in scan.verdict.result
    assert 1.0 < time.monotonic() - started < 4  # the URL's validity, not the deadline


def test_the_download_window_is_the_urls_validity_and_at_least_the_deadline(
    tmp_path: Path, runners: list[Runner]
) -> None:
    runner = runner_for(runners, tmp_path, ReadsFile())
    runner.scanner.deadline_s = 30
    now = time.time()
    later = datetime.fromtimestamp(now + 600, UTC)
    assert runner.download_window(request("http://s/a", b"x", url_expires_at=later), now) == (
        pytest.approx(600)
    )
    soon = datetime.fromtimestamp(now + 5, UTC)
    assert runner.download_window(request("http://s/a", b"x", url_expires_at=soon), now) == 30


def test_heartbeats_carry_os_and_versions(tmp_path: Path, runners: list[Runner]) -> None:
    beat = runner_for(runners, tmp_path, Simulated({"vendor": "Acme"})).heartbeat()
    assert beat.name == "simulated" and beat.vendor == "Acme"
    assert beat.os and beat.engine_version == "1" and beat.signatures_version == "simulated"
    assert beat.accepts is None  # every type


def test_heartbeats_carry_the_types_an_instance_accepts(
    tmp_path: Path, runners: list[Runner]
) -> None:
    narrowed = Simulated({"accepts": "zip,pdf"})
    assert runner_for(runners, tmp_path, narrowed).heartbeat().accepts == ("pdf", "zip")


def _scan_side_by_side(runner: Runner, files: FileServer, count: int) -> list[str]:
    put_file(files.directory, "same.txt", b"same")
    verdicts: list[str] = []

    def one() -> None:
        verdicts.append(
            runner.scan_request(request(files.url("same.txt"), b"same")).verdict.verdict
        )

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return verdicts


def test_scans_in_flight_share_a_bounded_pool_of_engine_processes(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    runner = runner_for(runners, tmp_path, Simulated({"latency_ms": "400", "engines": "2"}))
    files.start()
    started = time.monotonic()
    assert _scan_side_by_side(runner, files, 4) == ["clean"] * 4
    assert 0.8 <= time.monotonic() - started < 10  # two rounds of two
    assert len(runner.engines.pids()) == 2
    runner.engines.idle_s = 0
    assert runner.engines.retire_idle() == 1  # down to the one kept
    assert len(runner.engines.pids()) == 1


def test_waiting_for_a_free_engine_process_is_not_the_engines_time(
    tmp_path: Path, files: FileServer, runners: list[Runner]
) -> None:
    """Four 0.4 s scans on one engine process take 1.6 s; each has a 1 s deadline of its own."""
    options = {"latency_ms": "400", "deadline_s": "1", "engines": "1"}
    runner = runner_for(runners, tmp_path, Simulated(options))
    files.start()
    assert _scan_side_by_side(runner, files, 4) == ["clean"] * 4
