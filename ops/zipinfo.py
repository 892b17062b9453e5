"""A zip file's directory, read without trusting it: for guards that run before :mod:`zipfile`.

``zipfile.ZipFile`` reads the whole central directory into memory and builds one object per
record, however many there are (a million records take ~270 MiB), and it takes the entry
counts and sizes from whichever end record it finds first.  Type detection, the archive
inspector and the Office macro scanner all need to know what they are about to open before
they open it, so this module:

* finds the end-of-central-directory record robustly: the last one whose comment ends exactly
  at the end of the file (a signature hidden inside the record's own fields, e.g. in its entry
  counts, does not count), then the ZIP64 record when a locator precedes it; and refuses the
  file when the record :mod:`zipfile` would use is another one (so a guard never checks one
  directory while ``zipfile`` parses a different one);
* walks the central directory in small chunks, record by record, exactly where ``zipfile``
  will read it: :func:`count_entries` stops one past a limit, :func:`central_names` yields the
  first names only.

Memory stays at one chunk whatever the archive says about itself.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

END = b"PK\x05\x06"
END64 = b"PK\x06\x06"
LOCATOR64 = b"PK\x06\x07"
CENTRAL = b"PK\x01\x02"
_END = struct.Struct(
    "<4s4H2LH"
)  # signature, disk, disk of directory, entries here, total, size, offset, comment
_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_TAIL = _END.size + 0xFFFF  # the record plus the longest comment
_CHUNK = 64 << 10
_UTF8_FLAG = 0x800
DIRECTORY_BYTES_PER_ENTRY = 1024  # a generous average central-directory record


class ZipLayoutError(ValueError):
    """No end record that can be trusted, or a central directory that is not well formed."""


class TooManyEntries(ZipLayoutError):
    """The directory holds (or declares) more entries than allowed."""


@dataclass(frozen=True)
class ZipEnd:
    """Where the central directory is, as :mod:`zipfile` will read it."""

    at: int  # offset of the end-of-central-directory record
    declared_entries: int  # what the end record (or its ZIP64 twin) says
    directory_at: int  # the directory's real start (data prepended to the zip shifts it)
    directory_size: int
    directory_offset: int  # the start the record says
    zip64: bool


def find_end(handle: IO[bytes]) -> ZipEnd:
    """The trusted end record of the zip in ``handle`` (seekable); ZipLayoutError if none."""
    size = handle.seek(0, io.SEEK_END)
    start = max(0, size - _TAIL)
    handle.seek(start)
    tail = handle.read(size - start)
    at = _last_consistent(tail)
    if at is None:
        raise ZipLayoutError("no end-of-central-directory record ends at the end of the file")
    end = _read_end(handle, start + at, tail[at : at + _END.size])
    _check_zipfile_agrees(handle, end)
    return end


def has_end_signature(handle: IO[bytes]) -> bool:
    """An end-of-central-directory signature where zip readers look for one (the tail), trusted
    or not: whether some zip reader may open the file, not whether :mod:`zipfile` will."""
    size = handle.seek(0, io.SEEK_END)
    handle.seek(max(0, size - _TAIL))
    return END in handle.read()


def _last_consistent(tail: bytes) -> int | None:
    """The last signature whose record and comment end exactly at the end of ``tail``."""
    at = tail.rfind(END)
    while at >= 0:
        if len(tail) - at >= _END.size:
            (comment,) = struct.unpack_from("<H", tail, at + 20)
            if at + _END.size + comment == len(tail):
                return at
        at = tail.rfind(END, 0, at)
    return None


def _read_end(handle: IO[bytes], at: int, record: bytes) -> ZipEnd:
    _, _, _, _, entries, size, offset, _ = _END.unpack(record)
    zip64 = _read_end64(handle, at)
    if zip64 is not None:
        entries, size, offset = zip64
        concat = at - _END64.size - _LOCATOR.size - size - offset
    else:
        concat = at - size - offset
    return ZipEnd(at, entries, offset + concat, size, offset, zip64 is not None)


def _read_end64(handle: IO[bytes], at: int) -> tuple[int, int, int] | None:
    """(entries, directory size, directory offset) from a ZIP64 record right before ``at``."""
    if at < _LOCATOR.size + _END64.size:
        return None
    handle.seek(at - _LOCATOR.size - _END64.size)
    data = handle.read(_END64.size + _LOCATOR.size)
    signature, disk, _, disks = _LOCATOR.unpack_from(data, _END64.size)
    if signature != LOCATOR64:
        return None
    if disk != 0 or disks > 1:
        raise ZipLayoutError("zip files that span several disks are not supported")
    fields = _END64.unpack_from(data)
    if fields[0] != END64:
        return None
    return fields[7], fields[8], fields[9]


def _check_zipfile_agrees(handle: IO[bytes], end: ZipEnd) -> None:
    """Refuse a file where :mod:`zipfile` would take another record than ours."""
    reader = getattr(zipfile, "_EndRecData", None)  # private, but the very record it uses
    if reader is None:
        return
    theirs = reader(handle)
    handle.seek(0)
    if theirs is None:
        raise ZipLayoutError("zipfile finds no end-of-central-directory record")
    location, size, offset = theirs[9], theirs[5], theirs[6]
    if (location, size, offset) != (end.at, end.directory_size, end.directory_offset):
        raise ZipLayoutError(
            f"ambiguous end records: zipfile would read the one at {location}, not {end.at}"
        )


def _records(handle: IO[bytes], end: ZipEnd) -> Iterator[tuple[int, bytes]]:
    """(flags, raw name) of each central record, in order, streaming."""
    if end.directory_at < 0:
        raise ZipLayoutError(f"the central directory would start before the file ({end.at})")
    reader = _Window(handle, end.directory_at, end.directory_size)
    while reader.left > 0:
        header = reader.take(_CENTRAL.size)
        if len(header) != _CENTRAL.size:
            raise ZipLayoutError("truncated central directory")
        fields = _CENTRAL.unpack(header)
        if fields[0] != CENTRAL:
            raise ZipLayoutError("bad signature in the central directory")
        name_size, extra_size, comment_size = fields[10], fields[11], fields[12]
        name = reader.take(name_size)
        reader.skip(extra_size + comment_size)
        yield fields[3], name


def count_entries(handle: IO[bytes], end: ZipEnd, limit: int) -> int:
    """How many records the directory holds, counting no further than ``limit + 1``."""
    count = 0
    for _ in _records(handle, end):
        count += 1
        if count > limit:
            break
    return count


def central_names(handle: IO[bytes], end: ZipEnd, limit: int) -> Iterator[str]:
    """The names of the first ``limit`` entries, decoded as :mod:`zipfile` decodes them."""
    for index, (flags, raw) in enumerate(_records(handle, end)):
        if index >= limit:
            return
        yield raw.decode("utf-8" if flags & _UTF8_FLAG else "cp437", errors="replace")


def check_entries(handle: IO[bytes], max_entries: int) -> ZipEnd:
    """The end record, once the directory is known to hold at most ``max_entries`` records.

    Raises :class:`TooManyEntries` when the end record declares more, when the directory is
    too big for that many, or when it really holds more; :class:`ZipLayoutError` when the
    layout cannot be trusted.  Only then is it safe to hand the file to ``zipfile.ZipFile``.
    """
    end = find_end(handle)
    if end.declared_entries > max_entries:
        raise TooManyEntries(f"declares {end.declared_entries} entries, over {max_entries}")
    if end.directory_size > max(max_entries, 1) * DIRECTORY_BYTES_PER_ENTRY:
        raise TooManyEntries(
            f"central directory of {end.directory_size} bytes is too big for {max_entries} entries"
        )
    if count_entries(handle, end, max_entries) > max_entries:
        raise TooManyEntries(f"holds more than {max_entries} entries")
    handle.seek(0)
    return end


class _Window:
    """Reads the ``size`` bytes of ``handle`` from ``start`` in chunks, never past them."""

    def __init__(self, handle: IO[bytes], start: int, size: int) -> None:
        self.handle = handle
        self.position = start  # next file offset to read
        self.unread = size  # window bytes not read from the file yet
        self.buffer = b""
        self.offset = 0  # into buffer

    @property
    def left(self) -> int:
        return self.unread + len(self.buffer) - self.offset

    def take(self, size: int) -> bytes:
        if len(self.buffer) - self.offset < size:
            self._refill(size)
        data = self.buffer[self.offset : self.offset + size]
        self.offset += len(data)
        return data

    def skip(self, size: int) -> None:
        buffered = min(size, len(self.buffer) - self.offset)
        self.offset += buffered
        skipped = min(size - buffered, self.unread)
        self.position += skipped
        self.unread -= skipped

    def _refill(self, size: int) -> None:
        parts = [self.buffer[self.offset :]]
        have = len(parts[0])
        self.handle.seek(self.position)
        while have < size and self.unread > 0:
            chunk = self.handle.read(min(max(_CHUNK, size - have), self.unread))
            if not chunk:
                self.unread = 0  # the file ends inside the directory
                break
            parts.append(chunk)
            have += len(chunk)
            self.position += len(chunk)
            self.unread -= len(chunk)
        self.buffer, self.offset = b"".join(parts), 0
