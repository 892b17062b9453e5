"""Hostile files built in memory in a fraction of a second: decompression bombs, lying zips.

Nothing large is committed: a 1 GiB deflated run of zeros is one 1 MiB block compressed once
and repeated (a full flush makes each block's output identical), and a million-entry central
directory is one record repeated.
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass

MiB = 1 << 20
OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/content-types"><Default Extension="bin" '
    b'ContentType="application/vnd.ms-office.vbaProject"/></Types>'
)
STORED, DEFLATED = 0, 8


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes  # as stored in the zip (compressed when method is DEFLATED)
    method: int = STORED
    crc: int | None = None  # of the uncompressed bytes; computed for stored data
    size: int | None = None  # uncompressed; len(data) for stored data

    @classmethod
    def stored(cls, name: str, data: bytes) -> Entry:
        return cls(name, data, STORED, zlib.crc32(data), len(data))


def zip_bytes(
    entries: list[Entry], *, repeat_central: int = 1, counts: tuple[int, int] | None = None
) -> bytes:
    """A zip of ``entries``; its central directory repeated ``repeat_central`` times; the end
    record's (entries on this disk, total entries) set to ``counts`` when given."""
    local, central = bytearray(), bytearray()
    for entry in entries:
        name = entry.name.encode()
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        size = len(entry.data) if entry.size is None else entry.size
        sizes = (crc, len(entry.data), size)
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, entry.method, 0, 0, *sizes, len(name),
            0, 0, 0, 0, 0, len(local),
        ) + name  # fmt: skip
        local += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, entry.method, 0, 0, *sizes, len(name), 0
        )
        local += name + entry.data
    directory = bytes(central) * repeat_central
    total = len(entries) * repeat_central
    here, declared = counts or (min(total, 0xFFFF), min(total, 0xFFFF))
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, here, declared, len(directory), len(local), 0
    )
    return bytes(local) + directory + end


def deflated_zeros(mib: int, first: bytes = b"") -> tuple[bytes, int]:
    """(raw deflate stream, crc32) of ``first`` then zeros, ``mib`` MiB in all."""
    head_block = first + b"\0" * (MiB - len(first))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(head_block) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(b"\0" * MiB) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc, zeros = zlib.crc32(head_block), b"\0" * MiB
    for _ in range(mib - 1):
        crc = zlib.crc32(zeros, crc)
    tail = compressor.compress(b"") + compressor.flush()
    return head + block * (mib - 1) + tail, crc


def docm_bomb(mib: int = 1024) -> bytes:
    """A ~1 MB .docm whose vbaProject.bin inflates to ``mib`` MiB: OLE magic, then zeros.

    olevba reads every part that starts with the OLE magic into memory whole (and olefile
    copies it again): 1 GiB here took 2 GiB of RSS before office-macros bounded it.
    """
    stream, crc = deflated_zeros(mib, OLE_MAGIC)
    return zip_bytes(
        [
            Entry.stored("[Content_Types].xml", CONTENT_TYPES),
            Entry.stored("word/document.xml", b"<w:document/>"),
            Entry("word/vbaProject.bin", stream, DEFLATED, crc, mib * MiB),
        ]
    )


# An end record whose two entry counts spell the signature b"PK\x05\x06" (0x4b50, 0x0605):
# a search for the last signature lands inside the real record's own fields.
EOCD_IN_COUNTS = (0x4B50, 0x0605)


@functools.cache  # bytes, never changed: built once per test process (~0.4 s each)
def million_entry_zip(entries: int = 1_000_000) -> bytes:
    """~47 MB: a zip whose central directory lists one small file ``entries`` times, with the
    end record's counts hiding a second signature (:data:`EOCD_IN_COUNTS`)."""
    return zip_bytes(
        [Entry.stored("a.txt", b"hello")], repeat_central=entries, counts=EOCD_IN_COUNTS
    )
