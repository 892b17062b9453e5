import io
import zipfile
from pathlib import Path

import pytest

from streams.filetype import detect


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
