"""The office-macros engine on Office files built here: real OLE compound files carrying
MS-OVBA-compressed VBA modules, OOXML zips around them, and an Excel SYLK with XLM macros.

The OLE builder below writes a minimal compound file (MS-CFB v3: one FAT sector, one
directory sector, streams of at least 4096 bytes so no mini stream is needed).  A module
stream is, as in Office, a "performance cache" (here zeros) followed by the compressed
source; there is no PROJECT/dir stream, so olevba finds the module by its compressed
"Attribut" signature, as it does for damaged or stripped documents.  The macros only
name harmless programs and are never run.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from scanners.base import ScanJob, Verdict
from scanners.office_macros import OfficeMacros, sniff
from tests.scanners.hostile import (
    CONTENT_TYPES,
    DEFLATED,
    EOCD_IN_COUNTS,
    OLE_MAGIC,
    Entry,
    MiB,
    deflated_zeros,
    docm_bomb,
    zip_bytes,
)

SECTOR = 512
END_OF_CHAIN, FAT_SECTOR, FREE, NO_STREAM = 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF, 0xFFFFFFFF


def vba_compress(source: bytes) -> bytes:
    """MS-OVBA 2.4.1 compressed container using literal tokens only (one chunk)."""
    assert len(source) <= 3500, "one literal-only chunk holds at most ~3.6 KB"
    body = b"".join(b"\0" + source[i : i + 8] for i in range(0, len(source), 8))
    header = 0x8000 | 0x3000 | (len(body) + 2 - 3)  # compressed, signature 0b011, size - 3
    return b"\x01" + struct.pack("<H", header) + body


def module_stream(source: str) -> bytes:
    return b"\0" * 4096 + vba_compress(source.replace("\n", "\r\n").encode("latin-1"))


def dir_entry(
    name: str,
    kind: int,
    child: int = NO_STREAM,
    right: int = NO_STREAM,
    start: int = END_OF_CHAIN,
    size: int = 0,
) -> bytes:
    encoded = name.encode("utf-16-le") + b"\0\0"
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        encoded,
        len(encoded),
        kind,
        1,
        NO_STREAM,
        right,
        child,
        b"",
        0,
        0,
        0,
        start,
        size,
    )


def ole_file(storage: str, streams: dict[str, bytes]) -> bytes:
    """Root → ``storage`` → ``streams`` (each >= 4096 bytes), as a compound file."""
    assert len(streams) <= 2 and all(len(data) >= 4096 for data in streams.values())
    fat = [FAT_SECTOR, END_OF_CHAIN]  # sector 0: the FAT, sector 1: the directory
    entries = [dir_entry("Root Entry", 5, child=1), dir_entry(storage, 1, child=2)]
    data = b""
    for index, (name, payload) in enumerate(streams.items()):
        sectors = -(-len(payload) // SECTOR)
        first = len(fat)
        fat += [*range(first + 1, first + sectors), END_OF_CHAIN]
        right = 3 + index if index + 1 < len(streams) else NO_STREAM
        entries.append(dir_entry(name, 2, right=right, start=first, size=len(payload)))
        data += payload.ljust(sectors * SECTOR, b"\0")
    directory = b"".join(entries).ljust(SECTOR, b"\0")
    entries_fat = struct.pack(f"<{len(fat)}I", *fat).ljust(SECTOR, b"\xff")
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        bytes.fromhex("d0cf11e0a1b11ae1"),
        b"",
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        b"",
        0,
        1,
        1,
        0,
        4096,
        END_OF_CHAIN,
        0,
        END_OF_CHAIN,
        0,
    )
    difat = struct.pack("<I", 0) + b"\xff" * (SECTOR - len(header) - 4)
    return header + difat + entries_fat + directory + data


def vba_document(source: str) -> bytes:
    return ole_file("VBA", {"ThisDocument": module_stream(source)})


def ooxml(parts: dict[str, bytes]) -> bytes:
    path_parts = {"[Content_Types].xml": b'<?xml version="1.0"?><Types/>', **parts}
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in path_parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


HEADER = 'Attribute VB_Name = "ThisDocument"\n'
AUTO_SHELL = HEADER + 'Sub AutoOpen()\n    Shell "notepad.exe", vbNormalFocus\nEnd Sub\n'
AUTO_WRITE = (
    HEADER + 'Sub Document_Open()\n    ActiveDocument.SaveAs "C:\\Temp\\copy.doc"\nEnd Sub\n'
)
NO_AUTO = HEADER + 'Sub FormatTable()\n    Shell "notepad.exe"\nEnd Sub\n'
SYLK_XLM = (
    b'ID;P\r\nO;E\r\nNN;NAuto_open;ER101C1\r\nC;X1;Y101;K0;EEXEC("notepad.exe")\r\n'
    b"C;X1;Y102;K0;EHALT()\r\nE\r\n"
)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def scan(path: Path, **options: str) -> Verdict:
    job = ScanJob("doc-1", path.name, path.stat().st_size, None, None, "0" * 64)
    return OfficeMacros(options).scan(path, job)


def test_auto_exec_macro_that_executes_is_malicious(tmp_path: Path) -> None:
    verdict = scan(write(tmp_path, "invoice.doc", vba_document(AUTO_SHELL)))
    assert verdict.verdict == "malicious"
    assert verdict.result.startswith(
        "auto-exec macro that executes (OLE: 1 macro module(s), "
        "mraptor flags A-X (auto-exec 'AutoOpen', execute 'Shell')"
    )
    assert "olevba keywords: Shell, vbNormalFocus" in verdict.result


def test_auto_exec_macro_that_writes_is_suspicious(tmp_path: Path) -> None:
    verdict = scan(write(tmp_path, "letter.doc", vba_document(AUTO_WRITE)))
    assert verdict.verdict == "suspicious"
    assert "mraptor flags AW- (auto-exec 'Document_Open', write 'SaveAs')" in verdict.result


def test_macros_without_auto_exec_follow_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, "tools.doc", vba_document(NO_AUTO))
    verdict = scan(path)
    assert verdict.verdict == "clean"
    assert verdict.result.startswith("macros present, mraptor: Macro OK (OLE: 1 macro module(s)")
    assert "flags --X (execute 'Shell'); olevba keywords: Shell" in verdict.result
    assert scan(path, macros_verdict="suspicious").verdict == "suspicious"
    with pytest.raises(ValueError, match="macros_verdict"):
        OfficeMacros({"macros_verdict": "malicious"})


def test_ole_without_macros_is_clean(tmp_path: Path) -> None:
    document = ole_file("ObjectPool", {"WordDocument": b"Sub AutoOpen() Shell".ljust(4096)})
    verdict = scan(write(tmp_path, "plain.doc", document))
    assert verdict == Verdict("clean", "OLE: no macros")


def test_ooxml_with_a_vba_project_is_judged_like_the_project(tmp_path: Path) -> None:
    docm = ooxml(
        {"word/document.xml": b"<w:document/>", "word/vbaProject.bin": vba_document(AUTO_SHELL)}
    )
    verdict = scan(write(tmp_path, "invoice.docm", docm))
    assert verdict.verdict == "malicious"
    assert verdict.result.startswith("auto-exec macro that executes (OOXML: 1 macro module(s)")


def test_ooxml_without_macros_is_clean(tmp_path: Path) -> None:
    docx = ooxml({"word/document.xml": b"<w:document>Sub AutoOpen() Shell</w:document>"})
    assert scan(write(tmp_path, "report.docx", docx)) == Verdict("clean", "OOXML: no macros")


def test_sylk_with_auto_open_xlm_macro_is_malicious(tmp_path: Path) -> None:
    verdict = scan(write(tmp_path, "sheet.slk", SYLK_XLM))
    assert verdict.verdict == "malicious"
    assert "SYLK: 1 macro module(s), mraptor flags A-X" in verdict.result
    plain = write(tmp_path, "data.slk", b"ID;P\r\nC;X1;Y1;K42\r\nE\r\n")
    assert scan(plain) == Verdict("clean", "SYLK: no macros")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("macro.bas", AUTO_SHELL.encode()),  # VBA source text: olevba would take it, we don't
        ("doc.pdf", b"%PDF-1.7\n1 0 obj << /JS (x) >>\n"),
        ("archive.zip", b"PK\x03\x04" + b"\0" * 40),
        ("empty.doc", b""),
    ],
)
def test_files_that_are_not_office_documents_are_unsupported(
    tmp_path: Path, name: str, data: bytes
) -> None:
    assert scan(write(tmp_path, name, data)).verdict == "unsupported"


def test_plain_zip_is_not_ooxml(tmp_path: Path) -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/vbaProject.bin", vba_document(AUTO_SHELL))
    path = write(tmp_path, "photos.zip", buffer.getvalue())
    assert sniff(path) is None
    assert scan(path).verdict == "unsupported"


def test_damaged_ole_is_an_error_never_clean(tmp_path: Path) -> None:
    broken = vba_document(AUTO_SHELL)[:600]  # header and FAT, directory cut off
    verdict = scan(write(tmp_path, "broken.doc", broken))
    assert verdict.verdict == "error"
    assert verdict.result.startswith("OLE: olevba failed: ")


def test_too_large(tmp_path: Path) -> None:
    path = write(tmp_path, "invoice.doc", vba_document(AUTO_SHELL))
    assert scan(path, max_file_size="1000").verdict == "too_large"
    job = ScanJob("doc-2", path.name, 200 << 20, None, None, "0" * 64)
    assert OfficeMacros().scan(path, job).verdict == "too_large"
    assert OfficeMacros().max_file_size == 100 << 20


def test_versions() -> None:
    engine = OfficeMacros()
    assert engine.engine_version().startswith("olevba 0.")
    assert engine.signatures_version().startswith("oletools ")


# -- hostile zips: checked before olevba loads anything -----------------------------------
def scan_traced(path: Path, **options: str) -> tuple[Verdict, int]:
    """The verdict and the peak of Python allocations while scanning."""
    tracemalloc.start()
    try:
        verdict = scan(path, **options)
        return verdict, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_vba_project_that_inflates_past_the_limit_is_too_large_unread(tmp_path: Path) -> None:
    """olevba read the whole part (twice over): the 1 GiB bomb took 2 GiB of RSS."""
    path = write(tmp_path, "bomb.docm", docm_bomb(200))
    started = time.monotonic()
    verdict, peak = scan_traced(path)
    assert verdict.verdict == "too_large"
    assert "word/vbaProject.bin: 209715200" in verdict.result
    assert peak < 8 * MiB, f"{peak // MiB} MiB at the peak"
    assert time.monotonic() - started < 5


def test_a_part_that_inflates_past_its_declared_size_is_suspicious(tmp_path: Path) -> None:
    stream, _ = deflated_zeros(64, OLE_MAGIC)
    liar = Entry("word/vbaProject.bin", stream, DEFLATED, crc=0, size=1 << 20)
    data = zip_bytes([Entry.stored("[Content_Types].xml", CONTENT_TYPES), liar])
    verdict, peak = scan_traced(write(tmp_path, "liar.docm", data))
    assert verdict.verdict == "suspicious" and "not opened" in verdict.result
    assert peak < 8 * MiB, f"{peak // MiB} MiB at the peak"


def test_a_part_compressed_as_office_never_does_is_suspicious(tmp_path: Path) -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("word/vbaProject.bin", OLE_MAGIC, zipfile.ZIP_BZIP2)
    verdict = scan(write(tmp_path, "bz.docm", buffer.getvalue()))
    assert verdict.verdict == "suspicious"
    assert "compression method 12" in verdict.result


def test_a_million_entry_directory_is_refused_before_zipfile_parses_it(tmp_path: Path) -> None:
    entries = [Entry.stored("[Content_Types].xml", CONTENT_TYPES)]
    data = zip_bytes(entries, repeat_central=1_000_000, counts=EOCD_IN_COUNTS)
    verdict, peak = scan_traced(write(tmp_path, "many.docx", data))
    assert verdict.verdict == "suspicious"
    assert "too big for 10000 entries" in verdict.result
    assert peak < 8 * MiB, f"{peak // MiB} MiB at the peak"


def test_a_zip_behind_a_text_header_is_checked_too(tmp_path: Path) -> None:
    """olevba opens whatever zipfile accepts, not only what starts like a zip."""
    header = b"MIME-Version: 1.0\r\nContent-Type: multipart/related\r\n\r\n"
    path = write(tmp_path, "page.mht", header + docm_bomb(200))
    assert sniff(path) == "MHT"
    assert scan(path).verdict == "too_large"
