"""Zip end records and directories read without trusting them (ops/zipinfo.py)."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

import pytest

from ops.zipinfo import (
    TooManyEntries,
    ZipLayoutError,
    central_names,
    check_entries,
    count_entries,
    find_end,
)
from tests.scanners.hostile import Entry, million_entry_zip, zip_bytes


def _zip(*names: str, comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = comment
        for name in names:
            archive.writestr(name, name)
    return buffer.getvalue()


def test_the_directory_of_an_ordinary_zip_with_a_comment() -> None:
    data = io.BytesIO(_zip("[Content_Types].xml", "word/document.xml", comment=b"a note"))
    end = find_end(data)
    assert (end.declared_entries, end.zip64) == (2, False)
    assert list(central_names(data, end, 10)) == ["[Content_Types].xml", "word/document.xml"]
    assert list(central_names(data, end, 1)) == ["[Content_Types].xml"]


def test_data_prepended_to_a_zip_shifts_the_directory_as_zipfile_does() -> None:
    data = io.BytesIO(b"#!/bin/sh\nexit 0\n" + _zip("a.txt"))
    end = find_end(data)
    assert end.directory_at == end.directory_offset + 17
    assert list(central_names(data, end, 5)) == zipfile.ZipFile(data).namelist()


def test_zip64_counts_come_from_the_zip64_record() -> None:
    data = io.BytesIO(_zip(*(str(i) for i in range(70_000))))
    end = find_end(data)
    assert (end.declared_entries, end.zip64) == (70_000, True)
    assert count_entries(data, end, 100_000) == 70_000
    assert count_entries(data, end, 10) == 11  # stops one past the limit


def test_a_signature_hidden_in_the_entry_counts_is_not_the_end_record() -> None:
    """The counts 0x4b50, 0x0605 spell b"PK\\x05\\x06": the last signature in the file is
    inside the real record, which used to make the archive guard give up and let zipfile in."""
    data = io.BytesIO(
        zip_bytes([Entry.stored("a", b"a")], repeat_central=3, counts=(0x4B50, 0x605))
    )
    end = find_end(data)
    assert end.at == len(data.getvalue()) - 22
    assert count_entries(data, end, 10) == 3


def test_a_million_entries_are_refused_before_any_directory_is_parsed() -> None:
    data = io.BytesIO(million_entry_zip())
    tracemalloc.start()
    try:
        with pytest.raises(TooManyEntries, match="too big for 10000 entries"):
            check_entries(data, 10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak >> 20} MiB at the peak"


def test_entries_beyond_the_declared_count_are_counted() -> None:
    """zipfile walks the directory's bytes, not its declared count: so does the guard."""
    data = io.BytesIO(zip_bytes([Entry.stored("a", b"a")], repeat_central=50, counts=(1, 1)))
    assert find_end(data).declared_entries == 1
    with pytest.raises(TooManyEntries, match="holds more than 20 entries"):
        check_entries(data, 20)
    assert check_entries(data, 50).declared_entries == 1


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"PK\x03\x04 not really a zip", "no end-of-central-directory record"),
        (_zip("a")[:-1], "no end-of-central-directory record"),
        (_zip("a", comment=b"x PK\x05\x06 y"), "zipfile finds no end"),
        (b"\0" * 200 + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 100, 0, 0),
         "bad signature in the central directory"),
        (b"\0" * 200 + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 300, 0, 0),
         "before the file"),
    ],
)  # fmt: skip
def test_untrustworthy_layouts_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(ZipLayoutError, match=words):
        handle = io.BytesIO(data)
        count_entries(handle, find_end(handle), 10)
