"""Objects fetched once per host and shared by every engine that scans them.

Files are named by their SHA-256 under one host-wide directory.  Within a process, engines
asking for the same object wait for one download and share the file (reference-counted; the
last one out deletes it).  Another scanner process on the host reuses a complete file it finds
there.  Downloads stream to disk in 1 MiB chunks while hashing, so memory stays flat whatever
the size, and a file whose hash differs from the request's is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import urllib3

from ops.hashing import file_sha256

__all__ = ["DownloadError", "SharedDownloads", "file_sha256"]

CHUNK = 1 << 20
ATTEMPTS = 3


class DownloadError(OSError):
    """The object could not be fetched (after retries) or did not match its hash."""


@dataclass
class _Entry:
    path: Path
    users: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class SharedDownloads:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.gettempdir()) / "intellidox-scan-objects"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def fetch(self, url: str, sha256: str, timeout_s: float) -> Iterator[Path]:
        """The object as a local file for the duration of the ``with`` block."""
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
            del self._entries[sha256]
        with contextlib.suppress(OSError):  # another process may still read it (Windows)
            entry.path.unlink()

    def _download(self, entry: _Entry, url: str, sha256: str, timeout_s: float) -> None:
        try:
            if not _complete(entry.path, sha256):
                download(url, entry.path, sha256, timeout_s)
        except BaseException as exc:
            entry.error = exc
        finally:
            entry.ready.set()


def _complete(path: Path, sha256: str) -> bool:
    """A file another process left here, verified before reuse."""
    return path.exists() and file_sha256(path) == sha256


def download(url: str, path: Path, sha256: str, timeout_s: float) -> None:
    """Stream ``url`` to ``path`` with retries; refuse content whose hash differs."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _stream(url, path, sha256, timeout_s)
            return
        except DownloadError:
            raise
        except OSError as exc:
            if attempt == ATTEMPTS:
                raise DownloadError(f"download failed after {ATTEMPTS} tries: {exc}") from exc
            time.sleep(0.2 * 2**attempt)


_HTTP = urllib3.PoolManager(maxsize=8, retries=False)  # keep-alive to the object store


def _chunks(url: str, timeout_s: float) -> Iterator[bytes]:
    if not url.startswith(("http://", "https://")):  # file:// and the like (tests, tools)
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            while chunk := response.read(CHUNK):
                yield chunk
        return
    try:
        response = _HTTP.request("GET", url, preload_content=False, timeout=timeout_s)
    except urllib3.exceptions.HTTPError as exc:  # connection refused, reset, timed out
        raise OSError(f"GET failed: {exc}") from exc
    try:
        if response.status != 200:
            raise OSError(f"GET answered {response.status}: {response.data[:200]!r}")
        yield from response.stream(CHUNK)
    except urllib3.exceptions.HTTPError as exc:  # the connection broke mid-body
        raise OSError(f"GET broke off: {exc}") from exc
    finally:
        response.release_conn()


def _stream(url: str, path: Path, sha256: str, timeout_s: float) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
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
