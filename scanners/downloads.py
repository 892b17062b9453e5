"""Objects fetched once per host and shared by every engine that scans them.

Files are named by their SHA-256 under one directory per user of the host.  Within a process,
engines asking for the same object wait for one download and share the file (reference-counted).
The scanners of a host rarely take a document at the same moment (each has its own queue), so
the last one out does not delete the file at once: it stays for ``linger_s`` (30 s) while the
idle files stay under ``keep_bytes`` (256 MiB), oldest out first; twenty scanners used to
download the same object about sixteen times.  Another scanner process of the same user reuses
a complete file it finds there; files left by a killed process (an hour old) are swept at
start.  Downloads stream to disk in 1 MiB chunks while hashing, so memory stays flat
whatever the size, and a file whose hash differs from the request's is refused.

The documents are the uploaders' and may be anyone's secrets: the directory is created with
mode 0700 and each file with 0600, and a directory that already exists with another owner or
looser permissions (someone could read the files, or plant one under a hash we will ask for)
is refused, not used.  A storage outage is retried with backoff for as long as the caller
allows (while the request's URL is valid), so an outage produces no ``error`` verdict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import stat
import sys
import tempfile
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import urllib3

from ops.backoff import Backoff, GaveUp, retrying_sync
from ops.hashing import file_sha256

__all__ = ["DownloadError", "SharedDownloads", "UnsafeDirectory", "file_sha256"]

CHUNK = 1 << 20
LINGER_S = 30.0
KEEP_BYTES = 256 << 20
STALE_S = 3600.0
log = logging.getLogger(__name__)
OUTAGE = Backoff(attempts=None, base_s=0.2, cap_s=5.0)  # a download's window_s is its timeout
SOCKET_TIMEOUT_S = 30.0  # one connect or read of a download; the outage window is longer
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_RETRIED_STATUSES = frozenset({408, 429})  # and every 5xx: the store is busy or starting


class DownloadError(OSError):
    """The object cannot be had: refused by the store, or its hash is not the expected one."""


class UnsafeDirectory(PermissionError):
    """The download directory is not this user's alone."""


def default_directory() -> Path:
    """``<temp>/intellidox-scan-objects-<uid>`` (per user; Windows' temp is per user already)."""
    suffix = f"-{os.geteuid()}" if hasattr(os, "geteuid") else ""
    return Path(tempfile.gettempdir()) / f"intellidox-scan-objects{suffix}"


def private_directory(directory: Path) -> Path:
    """``directory``, created with mode 0700, or UnsafeDirectory when someone else may use it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(f"download directory {directory} is not a directory (a link?)")
    if sys.platform == "win32":  # no owner/mode bits to check; %TEMP% is per user
        return directory
    if info.st_uid != os.geteuid():
        raise UnsafeDirectory(
            f"download directory {directory} belongs to uid {info.st_uid}, not to this "
            f"runner's uid {os.geteuid()}: remove it or run as its owner"
        )
    if info.st_mode & 0o077:
        raise UnsafeDirectory(
            f"download directory {directory} has mode {stat.S_IMODE(info.st_mode):04o}; "
            "it must be 0700 (others could read the documents or plant files): "
            "remove it (it is recreated) or chmod 700 it"
        )
    return directory


@dataclass
class _Entry:
    path: Path
    users: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    size: int = 0


class SharedDownloads:
    def __init__(
        self,
        directory: Path | None = None,
        linger_s: float = LINGER_S,
        keep_bytes: int = KEEP_BYTES,
    ) -> None:
        self.directory = private_directory(directory or default_directory())
        self.linger_s, self.keep_bytes = linger_s, keep_bytes
        self._entries: dict[str, _Entry] = {}
        self._idle: OrderedDict[str, float] = OrderedDict()  # sha256 -> idle since, oldest first
        self._idle_bytes = 0
        self._lock = threading.Lock()
        self.downloaded = 0  # objects fetched from the store (not found here already)
        _sweep(self.directory)

    @contextlib.contextmanager
    def fetch(self, url: str, sha256: str, timeout_s: float) -> Iterator[Path]:
        """The object as a local file for the duration of the ``with`` block.

        ``timeout_s`` bounds the whole fetch, retries of a store that is away included.
        """
        if not _SHA256.fullmatch(sha256):  # it names a file: never a path from a topic
            raise DownloadError(f"{sha256[:80]!r} is not a sha256 (64 lowercase hex digits)")
        entry, first = self._join(sha256)
        try:
            if first:
                self._download(entry, url, sha256, timeout_s)
            elif not entry.ready.wait(timeout_s):
                raise DownloadError("timed out waiting for another engine's download")
            if entry.error is not None:
                raise DownloadError(str(entry.error))
            yield entry.path
        finally:
            self._leave(sha256, entry)

    def _join(self, sha256: str) -> tuple[_Entry, bool]:
        with self._lock:
            entry = self._entries.get(sha256)
            if entry is not None and sha256 in self._idle:  # a lingering file: in use again
                del self._idle[sha256]
                self._idle_bytes -= entry.size
                if not entry.path.is_file():  # someone removed it meanwhile
                    entry = None
            first = entry is None
            if entry is None:
                entry = self._entries[sha256] = _Entry(self.directory / sha256)
            entry.users += 1
            return entry, first

    def _leave(self, sha256: str, entry: _Entry) -> None:
        with self._lock:
            entry.users -= 1
            if entry.users > 0:
                return
            if entry.error is None and entry.size <= self.keep_bytes:
                self._idle[sha256] = time.monotonic()
                self._idle_bytes += entry.size
                gone = self._expire(time.monotonic())
            else:
                del self._entries[sha256]
                gone = [entry.path]
        _unlink(gone)

    def evict(self) -> None:
        """Delete the files idle for longer than ``linger_s`` (call now and then)."""
        with self._lock:
            gone = self._expire(time.monotonic())
        _unlink(gone)

    def close(self) -> None:
        """Delete every idle file (those in use are deleted by their last user)."""
        with self._lock:
            gone = self._expire(float("inf"))
        _unlink(gone)

    def _expire(self, now: float) -> list[Path]:
        """Idle entries past their time, or beyond the bytes kept, oldest first (locked)."""
        gone = []
        while self._idle:
            sha256, since = next(iter(self._idle.items()))
            if since > now - self.linger_s and self._idle_bytes <= self.keep_bytes:
                break
            del self._idle[sha256]
            entry = self._entries.pop(sha256)
            self._idle_bytes -= entry.size
            gone.append(entry.path)
        return gone

    def _download(self, entry: _Entry, url: str, sha256: str, timeout_s: float) -> None:
        try:
            if not _complete(entry.path, sha256):
                download(url, entry.path, sha256, timeout_s)
                with self._lock:
                    self.downloaded += 1
            entry.size = entry.path.stat().st_size
        except BaseException as exc:
            entry.error = exc
        finally:
            entry.ready.set()


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):  # another process may still read it (Windows)
            path.unlink()


def _sweep(directory: Path) -> None:
    """Remove what a killed scanner process left (files and partial downloads untouched for
    an hour: those of a live process are younger)."""
    cutoff = time.time() - STALE_S
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime < cutoff:
                path.unlink()


def _complete(path: Path, sha256: str) -> bool:
    """A file another process left here, verified before reuse."""
    return path.is_file() and not path.is_symlink() and file_sha256(path) == sha256


def download(url: str, path: Path, sha256: str, timeout_s: float) -> None:
    """Stream ``url`` to ``path``; refuse content whose hash differs.

    Failures that may pass (connection refused or broken, a timeout, 5xx, 408, 429) are
    retried with backoff until ``timeout_s`` has gone by; a refusal (other 4xx) or a wrong
    hash is final at once.
    """
    deadline = time.monotonic() + timeout_s
    outage = dataclasses.replace(OUTAGE, window_s=timeout_s)

    def once() -> None:
        # Per socket operation, not the whole body: a hung store is retried, not waited on.
        _stream(url, path, sha256, min(SOCKET_TIMEOUT_S, max(1.0, deadline - time.monotonic())))

    def retried(tries: int, pause: float, exc: BaseException) -> None:
        if tries == 1 or tries % 10 == 0:  # an outage waited out must show in the logs
            left = deadline - time.monotonic()
            log.warning("download failed (try %d), retrying for %.0fs more: %s", tries, left, exc)

    try:
        retrying_sync(once, [(DownloadError, None), (OSError, outage)], retried)
    except GaveUp as exc:
        raise DownloadError(f"download failed after {exc.tries} tries: {exc.last}") from exc


_HTTP = urllib3.PoolManager(maxsize=32, retries=False)  # keep-alive to the object store


def _chunks(url: str, timeout_s: float) -> Iterator[bytes]:
    if not url.startswith(("http://", "https://")):  # file:// for tools; never from a topic
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                while chunk := response.read(CHUNK):
                    yield chunk
        except OSError as exc:
            raise DownloadError(f"cannot read {url}: {exc}") from exc
        return
    try:
        response = _HTTP.request("GET", url, preload_content=False, timeout=timeout_s)
    except urllib3.exceptions.HTTPError as exc:  # connection refused, reset, timed out
        raise OSError(f"GET failed: {exc}") from exc
    try:
        if response.status != 200:
            retried = response.status >= 500 or response.status in _RETRIED_STATUSES
            error = OSError if retried else DownloadError
            raise error(f"GET answered {response.status}: {response.data[:200]!r}")
        yield from response.stream(CHUNK)
    except urllib3.exceptions.HTTPError as exc:  # the connection broke mid-body
        raise OSError(f"GET broke off: {exc}") from exc
    finally:
        response.release_conn()


def _stream(url: str, path: Path, sha256: str, timeout_s: float) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    digest = hashlib.sha256()
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(partial, flags, 0o600), "wb") as out:
            for chunk in _chunks(url, max(1.0, timeout_s)):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise DownloadError(
                f"the object's sha256 {digest.hexdigest()} is not the expected {sha256}"
            )
        os.replace(partial, path)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
