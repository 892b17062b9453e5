"""Archive inspector: zip, gzip and tar structure checks (nesting, bombs, encrypted entries)."""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol

from ops import zipinfo
from ops.filetype import HEAD_BYTES, detect
from scanners.base import ScanJob, Scanner, Verdict

ARCHIVES = frozenset({"zip", "docx", "xlsx", "pptx", "gzip", "tar"})
_SEVERITY = {"clean": 0, "suspicious": 1, "malicious": 2}
_CHUNK = 1 << 16
_SPOOL_IN_MEMORY = 8 << 20
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, gzip.BadGzipFile)


class _Reader(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Stop(Exception):
    """Ends the walk early: a verdict is certain, or going on would be unbounded."""


class ArchiveInspector(Scanner):
    """Checks the structure of zip (and OOXML), gzip and tar (also ``.tar.gz``) files.

    The walk recurses into members that are themselves archives (detected by magic bytes):
    zip members are read through :mod:`zipfile`, tar members in streaming mode, gzip is
    stream-decompressed with a hard cap on output. A nested archive is copied to a spooled
    temp file (memory up to 8 MiB, then disk) of at most ``max_nested_size`` bytes; nothing
    else is extracted.

    Findings, each ``suspicious`` unless said otherwise:

    * nesting deeper than ``max_depth`` (the uploaded archive is depth 1; a tar inside its
      gzip is the same level);
    * more than ``max_entries`` entries, counted over all levels;
    * an entry (zip: header sizes; gzip: bytes actually inflated) of at least
      ``ratio_min_size`` bytes expanding more than ``max_ratio`` times; over ``bomb_ratio``
      it is ``malicious`` ("zip bomb");
    * a total uncompressed size (non-archive content over all levels, header sizes) above
      ``max_total_size``; ``malicious`` ("zip bomb") when that total is also more than
      ``max_ratio`` times the uploaded file (catches nested and overlapping-entry bombs);
    * an encrypted zip entry (flag bit 0): "encrypted content cannot be scanned";
    * a nested archive bigger than ``max_nested_size``, which is not opened;
    * a corrupt archive or member (bad headers, CRC, truncated stream): ``suspicious``, not
      ``error`` — a malformed archive is a known way to slip past other engines, and the
      bytes are the uploader's, not a failure of ours. ``error`` is left to I/O failures.

    A file that is not zip/gzip/tar is ``unsupported`` (7z and rar included); only those types
    (Office zips included) are sent to it, and files of another type with a zip at their end
    (``docs.metadata`` also_types: a self-extracting executable), whose zip is inspected.

    Options: ``max_depth`` (5), ``max_entries`` (10000), ``max_ratio`` (100), ``bomb_ratio``
    (1000), ``ratio_min_size`` (bytes, 1 MiB), ``max_total_size`` (bytes, 4 GiB),
    ``max_nested_size`` (bytes, 256 MiB), ``max_file_size`` (bytes, 4 GiB), ``deadline_s``
    (120; the walk also stops itself at this deadline).
    """

    name = "archive-inspector"
    vendor = "IntelliDox"
    version = "1"
    accepts = ARCHIVES  # the same detection as docs.metadata's: nothing else is opened

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.max_depth = self.option("max_depth", 5, int)
        self.max_entries = self.option("max_entries", 10_000, int)
        self.max_ratio = self.option("max_ratio", 100.0, float)
        self.bomb_ratio = self.option("bomb_ratio", 1000.0, float)
        self.ratio_min_size = self.option("ratio_min_size", 1 << 20, int)
        self.max_total_size = self.option("max_total_size", 4 << 30, int)
        self.max_nested_size = self.option("max_nested_size", 256 << 20, int)
        self.max_file_size = self.option("max_file_size", 4 << 30, int)
        self.deadline_s = self.option("deadline_s", 120.0, float)

    def signatures_version(self) -> str:
        return (
            f"depth{self.max_depth}-entries{self.max_entries}-ratio{self.max_ratio:g}"
            f"-bomb{self.bomb_ratio:g}-total{self.max_total_size}"
        )

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        with open(path, "rb") as handle:
            kind, _ = detect(handle.read(HEAD_BYTES), None)
            if kind not in ARCHIVES and _ends_in_a_zip(handle):
                kind = "zip"  # found from its end, as zip readers do: e.g. a self-extracting exe
            if kind not in ARCHIVES:
                return Verdict("unsupported", f"not a zip, gzip or tar archive (content is {kind})")
            size = handle.seek(0, io.SEEK_END)
            handle.seek(0)
            return _Walk(self, size).run(handle, kind)


class _Walk:
    """One scan's state: counters, findings, and the limits they are held to."""

    def __init__(self, limits: ArchiveInspector, file_size: int) -> None:
        self.limits = limits
        self.file_size = max(file_size, 1)
        self.deadline = time.monotonic() + limits.deadline_s
        self.entries = 0
        self.total = 0
        self.depth = 0
        self.findings: list[tuple[str, str]] = []
        self.total_flagged = False
        self.timed_out = False

    # -- outcome -------------------------------------------------------------------------
    def run(self, handle: IO[bytes], kind: str) -> Verdict:
        with contextlib.suppress(_Stop):
            self.layer(handle, kind, self.file_size, 1, "")
        self.check_total()
        if self.findings:
            worst = max(self.findings, key=lambda f: _SEVERITY[f[0]])[0]
            reasons = [text for verdict, text in self.findings if verdict == worst]
            more = f" (+{len(self.findings) - 3} more)" if len(self.findings) > 3 else ""
            return Verdict(worst, "; ".join(reasons[:3]) + more)
        if self.timed_out:
            return Verdict("timeout", f"stopped at {self.limits.deadline_s:g}s: {self.summary()}")
        return Verdict("clean", self.summary())

    def summary(self) -> str:
        return f"{self.entries} entries, {self.total} bytes uncompressed, depth {self.depth}"

    def flag(self, verdict: str, text: str) -> None:
        """Record a finding; a malicious one ends the walk."""
        self.findings.append((verdict, text))
        if verdict == "malicious":
            raise _Stop

    # -- accounting ----------------------------------------------------------------------
    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            self.timed_out = True
            raise _Stop

    def count_entry(self, where: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            self.flag("suspicious", f"more than {self.limits.max_entries} entries ({where})")
            raise _Stop
        self.tick()

    def add_content(self, size: int) -> None:
        self.total += size
        if self.total > self.limits.max_total_size:
            self.check_total()
            raise _Stop

    def check_total(self) -> None:
        if self.total <= self.limits.max_total_size or self.total_flagged:
            return
        self.total_flagged = True
        ratio = self.total / self.file_size
        text = f"total uncompressed size over {self.limits.max_total_size} bytes"
        if ratio > self.limits.max_ratio:
            self.findings.append(("malicious", f"zip bomb: {text}, {ratio:.0f}x the upload"))
        else:
            self.findings.append(("suspicious", text))

    def check_ratio(self, where: str, expanded: int, packed: int) -> None:
        if expanded < self.limits.ratio_min_size:
            return
        ratio = expanded / max(packed, 1)
        if ratio > self.limits.bomb_ratio:
            self.flag("malicious", f"zip bomb: {where} expands {ratio:.0f}x")
        elif ratio > self.limits.max_ratio:
            self.flag(
                "suspicious",
                f"compression ratio {ratio:.0f}x is over {self.limits.max_ratio:g} ({where})",
            )

    # -- one archive ---------------------------------------------------------------------
    def layer(self, handle: IO[bytes], kind: str, size: int, depth: int, where: str) -> None:
        """Inspect one seekable archive of ``kind`` at nesting ``depth``."""
        self.depth = max(self.depth, depth)
        try:
            if kind == "gzip":
                self.gzip_layer(handle, size, depth, where or "gzip")
            elif kind == "tar":
                self.tar_layer(handle, depth, where or "tar")
            else:
                self.zip_layer(handle, depth, where or "zip")
        except _CORRUPT as exc:
            self.flag("suspicious", f"corrupt {kind} archive ({where or 'top level'}): {exc}")

    def zip_layer(self, handle: IO[bytes], depth: int, where: str) -> None:
        self.check_zip_directory(handle, where)
        with zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                inner = f"{where}/{info.filename}"
                self.count_entry(inner)
                self.check_ratio(inner, info.file_size, info.compress_size)
                if info.flag_bits & 0x1:
                    self.flag("suspicious", f"encrypted content cannot be scanned ({inner})")
                    self.add_content(info.file_size)
                elif not info.is_dir():
                    self.zip_member(archive, info, depth, inner)

    def check_zip_directory(self, handle: IO[bytes], where: str) -> None:
        """Refuse, before zipfile parses it into memory, a directory that is too big.

        The entries are counted in the directory itself (:mod:`ops.zipinfo`): zipfile walks
        the directory's bytes whatever count the end record declares.
        """
        budget = max(0, self.limits.max_entries - self.entries)
        try:
            zipinfo.check_entries(handle, budget)
        except zipinfo.TooManyEntries as exc:
            self.flag("suspicious", f"more than {self.limits.max_entries} entries ({where} {exc})")
            raise _Stop from exc
        except zipinfo.ZipLayoutError as exc:
            raise zipfile.BadZipFile(str(exc)) from exc

    def zip_member(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, depth: int, where: str
    ) -> None:
        try:
            member = archive.open(info)
        except NotImplementedError as exc:  # e.g. Deflate64: its bytes cannot be looked into
            self.flag("suspicious", f"{exc}; not inspected ({where})")
            self.add_content(info.file_size)
            return
        with member:
            self.nested(member, info.file_size, depth, where)

    def tar_layer(self, handle: IO[bytes], depth: int, where: str) -> None:
        with tarfile.open(fileobj=handle, mode="r|") as archive:
            for info in archive:
                inner = f"{where}/{info.name}"
                self.count_entry(inner)
                member = archive.extractfile(info) if info.isfile() else None
                if member is not None:
                    self.nested(member, info.size, depth, inner)

    def gzip_layer(self, handle: IO[bytes], size: int, depth: int, where: str) -> None:
        """Inflate under a hard cap; a tar inside is read from the stream at the same depth."""
        self.count_entry(where)
        bomb_cap = max(int(self.limits.bomb_ratio * size), self.limits.ratio_min_size)
        cap = max(0, min(self.limits.max_total_size - self.total, bomb_cap))
        with gzip.GzipFile(fileobj=handle, mode="rb") as probe:
            kind, _ = detect(_read_up_to(probe, HEAD_BYTES), None)
        handle.seek(0)
        with gzip.GzipFile(fileobj=handle, mode="rb") as inflated:
            meter = _Meter(inflated, cap, self.tick)
            stream = io.BufferedReader(meter, _CHUNK)
            try:
                if kind == "tar":
                    self.tar_layer(stream, depth, f"{where}:tar")
                    opened = True
                else:
                    opened = self.nested(stream, None, depth, f"{where}:payload")
                _drain(stream)
            except _CapReached:
                self.over_cap(where, meter.count, size, bomb_cap)
        if not opened:
            self.add_content(meter.count)
        self.check_ratio(where, meter.count, size)

    def over_cap(self, where: str, inflated: int, packed: int, bomb_cap: int) -> NoReturn:
        if inflated > bomb_cap:
            self.flag(
                "malicious",
                f"zip bomb: {where} inflates over {inflated / packed:.0f}x "
                f"(stopped at {inflated} bytes)",
            )
        self.total = max(self.total + inflated, self.limits.max_total_size + 1)
        self.check_total()
        raise _Stop

    # -- members -------------------------------------------------------------------------
    def nested(self, member: _Reader, declared: int | None, depth: int, where: str) -> bool:
        """A member of the archive at ``depth``: open it if it is an archive, else count it.

        ``declared`` is the member's size from its header (``None``: unknown, and the caller
        counts it). Returns whether it was opened as an archive.
        """
        head = _read_up_to(member, HEAD_BYTES)
        kind, _ = detect(head, None)
        if kind in ARCHIVES and self.may_open(declared, depth, where):
            with tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY) as spool:
                spool.write(head)
                copied = _copy_capped(member, spool, self.limits.max_nested_size - len(head))
                if copied is not None:
                    spool.seek(0)
                    self.layer(spool, kind, len(head) + copied, depth + 1, where)
                    return True
                self.flag(
                    "suspicious",
                    f"nested archive over {self.limits.max_nested_size} "
                    f"bytes was not opened ({where})",
                )
        if declared is not None:
            self.add_content(declared)
        return False

    def may_open(self, declared: int | None, depth: int, where: str) -> bool:
        if depth + 1 > self.limits.max_depth:
            self.depth = max(self.depth, depth + 1)
            self.flag(
                "suspicious",
                f"archives nested deeper than {self.limits.max_depth} levels ({where})",
            )
            return False
        if declared is not None and declared > self.limits.max_nested_size:
            self.flag(
                "suspicious",
                f"nested archive of {declared} bytes is over "
                f"{self.limits.max_nested_size} and was not opened ({where})",
            )
            return False
        return True


class _CapReached(Exception):
    """More bytes were inflated than the cap allows."""


class _Meter(io.RawIOBase):
    """A read-only stream over ``inner`` that counts bytes and raises past ``cap``."""

    def __init__(self, inner: _Reader, cap: int, tick: Callable[[], None]) -> None:
        super().__init__()
        self.inner = inner
        self.cap = cap
        self.count = 0
        self.tick = tick

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.inner.read(min(len(view), self.cap + 1 - self.count))
        self.count += len(data)
        if self.count > self.cap:
            raise _CapReached
        self.tick()
        view[: len(data)] = data
        return len(data)


def _ends_in_a_zip(handle: IO[bytes]) -> bool:
    """A zip that zipfile will open from the end of this file (data in front of it or not)."""
    try:
        zipinfo.find_end(handle)
    except zipinfo.ZipLayoutError:
        return False
    return True


def _read_up_to(stream: _Reader, size: int) -> bytes:
    parts: list[bytes] = []
    while size > 0 and (chunk := stream.read(size)):
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _copy_capped(source: _Reader, target: IO[bytes], cap: int) -> int | None:
    """Copy ``source`` to ``target``; ``None`` (stopped) if it is over ``cap`` bytes."""
    copied = 0
    while chunk := source.read(_CHUNK):
        copied += len(chunk)
        if copied > cap:
            return None
        target.write(chunk)
    return copied


def _drain(stream: _Reader) -> None:
    while stream.read(_CHUNK):
        pass
