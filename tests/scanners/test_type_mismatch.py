"""TypeMismatch: declared extension / content type against the detected type."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import pytest

from scanners.base import ScanJob
from scanners.type_mismatch import CONTENT_TYPES, EXTENSIONS, TypeMismatch
from tests.scanners.hostile import million_entry_zip

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PE = b"MZ" + b"\x90\x00" * 30 + b"This program cannot be run in DOS mode.\r\n" + bytes(64)
ELF = b"\x7fELF\x02\x01\x01" + bytes(57)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def ooxml(path: Path, part: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{part}/document.xml", "<doc/>")
    return path


def plain_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return path


def scan(path: Path, file_name: str, content_type: str | None) -> tuple[str, str]:
    job = ScanJob("doc-1", file_name, path.stat().st_size, None, content_type, "0" * 64)
    verdict = TypeMismatch().scan(path, job)
    return verdict.verdict, verdict.result


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "file_name", "content_type"),
    [
        (PDF, "report.pdf", "application/pdf"),
        (PDF, "REPORT.PDF", None),
        (PE, "setup.exe", "application/x-msdownload"),
        (PE, "driver.dll", "application/octet-stream"),
        (JPEG, "photo.jpeg", "image/jpeg"),
        (PNG, "photo.png", "image/png"),
        (b"name,city\nAda,London\n", "people.csv", "text/csv; charset=utf-8"),
        (b"caf\xe9,cr\xe8me\n" * 20, "legacy.csv", "text/csv"),  # latin-1 text
        (b'{"a": 1}', "data.json", "application/json"),
        (ELF, "tool", None),  # no extension, no content type: nothing to check
        (PE, "blob.bin", "application/octet-stream"),  # unknown extension, generic type
        (b"", "empty.pdf", "application/pdf"),
    ],
)
def test_consistent_or_unchecked_is_clean(
    tmp_path: Path, data: bytes, file_name: str, content_type: str | None
) -> None:
    verdict, _ = scan(write(tmp_path, data), file_name, content_type)
    assert verdict == "clean"


@pytest.mark.parametrize(
    ("data", "file_name", "content_type"),
    [
        (PE, "invoice.pdf", "application/pdf"),
        (PE, "invoice.pdf", None),
        (PE, "invoice", "application/pdf"),
        (PE, "photo.jpg", "image/jpeg"),
        (ELF, "notes.txt", "text/plain"),
        (PE, "setup.exe", "application/pdf"),  # the name is honest, the declared type is not
    ],
)
def test_executable_disguised_as_document_is_malicious(
    tmp_path: Path, data: bytes, file_name: str, content_type: str | None
) -> None:
    verdict, result = scan(write(tmp_path, data), file_name, content_type)
    assert verdict == "malicious"
    assert "executable disguised as document" in result


def test_docx_that_is_a_plain_zip_is_suspicious(tmp_path: Path) -> None:
    verdict, result = scan(plain_zip(tmp_path / "u"), "contract.docx", DOCX_MIME)
    assert verdict == "suspicious"
    assert ".docx" in result
    assert "zip" in result


def test_real_docx_is_clean_and_xlsx_named_docx_is_not(tmp_path: Path) -> None:
    assert scan(ooxml(tmp_path / "a", "word"), "contract.docx", DOCX_MIME)[0] == "clean"
    assert scan(ooxml(tmp_path / "b", "word"), "bundle.zip", "application/zip")[0] == "clean"
    assert scan(ooxml(tmp_path / "c", "xl"), "contract.docx", None)[0] == "suspicious"


def test_jpg_that_is_a_pdf_is_suspicious(tmp_path: Path) -> None:
    verdict, result = scan(write(tmp_path, PDF), "photo.jpg", "image/jpeg")
    assert verdict == "suspicious"
    assert "content is pdf" in result


def test_content_type_alone_can_mismatch(tmp_path: Path) -> None:
    verdict, result = scan(write(tmp_path, PDF), "report.pdf", "image/png")
    assert verdict == "suspicious"
    assert "image/png" in result
    assert ".pdf" not in result


def test_binary_named_txt_is_suspicious(tmp_path: Path) -> None:
    verdict, _ = scan(write(tmp_path, bytes(range(256)) * 4), "notes.txt", None)
    assert verdict == "suspicious"


def test_tables_are_lower_case_and_identity() -> None:
    assert all(key == key.lower() and not key.startswith(".") for key in EXTENSIONS)
    assert all(key == key.lower() for key in CONTENT_TYPES)
    scanner = TypeMismatch()
    assert scanner.name == "type-mismatch"
    assert scanner.max_file_size is None
    assert scanner.signatures_version()


def test_a_million_entry_zip_is_typed_without_parsing_its_directory(tmp_path: Path) -> None:
    """Detection used to parse the whole central directory with zipfile (~300 MB here)."""
    path = tmp_path / "many.zip"
    path.write_bytes(million_entry_zip())
    tracemalloc.start()
    try:
        verdict, result = scan(path, "report.docx", None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (verdict, result) == ("suspicious", ".docx declared, but content is zip")
    assert peak < 8 << 20, f"{peak >> 20} MiB at the peak"
