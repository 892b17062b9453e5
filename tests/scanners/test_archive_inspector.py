"""ArchiveInspector on archives built here: normal, nested, bombs, encrypted, corrupt."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from scanners.archive_inspector import ArchiveInspector
from scanners.base import ScanJob, Verdict
from tests.scanners.hostile import Entry, million_entry_zip
from tests.scanners.hostile import zip_bytes as hostile_zip

MiB = 1 << 20


def scan(path: Path, **options: object) -> Verdict:
    job = ScanJob("doc-1", path.name, path.stat().st_size, None, None, "0" * 64)
    return ArchiveInspector({k: str(v) for k, v in options.items()}).scan(path, job)


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_zeros_zip(path: Path, size: int) -> Path:
    """A zip of one deflated entry of ``size`` zero bytes, written in 1 MiB chunks."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as entry,
    ):
        for _ in range(size // MiB):
            entry.write(bytes(MiB))
    return path


def write_zeros_gzip(path: Path, size: int) -> Path:
    with gzip.open(path, "wb") as stream:
        for _ in range(size // MiB):
            stream.write(bytes(MiB))
    return path


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def nested_zip(levels: int) -> bytes:
    """``levels`` zips, each holding the next; the innermost holds a text file."""
    data = zip_bytes({"innermost.txt": b"hello from the bottom\n"})
    for level in range(levels - 1, 0, -1):
        data = zip_bytes({f"level{level + 1}.zip": data, "note.txt": b"a note"})
    return data


def mark_encrypted(data: bytes) -> bytes:
    """Set general-purpose flag bit 0 on every local and central header."""
    patched = bytearray(data)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := patched.find(signature, start)) != -1:
            (flags,) = struct.unpack_from("<H", patched, at + flag_offset)
            struct.pack_into("<H", patched, at + flag_offset, flags | 0x1)
            start = at + 4
    return bytes(patched)


def put(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- clean ---------------------------------------------------------------------------------
def test_normal_zip_is_clean(tmp_path: Path) -> None:
    members = {"a.txt": b"alpha\n" * 100, "dir/b.csv": b"x,y\n1,2\n", "c.pdf": b"%PDF-1.7\n"}
    verdict = scan(put(tmp_path, "normal.zip", zip_bytes(members)))
    assert verdict.verdict == "clean"
    assert "3 entries" in verdict.result
    assert "depth 1" in verdict.result


def test_ooxml_is_inspected_as_a_zip(tmp_path: Path) -> None:
    docx = zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<doc/>"})
    assert scan(put(tmp_path, "letter.docx", docx)).verdict == "clean"


def test_a_zip_appended_to_an_executable_is_inspected(tmp_path: Path) -> None:
    """A self-extracting exe: detected as pe, but zip readers open the zip at its end."""
    stub = b"MZ\x90\x00" + os.urandom(4096)
    assert scan(put(tmp_path, "sfx.exe", stub + nested_zip(7))).verdict == "suspicious"
    clean = scan(put(tmp_path, "setup.exe", stub + zip_bytes({"a.txt": b"a"})))
    assert clean.verdict == "clean" and "1 entries" in clean.result
    plain = scan(put(tmp_path, "plain.exe", stub))
    assert plain.verdict == "unsupported" and "content is pe" in plain.result


def test_tar_gz_is_clean_and_counts_its_entries(tmp_path: Path) -> None:
    data = tar_bytes({"a.txt": b"alpha\n", "b/c.txt": b"gamma\n" * 50}, mode="w:gz")
    verdict = scan(put(tmp_path, "bundle.tar.gz", data))
    assert verdict.verdict == "clean"
    assert "3 entries" in verdict.result  # the gzip stream and the two tar members
    assert "depth 1" in verdict.result  # a tar.gz is one archive


def test_plain_tar_with_a_nested_zip_is_walked(tmp_path: Path) -> None:
    inner = zip_bytes({"x.txt": b"x", "y.txt": b"y"})
    verdict = scan(put(tmp_path, "bundle.tar", tar_bytes({"inner.zip": inner, "z.txt": b"z"})))
    assert verdict.verdict == "clean"
    assert "4 entries" in verdict.result
    assert "depth 2" in verdict.result


def test_five_levels_of_nesting_are_allowed(tmp_path: Path) -> None:
    verdict = scan(put(tmp_path, "nested5.zip", nested_zip(5)))
    assert verdict.verdict == "clean"
    assert "depth 5" in verdict.result


# -- suspicious ----------------------------------------------------------------------------
def test_zip_nested_seven_levels_is_suspicious(tmp_path: Path) -> None:
    verdict = scan(put(tmp_path, "nested7.zip", nested_zip(7)))
    assert verdict.verdict == "suspicious"
    assert "nested deeper than 5" in verdict.result


def test_max_depth_option(tmp_path: Path) -> None:
    path = put(tmp_path, "nested3.zip", nested_zip(3))
    assert scan(path, max_depth=2).verdict == "suspicious"
    assert scan(path, max_depth=3).verdict == "clean"


def test_encrypted_entry_is_suspicious(tmp_path: Path) -> None:
    data = mark_encrypted(zip_bytes({"secret.txt": b"not really secret"}, zipfile.ZIP_STORED))
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x1
    verdict = scan(put(tmp_path, "locked.zip", data))
    assert verdict.verdict == "suspicious"
    assert "encrypted content cannot be scanned" in verdict.result


def test_too_many_entries(tmp_path: Path) -> None:
    data = zip_bytes({f"f{i}.txt": b"." for i in range(20)})
    verdict = scan(put(tmp_path, "many.zip", data), max_entries=10)
    assert verdict.verdict == "suspicious"
    assert "more than 10 entries" in verdict.result


def test_big_total_at_a_low_ratio_is_suspicious(tmp_path: Path) -> None:
    data = zip_bytes({"random.bin": os.urandom(2 * MiB)}, zipfile.ZIP_STORED)
    verdict = scan(put(tmp_path, "big.zip", data), max_total_size=MiB)
    assert verdict.verdict == "suspicious"
    assert "total uncompressed size" in verdict.result


def test_corrupt_zip_is_suspicious(tmp_path: Path) -> None:
    data = zip_bytes({"a.txt": b"alpha\n" * 100})
    verdict = scan(put(tmp_path, "broken.zip", data[: len(data) // 2]))
    assert verdict.verdict == "suspicious"
    assert "corrupt zip" in verdict.result


def test_truncated_gzip_is_suspicious(tmp_path: Path) -> None:
    data = gzip.compress(os.urandom(64 * 1024))
    verdict = scan(put(tmp_path, "cut.gz", data[: len(data) // 2]))
    assert verdict.verdict == "suspicious"
    assert "corrupt gzip" in verdict.result


def test_high_ratio_below_the_bomb_line_is_suspicious(tmp_path: Path) -> None:
    path = write_zeros_zip(tmp_path / "zeros.zip", 8 * MiB)
    verdict = scan(path, bomb_ratio=5000)
    assert verdict.verdict == "suspicious"
    assert "compression ratio" in verdict.result


# -- malicious -----------------------------------------------------------------------------
def test_zip_of_50_mb_of_zeros_is_a_zip_bomb(tmp_path: Path) -> None:
    path = write_zeros_zip(tmp_path / "zeros.zip", 50 * MiB)
    assert path.stat().st_size < MiB
    verdict = scan(path)
    assert verdict.verdict == "malicious"
    assert "zip bomb" in verdict.result


def test_gzip_bomb_is_stopped_at_the_ratio_cap(tmp_path: Path) -> None:
    path = write_zeros_gzip(tmp_path / "zeros.gz", 20 * MiB)
    verdict = scan(path)
    assert verdict.verdict == "malicious"
    assert "zip bomb" in verdict.result
    assert "stopped at" in verdict.result
    stopped_at = int(verdict.result.rsplit("stopped at ", 1)[1].split()[0])
    assert stopped_at <= 1000 * path.stat().st_size + (1 << 16)


def test_gzip_over_the_total_budget_stops_there(tmp_path: Path) -> None:
    path = write_zeros_gzip(tmp_path / "zeros.gz", 16 * MiB)
    verdict = scan(path, max_total_size=2 * MiB, bomb_ratio=10**9)
    assert verdict.verdict == "malicious"  # 2 MiB from ~16 KiB is far over max_ratio
    assert "total uncompressed size over 2097152" in verdict.result


def test_bomb_inside_a_nested_zip(tmp_path: Path) -> None:
    inner = write_zeros_zip(tmp_path / "inner.zip", 50 * MiB).read_bytes()
    path = put(tmp_path, "outer.zip", zip_bytes({"docs/inner.zip": inner}))
    verdict = scan(path)
    assert verdict.verdict == "malicious"
    assert "zip/docs/inner.zip/zeros.bin" in verdict.result


def test_nested_levels_that_each_look_fine_add_up(tmp_path: Path) -> None:
    """42.zip-style: each zip is modest, the whole expands far beyond the upload."""
    leaf = zip_bytes({f"part{i}.txt": b"A" * (MiB // 2) for i in range(4)})
    outer = zip_bytes({f"copy{i}.zip": leaf for i in range(8)}, zipfile.ZIP_STORED)
    verdict = scan(put(tmp_path, "fanout.zip", outer), max_total_size=8 * MiB, max_ratio=50)
    assert verdict.verdict == "malicious"
    assert "total uncompressed size" in verdict.result


def test_gzip_holding_a_zip_is_opened_one_level_down(tmp_path: Path) -> None:
    data = gzip.compress(zip_bytes({"a.txt": b"alpha", "b.txt": b"beta"}))
    verdict = scan(put(tmp_path, "bundle.zip.gz", data))
    assert verdict.verdict == "clean"
    assert "depth 2" in verdict.result
    assert "3 entries" in verdict.result


def test_gzip_bomb_inside_a_tar_gz(tmp_path: Path) -> None:
    bomb = write_zeros_gzip(tmp_path / "zeros.gz", 20 * MiB).read_bytes()
    data = tar_bytes({"readme.txt": b"hi", "logs/zeros.gz": bomb}, mode="w:gz")
    verdict = scan(put(tmp_path, "bundle.tgz", data))
    assert verdict.verdict == "malicious"
    assert "gzip:tar/logs/zeros.gz" in verdict.result


def zip64_end_records(entries: int) -> bytes:
    """A local-header stub, then zip64 end records declaring ``entries`` (no directory)."""
    stub = b"PK\x03\x04" + bytes(26)
    record = struct.pack(
        "<4sQHHLLQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, 46 * entries, 0
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(stub), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", *[0xFFFF] * 4, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return stub + record + locator + end


def test_entry_count_is_read_from_the_zip64_end_record_first(tmp_path: Path) -> None:
    """The declared count is refused before zipfile would parse the directory into memory."""
    verdict = scan(put(tmp_path, "wide.zip", zip64_end_records(70_000)))
    assert verdict.verdict == "suspicious"
    assert "declares 70000" in verdict.result


def test_a_signature_in_the_end_record_counts_does_not_get_a_million_entries_parsed(
    tmp_path: Path,
) -> None:
    """The guard used to take the signature inside the counts for the end record, give up,
    and let zipfile parse all 1M entries (~270 MiB); now the count is refused first."""
    path = put(tmp_path, "many.zip", million_entry_zip())
    tracemalloc.start()
    try:
        verdict = scan(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert verdict.verdict == "suspicious"
    assert "more than 10000 entries" in verdict.result
    assert peak < 8 * MiB, f"{peak // MiB} MiB at the peak"


def test_entries_are_counted_in_the_directory_not_taken_from_the_end_record(
    tmp_path: Path,
) -> None:
    data = hostile_zip([Entry.stored("a.txt", b"a")], repeat_central=30, counts=(1, 1))
    verdict = scan(put(tmp_path, "liar.zip", data), max_entries=20)
    assert verdict.verdict == "suspicious"
    assert "more than 20 entries" in verdict.result


def test_oversized_central_directory_is_refused(tmp_path: Path) -> None:
    data = zip_bytes({"n" * 3000: b"x"})
    verdict = scan(put(tmp_path, "long-name.zip", data), max_entries=2)
    assert verdict.verdict == "suspicious"
    assert "central directory" in verdict.result


# -- other ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n%%EOF\n", b"just some text\n", b"7z\xbc\xaf\x27\x1c" + bytes(32), b""],
)
def test_non_archives_are_unsupported(tmp_path: Path, data: bytes) -> None:
    assert scan(put(tmp_path, "file", data)).verdict == "unsupported"


def test_deadline_stops_the_walk(tmp_path: Path) -> None:
    verdict = scan(put(tmp_path, "normal.zip", zip_bytes({"a.txt": b"a"})), deadline_s=-1)
    assert verdict.verdict == "timeout"


def test_defaults_and_identity() -> None:
    scanner = ArchiveInspector()
    assert scanner.name == "archive-inspector"
    assert (scanner.max_depth, scanner.max_entries, scanner.max_ratio) == (5, 10_000, 100.0)
    assert scanner.max_total_size == 4 << 30
    assert scanner.max_file_size == 4 << 30
    assert "depth5" in scanner.signatures_version()
