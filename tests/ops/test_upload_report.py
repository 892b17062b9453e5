"""What the upload CLI prints and exits with, without services."""

from __future__ import annotations

import json

from ops.upload_report import ERROR, FileResult, Verdict, exit_code, from_api

CLEAN = Verdict("clamav", "clean", "OK", False)
MALICIOUS = Verdict("clamav", "malicious", "Eicar-Test-Signature", False)
SUSPICIOUS = Verdict("office-macros", "suspicious", "AutoOpen macro", False)
TIMEOUT = Verdict("sim-slow", "timeout", None, False)


def _done(*verdicts: Verdict) -> FileResult:
    return FileResult("a.pdf", "a.pdf", "id-1", status="done", verdicts=verdicts, expected=3)


def test_exit_codes_are_clamscans() -> None:
    assert exit_code([_done(CLEAN, TIMEOUT)]) == 0  # nothing flagged (a timeout is not a flag)
    assert exit_code([_done(CLEAN), _done(MALICIOUS)]) == 1
    assert exit_code([_done(SUSPICIOUS)]) == 1
    failed = FileResult("b.pdf", "b.pdf", error="401 unknown or revoked API key")
    assert exit_code([_done(MALICIOUS), failed]) == ERROR  # an error wins: the run is incomplete
    assert exit_code([FileResult("c", "c", status="rejected")]) == ERROR
    assert exit_code([FileResult("c", "c", status="failed")]) == ERROR
    assert exit_code([FileResult("c", "c", "id", status="in_progress")]) == 0  # --no-wait
    assert exit_code([]) == 0


def test_one_line_per_file() -> None:
    assert _done(CLEAN).line() == "a.pdf: OK 0/3 engines flagged  [id-1]"
    assert _done(MALICIOUS, CLEAN).line() == (
        "a.pdf: FLAGGED 1/3 engines (clamav: Eicar-Test-Signature)  [id-1]"
    )
    assert FileResult("a.pdf", "a.pdf", error="boom").line() == "a.pdf: ERROR boom"
    assert FileResult("a.pdf", "a.pdf", "id-1", status="in_progress").line() == (
        "a.pdf: SUBMITTED (in_progress)  [id-1]"
    )


def test_the_json_document() -> None:
    body = json.loads(_done(MALICIOUS, CLEAN, TIMEOUT).render(as_json=True))
    assert body["ratio"] == "1/3" and body["flagged"] == ["clamav"] and body["exit_code"] == 1
    assert body["verdicts"][0] == {
        "scanner": "clamav",
        "verdict": "malicious",
        "result": "Eicar-Test-Signature",
        "reused": False,
    }
    assert set(body) >= {"id", "file_name", "sha256", "file_size", "file_type", "status"}
    assert set(body) >= {"metadata", "verdicts", "ratio", "error"}


def test_a_result_from_the_api() -> None:
    meta = {
        "id": "d1",
        "file_name": "r.pdf",
        "sha256": "ab" * 32,
        "file_size": 10,
        "file_type": "pdf",
        "meta": {"pdf_pages": 3},
    }
    scan = {
        "status": "done",
        "summary": {"flagged": 0, "scanned": 1, "expected": 1},
        "scan_results": [{"scanner": "clamav", "verdict": "clean", "result": "OK"}],
    }
    result = from_api("dir/r.pdf", meta, scan, None)
    assert result.ratio == "0/1" and result.meta == {"pdf_pages": 3} and result.exit_code == 0
    assert result.verdicts == (Verdict("clamav", "clean", "OK", False),)
