"""``intellidox upload`` as a CI job runs it: a real process against a real pipeline stack.

Exit codes (0 clean, 1 flagged, 2 error), stdout holding nothing but results, ``--json``,
``--no-wait``, and retries (a rate-limited key gets through by honouring Retry-After).  The
stream parser and error classification are tested without services at the end."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ops.backoff import Transient
from ops.stack import free_port
from ops.upload import ApiError, check, sse_events
from tests.gateway.conftest import EICAR
from tests.plugins.pipeline import Pipeline


def run_cli(
    pipeline: Pipeline, *args: str, key: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ops.cli", "upload", "--url", url or pipeline.url]
    argv += ["--api-key", key or pipeline.settings.dev_api_key, *args]
    return subprocess.run(argv, env=pipeline.env, capture_output=True, text=True, timeout=180)


@pytest.fixture
def clean_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text(f"meeting notes {uuid.uuid4()}\n")  # unique: scanned, not reused
    return path


@pytest.fixture
def eicar_file(tmp_path: Path) -> Path:
    path = tmp_path / "eicar.com"
    path.write_bytes(EICAR)
    return path


@pytest.mark.integration
def test_a_clean_file_exits_0_with_one_result_line_on_stdout(
    pipeline: Pipeline, clean_file: Path
) -> None:
    done = run_cli(pipeline, str(clean_file))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{clean_file}: OK 0/3 engines flagged")
    assert "verdict   clamav" in done.stderr and "status    done" not in done.stdout


@pytest.mark.integration
def test_eicar_exits_1_and_json_is_one_document_per_file(
    pipeline: Pipeline, clean_file: Path, eicar_file: Path
) -> None:
    done = run_cli(pipeline, "--json", str(eicar_file), str(clean_file))
    assert done.returncode == 1, done.stderr
    eicar, clean = (json.loads(line) for line in done.stdout.splitlines())  # nothing else
    assert eicar["sha256"] == hashlib.sha256(EICAR).hexdigest()
    # The same bytes may have been scanned before in this stack (another test's EICAR): then
    # the result is that document's, under the name it was uploaded with.
    assert eicar["path"] == str(eicar_file) and eicar["file_size"] == len(EICAR)
    assert eicar["file_name"] == "eicar.com" or eicar["duplicate_of"]
    assert eicar["status"] == "done" and eicar["ratio"] == "1/3"
    assert eicar["flagged"] == ["clamav"] and eicar["exit_code"] == 1
    assert {v["scanner"]: v["verdict"] for v in eicar["verdicts"]}["clamav"] == "malicious"
    assert eicar["id"] and eicar["file_type"] == "text"
    assert clean["exit_code"] == 0 and clean["ratio"] == "0/3" and clean["error"] is None
    assert clean["metadata"]["text_lines"] == 1


@pytest.mark.integration
def test_a_bad_key_exits_2_and_says_why(pipeline: Pipeline, clean_file: Path) -> None:
    done = run_cli(pipeline, str(clean_file), key="not-a-key")
    assert done.returncode == 2
    assert done.stdout.startswith(f"{clean_file}: ERROR POST /docs/request-upload: 401")
    assert "retry" not in done.stderr  # a refusal is not retried


@pytest.mark.integration
def test_an_unreachable_gateway_is_retried_then_exits_2(
    pipeline: Pipeline, clean_file: Path
) -> None:
    started = time.monotonic()
    done = run_cli(
        pipeline, "--json", "--retries", "2", str(clean_file), url=f"http://127.0.0.1:{free_port()}"
    )
    assert done.returncode == 2
    assert done.stderr.count("; retry ") == 2
    result = json.loads(done.stdout)
    assert result["exit_code"] == 2 and "gave up after 3 tries" in result["error"]
    assert result["sha256"] == hashlib.sha256(clean_file.read_bytes()).hexdigest()
    assert time.monotonic() - started < 20  # bounded: 0.25-0.5 s, then 0.5-1 s


@pytest.mark.integration
def test_one_missing_file_is_an_error_but_the_others_are_scanned(
    pipeline: Pipeline, clean_file: Path, tmp_path: Path
) -> None:
    done = run_cli(pipeline, str(tmp_path / "missing.pdf"), str(clean_file))
    assert done.returncode == 2
    missing, clean = done.stdout.splitlines()
    assert missing.startswith(f"{tmp_path / 'missing.pdf'}: ERROR") and ": OK 0/3" in clean


@pytest.mark.integration
def test_no_wait_returns_after_confirm(pipeline: Pipeline, clean_file: Path) -> None:
    done = run_cli(pipeline, "--no-wait", "--json", str(clean_file))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "in_progress" and result["id"] and result["verdicts"] == []
    assert "verdict " not in done.stderr  # it did not watch


@pytest.mark.integration
def test_a_rate_limited_key_gets_through_by_honouring_retry_after(
    pipeline: Pipeline, clean_file: Path
) -> None:
    key = pipeline.add_tenant(f"cli-{uuid.uuid4().hex[:6]}", rate_per_s=1, rate_burst=1)
    done = run_cli(pipeline, "-q", str(clean_file), key=key)
    assert done.returncode == 0, done.stderr
    assert ": 429 rate limit hit (requests)" in done.stderr and "; retry 1 in 1." in done.stderr
    assert done.stdout.startswith(f"{clean_file}: OK 0/3")


# -- without services ----------------------------------------------------------------------


async def _lines(*chunks: bytes) -> Any:
    for chunk in chunks:
        yield chunk


async def test_the_stream_parser_yields_events_with_their_ids() -> None:
    wire = [
        b"retry: 2000\n",
        b"\n",
        b": heartbeat\n",
        b"\n",
        b"id: 7\n",
        b"event: status\n",
        b'data: {"status": "in_progress"}\n',
        b"\n",
        b"event: done\n",
        b'data: {"scanned": 3}\n',
        b"\n",
    ]
    events = [e async for e in sse_events(_lines(*wire))]
    assert events == [("status", {"status": "in_progress"}, "7"), ("done", {"scanned": 3}, None)]


def test_transient_answers_are_told_from_refusals() -> None:
    with pytest.raises(Transient) as limited:
        check("GET /x", 429, {"Retry-After": "3"}, '{"error": "rate limit hit", "status": 429}')
    assert limited.value.retry_after_s == 3.0 and "rate limit hit" in str(limited.value)
    for status in (500, 502, 503, 504):
        with pytest.raises(Transient):
            check("GET /x", status, {}, "")
    for status in (400, 401, 404, 409, 413, 422, 501):
        with pytest.raises(ApiError):
            check("GET /x", status, {}, "")
    check("GET /x", 202, {}, "")  # a success passes


def test_an_object_store_error_never_echoes_the_signed_request() -> None:
    xml = (
        "<Error><Code>SignatureDoesNotMatch</Code><Message>The signature differs</Message>"
        "<StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign></Error>"
    )
    with pytest.raises(ApiError) as refused:
        check("upload", 403, {}, xml)
    assert str(refused.value) == "upload: 403 SignatureDoesNotMatch: The signature differs"
