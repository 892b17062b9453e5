"""ClamAV through clamd (INSTREAM over its socket)."""

from __future__ import annotations

import time
from pathlib import Path

from ops.clamd import ClamdClient, ClamdError, ScanResult
from ops.settings import get_settings
from scanners.base import ScanJob, Scanner, Verdict

STREAM_CHUNK = 1 << 20
VERSION_TTL_S = 30.0


class ClamAV(Scanner):
    """ClamAV's clamd.

    Options: ``max_file_size`` (bytes, default 1 GiB: clamd's StreamMaxLength is set above
    it), ``deadline_s`` (default 60), ``mode``: ``auto`` (default: by path when clamd is on
    this host, else streamed), ``path`` or ``stream`` (INSTREAM in 1 MiB chunks).
    """

    name = "clamav"
    vendor = "Cisco Talos"
    version = "1"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.client = ClamdClient.from_settings(get_settings())
        self.max_file_size = self.option("max_file_size", 1 << 30, int)
        self.deadline_s = self.option("deadline_s", 60.0, float)
        self.mode = self.option("mode", "auto")
        self._version: tuple[float, list[str]] | None = None
        if self.mode not in ("auto", "path", "stream"):
            raise ValueError(f"clamav: mode {self.mode!r} is not auto, path or stream")

    def _version_parts(self) -> list[str]:
        # "ClamAV 1.4.6/27000/Tue Nov 25 ..." — engine / signature db version / db date.
        # Asked for twice per verdict and every heartbeat: one clamd round trip per 30 s.
        now = time.monotonic()
        if self._version is None or self._version[0] < now:
            self._version = (now + VERSION_TTL_S, self.client.version().split("/"))
        return self._version[1]

    def engine_version(self) -> str:
        return self._version_parts()[0].removeprefix("ClamAV ").strip()

    def signatures_version(self) -> str:
        parts = self._version_parts()
        return parts[1].strip() if len(parts) > 1 else "intellidox-local"

    def _scan(self, path: Path) -> ScanResult:
        by_path = self.mode == "path" or (self.mode == "auto" and self.client.local)
        if by_path:
            try:
                return self.client.scan_path(path.resolve())
            except ClamdError as exc:  # e.g. clamd's user may not read the file: stream it
                if self.mode == "path" or "unreachable" in str(exc):
                    raise
        with open(path, "rb") as handle:
            return self.client.instream(handle, chunk=STREAM_CHUNK)

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        try:
            found = self._scan(path)
        except ClamdError as exc:
            if "size limit" in str(exc).lower():
                return Verdict("too_large", str(exc))
            raise
        if found.infected:
            return Verdict("malicious", found.signature or found.raw)
        return Verdict("clean", "OK")  # not clamd's raw reply: it names our local path
