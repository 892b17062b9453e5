"""The pdf-active engine on small PDFs built here, one active feature at a time."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from scanners.base import ScanJob, Verdict
from scanners.pdf_active import NameCounter, PdfActiveContent, decode_name


def job_for(path: Path) -> ScanJob:
    return ScanJob("doc-1", path.name, path.stat().st_size, "pdf", "application/pdf", "0" * 64)


def scan(path: Path, **options: str) -> Verdict:
    return PdfActiveContent(options).scan(path, job_for(path))


def pdf(*objects: bytes) -> bytes:
    """A PDF with the given objects (numbered from 1) and a classic xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    return bytes(out + b"startxref\n%d\n%%%%EOF\n" % xref)


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [] /Count 0 >>"


def write(tmp_path: Path, data: bytes, name: str = "doc.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_javascript_run_on_open_is_suspicious(tmp_path: Path) -> None:
    data = pdf(
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>",
        PAGES,
        b"<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\)) >>",
    )
    verdict = scan(write(tmp_path, data))
    assert verdict == Verdict(
        "suspicious",
        "JavaScript, OpenAction with JavaScript "
        "(/JavaScript=1 /JS=1 /OpenAction=1; 0 objects in object streams checked)",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<< /S /Launch /F (cmd.exe) >>", "Launch action"),
        (b"<< /Type /EmbeddedFile /Length 0 >>", "embedded file"),
        (b"<< /FT /Tx /AA << /K 4 0 R >> >>", "additional (automatic) actions"),
        (b"<< /Names << /JavaScript 4 0 R >> >>", "JavaScript"),
    ],
)
def test_each_active_feature_is_suspicious(tmp_path: Path, body: bytes, reason: str) -> None:
    verdict = scan(write(tmp_path, pdf(CATALOG, PAGES, body)))
    assert verdict.verdict == "suspicious"
    assert verdict.result.startswith(reason + " (")


def test_hex_escaped_names_are_decoded_and_reported(tmp_path: Path) -> None:
    data = pdf(CATALOG, PAGES, b"<< /S /J#61va#53cript /J#53 (x) /#4F#70enAction 3 0 R >>")
    verdict = scan(write(tmp_path, data))
    assert verdict.verdict == "suspicious"
    assert "/JavaScript=1 /JS=1 /OpenAction=1" in verdict.result
    assert "#xx-escaped: /JavaScript=1 /JS=1 /OpenAction=1" in verdict.result


def test_links_only_are_clean_with_the_counts(tmp_path: Path) -> None:
    link = b"<< /Type /Annot /Subtype /Link /A << /S /URI /URI (https://example.com/) >> >>"
    verdict = scan(write(tmp_path, pdf(CATALOG, PAGES, link)))
    assert verdict == Verdict("clean", "/URI=2; 0 objects in object streams checked")


def test_plain_open_action_and_look_alike_names_are_clean(tmp_path: Path) -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction [3 0 R /Fit] >>"
    info = b"<< /AAPL:Keywords [] /JSON (x) /URIs 1 /JavaScripts 2 /Title (/JS is text) >>"
    verdict = scan(write(tmp_path, pdf(catalog, PAGES, info)))
    # "(/JS is text)" is a string, but pdfid-style counting sees the name-like token: a
    # known, accepted over-count; everything else must not count
    assert verdict.verdict == "suspicious"
    assert "/JS=1 /OpenAction=1;" in verdict.result
    info = b"<< /AAPL:Keywords [] /JSON (x) /URIs 1 /JavaScripts 2 >>"
    verdict = scan(write(tmp_path, pdf(catalog, PAGES, info)))
    assert verdict == Verdict("clean", "/OpenAction=1; 0 objects in object streams checked")


def test_no_active_content_is_clean(tmp_path: Path) -> None:
    verdict = scan(write(tmp_path, pdf(CATALOG, PAGES)))
    assert verdict == Verdict("clean", "no active content; 0 objects in object streams checked")


def object_stream_pdf() -> bytes:
    """Catalog with /OpenAction → object 4, which hides inside compressed object stream 3."""
    hidden = b"<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\)) >>"
    header = b"4 0 "
    objstm = zlib.compress(header + hidden)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    bodies = {
        1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        2: PAGES,
        3: b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(header), len(objstm))
        + objstm
        + b"\nendstream",
    }
    for number, body in bodies.items():
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    offsets[5] = len(out)
    rows = [
        (0, 0, 65535),
        (1, offsets[1], 0),
        (1, offsets[2], 0),
        (1, offsets[3], 0),
        (2, 3, 0),
        (1, offsets[5], 0),
    ]
    table = b"".join(
        t.to_bytes(1, "big") + f.to_bytes(4, "big") + g.to_bytes(2, "big") for t, f, g in rows
    )
    out += (
        (
            b"5 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
            % len(table)
        )
        + table
        + b"\nendstream\nendobj\n"
    )
    return bytes(out + b"startxref\n%d\n%%%%EOF\n" % offsets[5])


def test_javascript_hidden_in_an_object_stream_is_found_by_pypdf(tmp_path: Path) -> None:
    path = write(tmp_path, object_stream_pdf())
    verdict = scan(path)
    assert verdict == Verdict(
        "suspicious",
        "JavaScript, OpenAction with JavaScript "
        "(/JavaScript=1 /JS=1 /OpenAction=1; 1 objects in object streams checked)",
    )
    # without pypdf (or over deep_max_size) only the raw bytes are seen
    expected = Verdict("clean", "/OpenAction=1")
    assert scan(path, deep_max_size="0") == expected
    assert scan(path, deep_max_size="100") == expected


def test_a_broken_pdf_still_gets_the_raw_scan(tmp_path: Path) -> None:
    verdict = scan(write(tmp_path, b"%PDF-1.4\n1 0 obj << /S /Launch /F (x.exe) >>\n"))
    assert verdict.verdict == "suspicious"
    assert verdict.result.startswith("Launch action (/Launch=1; object streams not checked (")


@pytest.mark.parametrize("chunk_size", [16, 17, 19, 23, 31, 64, 1 << 20])
def test_names_split_across_chunks_are_counted_once(tmp_path: Path, chunk_size: int) -> None:
    data = pdf(
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>",
        PAGES,
        b"<< /S /J#61vaScript /JS (a) /URI (b) /Launch<</F (c)>> /AA<<>> /EmbeddedFile[]>>",
    )
    verdict = scan(write(tmp_path, data), chunk_size=str(chunk_size), deep_max_size="0")
    counts = "/JavaScript=1 /JS=1 /OpenAction=1 /Launch=1 /EmbeddedFile=1 /AA=1 /URI=1"
    assert counts in verdict.result


def test_counter_fed_one_byte_at_a_time() -> None:
    counter = NameCounter()
    for byte in b"<</JavaScript/JS/J#53/AA\n/AAPL/URI>>/Launch":
        counter.feed(bytes([byte]))
    counter.feed(b"", final=True)
    assert counter.counts == {"JavaScript": 1, "JS": 2, "AA": 1, "URI": 1, "Launch": 1}
    assert counter.escaped == {"JS": 1}
    assert decode_name(b"J#61va#53cript") == b"JavaScript"


def test_not_a_pdf_is_unsupported(tmp_path: Path) -> None:
    docx = write(tmp_path, b"PK\x03\x04" + b"\0" * 100 + b"/JavaScript", "a.docx")
    assert scan(docx).verdict == "unsupported"
    late = write(tmp_path, b"\0" * 2000 + pdf(CATALOG, PAGES), "late.pdf")
    assert scan(late).verdict == "unsupported"
    early = write(tmp_path, b"junk" * 100 + pdf(CATALOG, PAGES, b"<< /JS (x) >>"), "early.pdf")
    assert scan(early).verdict == "suspicious"
    assert scan(write(tmp_path, b"", "empty.pdf")).verdict == "unsupported"


def test_too_large(tmp_path: Path) -> None:
    path = write(tmp_path, pdf(CATALOG, PAGES, b"<< /JS (x) >>"))
    assert scan(path, max_file_size="100").verdict == "too_large"
    big_job = ScanJob("doc-2", "doc.pdf", 2 << 30, "pdf", None, "0" * 64)
    assert PdfActiveContent().scan(path, big_job).verdict == "too_large"
    assert PdfActiveContent().max_file_size == 1 << 30


def test_header_found_with_small_chunks(tmp_path: Path) -> None:
    path = write(tmp_path, b" " * 700 + pdf(CATALOG, PAGES, b"<< /JS (x) >>"))
    assert scan(path, chunk_size="16").verdict == "suspicious"
