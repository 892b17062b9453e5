"""Types from content; zip directories read without trusting them."""

import io
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from ops.filetype import also_readable, detect
from tests.scanners.hostile import Entry, million_entry_zip, zip_bytes


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.7\n", "pdf"),
        (b"MZ\x90\x00", "pe"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"\x1f\x8b\x08", "gzip"),
        (b"hello\nworld\n", "text"),
        (b"\x00\x01\x02\x03", "binary"),
        (b"", "text"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    ],
)
def test_magic_bytes(head: bytes, kind: str) -> None:
    assert detect(head)[0] == kind


def test_tar_is_found_by_its_ustar_marker() -> None:
    assert detect(b"\0" * 257 + b"ustar\x0000")[0] == "tar"


def test_a_zip_with_word_parts_is_docx(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    path.write_bytes(buffer.getvalue())
    assert detect(path.read_bytes()[:4096], path) == (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("a.txt", "a")
    assert detect(plain.read_bytes()[:4096], plain)[0] == "zip"


def test_a_million_entry_zip_is_typed_from_its_first_entries_only(tmp_path: Path) -> None:
    """zipfile.ZipFile would build a million ZipInfo objects (~270 MiB) to tell zip from docx."""
    path = tmp_path / "many.zip"
    data = million_entry_zip()
    path.write_bytes(data)
    head = data[:4096]
    del data
    tracemalloc.start()
    try:
        kind = detect(head, path)[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kind == "zip"
    assert peak < 8 << 20, f"detect allocated {peak >> 20} MiB at its peak"


def test_a_zip_with_a_broken_end_record_is_a_plain_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    data = zip_bytes([Entry.stored("[Content_Types].xml", b"<Types/>")])
    path.write_bytes(data[:-3])  # the end record's comment length no longer fits
    assert detect(data[:4096], path)[0] == "zip"


def _typed(tmp_path: Path, data: bytes) -> tuple[str, frozenset[str]]:
    path = tmp_path / "upload"
    path.write_bytes(data)
    kind = detect(data[:4096], path)[0]
    return kind, also_readable(data[:4096], path, kind)


def test_a_pdf_behind_junk_is_text_also_readable_as_pdf(tmp_path: Path) -> None:
    """PDF readers take %PDF- anywhere in the first KiB; the primary type stays text."""
    assert _typed(tmp_path, b"x" * 1000 + b"%PDF-1.7\n1 0 obj") == ("text", {"pdf"})
    assert _typed(tmp_path, b"x" * 1100 + b"%PDF-1.7\n") == ("text", frozenset())  # too far


def test_a_png_pdf_polyglot_is_png_also_readable_as_pdf(tmp_path: Path) -> None:
    polyglot = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + b"\x00" * 40 + b"%PDF-1.4\n"
    assert _typed(tmp_path, polyglot) == ("png", {"pdf"})


def test_an_executable_with_a_zip_appended_is_pe_also_readable_as_zip(tmp_path: Path) -> None:
    sfx = b"MZ\x90\x00" + b"\x00" * 5000 + zip_bytes([Entry.stored("a.txt", b"a")])
    assert _typed(tmp_path, sfx) == ("pe", {"zip"})
    # A zip reader more lenient than zipfile opens it with junk after it, too.
    assert _typed(tmp_path, sfx + b"junk after the zip") == ("pe", {"zip"})


def test_a_file_of_one_type_only_has_no_other(tmp_path: Path) -> None:
    assert _typed(tmp_path, b"%PDF-1.7\n") == ("pdf", frozenset())
    assert _typed(tmp_path, b"MZ\x90\x00" + b"\x00" * 5000) == ("pe", frozenset())
    zipped = zip_bytes([Entry.stored("a.txt", b"a")])
    assert _typed(tmp_path, zipped) == ("zip", frozenset())  # its end record is no other type
    # A PDF stored first in a zip is within a PDF reader's first KiB: the zip is both.
    stored_pdf = zip_bytes([Entry.stored("c.pdf", b"%PDF-1.7")])
    assert _typed(tmp_path, stored_pdf) == ("zip", {"pdf"})
    assert also_readable(b"plain text", None, "text") == frozenset()  # no file: head only
