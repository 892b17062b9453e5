"""The orchestrator's decision per live scanner: asked, reused, or answered unsupported."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.records import ScannerHeartbeat, ScanVerdict
from streams import fanout

DOC = "01a21e2b-1134-7384-8db8-e24c5ec7fb12"
EARLIER = "01a21e2b-0000-7384-8db8-e24c5ec7fb12"
NOW = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


def beat(name: str, accepts: tuple[str, ...] | None = None) -> ScannerHeartbeat:
    return ScannerHeartbeat(
        name, f"{name} Inc", "Linux", "h", "h/1", "1", "s1", 60.0, None, NOW, accepts
    )


LIVE = [beat("clamav"), beat("pdf-active", ("pdf",)), beat("office-macros", ("docx", "ole"))]


def reused(scanner: str, verdict: str = "clean", engine_version: str = "1") -> ScanVerdict:
    return ScanVerdict(
        DOC, "t", scanner, "v", verdict, "", engine_version, "s1", NOW, NOW, reused_from=EARLIER
    )


def plan(file_type: str | None, found: list[ScanVerdict] | None = None) -> fanout.FanOut:
    return fanout.plan(LIVE, found or [], file_type, DOC, "t", NOW)


def names(items: tuple[ScannerHeartbeat | ScanVerdict, ...]) -> list[str]:
    return [i.name if isinstance(i, ScannerHeartbeat) else i.scanner for i in items]


def test_a_scanner_that_does_not_accept_the_type_is_answered_not_asked() -> None:
    decided = plan("text")
    assert names(decided.ask) == ["clamav"]
    assert names(decided.unsupported) == ["pdf-active", "office-macros"]
    pdf = decided.unsupported[0]
    assert (pdf.doc_id, pdf.tenant, pdf.verdict, pdf.vendor) == (
        DOC,
        "t",
        "unsupported",
        "pdf-active Inc",
    )
    assert pdf.result == "text is not a type pdf-active accepts (pdf)"
    assert (pdf.engine_version, pdf.signatures_version, pdf.reused_from) == ("", "", None)
    assert pdf.start_at == pdf.end_at == NOW


@pytest.mark.parametrize(
    ("file_type", "asked"),
    [
        ("pdf", ["clamav", "pdf-active"]),
        ("docx", ["clamav", "office-macros"]),
        (None, ["clamav", "pdf-active", "office-macros"]),  # type not known: every scanner
    ],
)
def test_scanners_that_accept_the_type_are_asked(file_type: str | None, asked: list[str]) -> None:
    decided = plan(file_type)
    assert names(decided.ask) == asked
    assert len(decided.ask) + len(decided.unsupported) == len(LIVE)


def test_the_declaration_of_the_day_wins_over_a_reused_verdict() -> None:
    """pdf-active scanned these bytes when it still took every type: now it is unsupported."""
    decided = plan("text", [reused("clamav"), reused("pdf-active", "suspicious")])
    assert names(decided.reused) == ["clamav"]
    assert names(decided.unsupported) == ["pdf-active", "office-macros"]
    assert decided.ask == ()


def test_an_unsupported_the_orchestrator_gave_is_never_reused() -> None:
    """office-macros refused text once; a widened instance (?accepts=all) is asked."""
    widened = [beat("clamav"), beat("office-macros")]
    found = [reused("clamav"), reused("office-macros", "unsupported", engine_version="")]
    decided = fanout.plan(widened, found, "text", DOC, "t", NOW)
    assert names(decided.reused) == ["clamav"] and names(decided.ask) == ["office-macros"]


def test_an_unsupported_the_engine_found_in_the_bytes_is_reused() -> None:
    found = [reused("office-macros", "unsupported", engine_version="olevba 0.60")]
    decided = plan("docx", found)
    assert names(decided.reused) == ["office-macros"] and names(decided.ask) == ["clamav"]


def test_reused_verdicts_of_scanners_not_live_now_are_kept() -> None:
    decided = plan("text", [reused("yara")])
    assert names(decided.reused) == ["yara"]


@pytest.mark.parametrize(
    ("file_type", "also", "asked"),
    [
        ("text", ("pdf",), ["clamav", "pdf-active"]),  # a PDF behind junk
        ("png", ("pdf",), ["clamav", "pdf-active"]),  # a polyglot
        ("pe", ("zip",), ["clamav", "archive-inspector"]),  # a self-extracting executable
        ("pe", (), ["clamav"]),
    ],
)
def test_a_scanner_is_asked_for_a_type_the_bytes_can_also_be_read_as(
    file_type: str, also: tuple[str, ...], asked: list[str]
) -> None:
    live = [*LIVE[:2], beat("archive-inspector", ("zip", "gzip", "tar"))]
    decided = fanout.plan(live, [], file_type, DOC, "t", NOW, also)
    assert names(decided.ask) == asked
    assert set(names(decided.unsupported)) == {s.name for s in live} - set(asked)


def test_the_refusal_names_the_detected_type_when_no_other_type_is_taken() -> None:
    decided = fanout.plan(LIVE, [], "png", DOC, "t", NOW, ("zip",))
    pdf = next(v for v in decided.unsupported if v.scanner == "pdf-active")
    assert pdf.result == "png is not a type pdf-active accepts (pdf)"
