"""One dead-letter header format, read back whoever wrote it."""

from __future__ import annotations

from schemas.dead_letters import DeadLetter, replayed_headers


def test_headers_round_trip() -> None:
    letter = DeadLetter.now(
        "ValueError: bad", "extraction", "docs.confirmed", 3, 41, trace="Traceback..."
    )
    headers = letter.headers()
    assert set(headers) == {
        "x-error",
        "x-stage",
        "x-source-topic",
        "x-source-partition",
        "x-source-offset",
        "x-failed-at",
        "x-trace",
    }
    assert DeadLetter.from_headers(list(headers.items())) == letter
    scanner = DeadLetter.now("InvalidRequest: x", "scanner", "scan.requests", 0, 9, scanner="yara")
    assert headers.keys() - {"x-trace"} < scanner.headers().keys()
    assert DeadLetter.from_headers(scanner.headers().items()).scanner == "yara"


def test_long_errors_and_traces_are_cut() -> None:
    letter = DeadLetter.now("E: " + "x" * 5000, "tracker", "t", 0, 0, trace="y" * 9000)
    assert len(letter.error) == 1000 and len(letter.trace) == 2000


def test_records_written_before_the_one_format_still_read() -> None:
    # The scanner hosts' old headers had no stage, topic, partition or time.
    old = [("x-error", b"InvalidRequest: sha256"), ("x-scanner", b"sim"), ("x-source-offset", b"7")]
    letter = DeadLetter.from_headers(old, timestamp_ms=1234)
    assert (letter.stage, letter.scanner, letter.source_offset) == ("scanner", "sim", 7)
    assert (letter.source_partition, letter.failed_at_ms) == (None, 1234)
    assert DeadLetter.from_headers([]).reason == "(no reason given)"


def test_the_reason_masks_what_varies() -> None:
    a = DeadLetter.now(
        "KeyError: document 0190a3b4-1c2d-7e8f-9a0b-1c2d3e4f5a6b at 17\nTraceback", "s", "t", 0, 0
    )
    b = DeadLetter.now(
        "KeyError: document 0190a3b4-0000-7e8f-9a0b-1c2d3e4f5a6b at 9000", "s", "t", 0, 0
    )
    assert a.reason == b.reason == "KeyError: document <id> at <n>"
    assert DeadLetter.now("ValueError: 'abc' != 'def'", "s", "t", 0, 0).reason == (
        "ValueError: <value> != <value>"
    )


def test_a_replayed_dead_letter_keeps_its_headers_and_says_when_it_went_back() -> None:
    headers = list(DeadLetter.now("E: x", "tracker", "docs.status", 0, 7).headers().items())
    back = replayed_headers(headers, now_s=1700000000.5)
    assert back[:-1] == headers and back[-1] == ("x-replayed-at", b"1700000000.5")
    assert DeadLetter.from_headers(back).source_offset == 7
