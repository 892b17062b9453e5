"""Hash reputation: the document's SHA-256 against a known-bad list the team edits in place."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ops.hashing import file_sha256
from scanners.base import ScanJob, Scanner, Verdict

log = logging.getLogger(__name__)

DEFAULT_LIST = Path(__file__).with_name("data") / "known_bad_sha256.txt"
LINE_VERDICTS = ("malicious", "suspicious")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
VERSIONS_KEPT = 16


@dataclass(frozen=True)
class _Entry:
    verdict: str
    label: str


@dataclass(frozen=True)
class _KnownBad:
    """One loaded version of the list: the entries and what identifies the file on disk."""

    stamp: tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)
    digest: str
    entries: dict[str, _Entry] = field(default_factory=dict)
    skipped: int = 0


class HashReputation(Scanner):
    """Looks the document's SHA-256 up in a known-bad list; a hit is ``malicious`` (or the
    verdict written on the line), anything else ``clean``.

    The list is a text file, one ``<sha256> [malicious|suspicious] <label...>`` per line,
    ``#`` comments (see ``scanners/data/known_bad_sha256.txt``). Every scan stats it and
    reloads it when its mtime, size or inode changed, so edits apply without a restart;
    malformed lines are skipped with a warning. If the file later disappears or cannot be
    read, the last good list stays in use (with a warning) rather than failing every scan.

    Options: ``list_path`` (default: the list shipped in ``scanners/data/``), ``verify``
    (``1``: hash the file itself by streaming it instead of trusting ``job.sha256``; a
    mismatch is an ``error`` unless the real hash is known-bad), ``max_file_size`` (bytes,
    default none: only relevant with ``verify=1``), ``deadline_s`` (default 10, or 60 with
    ``verify=1``).

    A rescan is skipped when the document's entry is the same in the list version its
    verdict was made with and the current one (both loaded by this process since it started).
    """

    name = "hash-reputation"
    vendor = "IntelliDox"
    version = "1"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.list_path = Path(self.option("list_path", str(DEFAULT_LIST)))
        self.verify = self.option("verify", "0") == "1"
        self.max_file_size = self.option("max_file_size", None, int)
        self.deadline_s = self.option("deadline_s", 60.0 if self.verify else 10.0, float)
        self._lock = threading.Lock()
        self._known = _load(self.list_path, _stamp(self.list_path))  # a bad path fails fast
        # The versions this process has loaded (newest last): what a rescan compares with.
        self._versions: OrderedDict[str, dict[str, _Entry]] = OrderedDict()
        self._remember(self._known)

    def signatures_version(self) -> str:
        return _version(self._current())

    def unaffected(self, job: ScanJob, signatures_version: str) -> bool:
        """The entry for the job's SHA-256 is the same in that version and the current one
        (verify=1 hashes the file itself: it is always scanned)."""
        known = self._current()
        with self._lock:
            before = self._versions.get(signatures_version)
        if before is None or self.verify:
            return False
        sha = job.sha256.strip().lower()
        return bool(_SHA256.fullmatch(sha)) and before.get(sha) == known.entries.get(sha)

    def _remember(self, known: _KnownBad) -> None:
        self._versions[_version(known)] = known.entries
        self._versions.move_to_end(_version(known))
        while len(self._versions) > VERSIONS_KEPT:
            self._versions.popitem(last=False)

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        known = self._current()
        claimed = job.sha256.strip().lower()
        actual = claimed
        if self.verify or not _SHA256.fullmatch(claimed):
            actual = file_sha256(path)
        entry = known.entries.get(actual)
        if entry is not None:
            return Verdict(entry.verdict, f"known-bad SHA-256 {actual}: {entry.label}")
        if actual != claimed and _SHA256.fullmatch(claimed):
            return Verdict("error", f"sha256 mismatch: job says {claimed}, file is {actual}")
        return Verdict("clean", f"SHA-256 not on the known-bad list ({len(known.entries)} entries)")

    def _current(self) -> _KnownBad:
        """The loaded list, reloaded first if the file changed (one stat per call)."""
        with self._lock:
            try:
                stamp = _stamp(self.list_path)
                if stamp != self._known.stamp:
                    self._known = _load(self.list_path, stamp)
                    self._remember(self._known)
                    log.info(
                        "%s: loaded %d entries from %s",
                        self.name,
                        len(self._known.entries),
                        self.list_path,
                    )
            except OSError as exc:
                log.warning("%s: keeping the last good list: %s", self.name, exc)
            return self._known


def _version(known: _KnownBad) -> str:
    return f"{len(known.entries)}-{known.digest[:12]}"


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size, st.st_ino


def _load(path: Path, stamp: tuple[int, int, int]) -> _KnownBad:
    digest = hashlib.sha256()
    entries: dict[str, _Entry] = {}
    skipped = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            digest.update(raw)
            line = raw.decode("utf-8", errors="replace").strip()
            if not line or line.startswith("#"):
                continue
            parsed = _parse_line(line)
            if parsed is None:
                skipped += 1
                log.warning("%s:%d: not '<sha256> [verdict] <label>', skipped", path, number)
                continue
            entries[parsed[0]] = parsed[1]
    return _KnownBad(stamp, digest.hexdigest(), entries, skipped)


def _parse_line(line: str) -> tuple[str, _Entry] | None:
    parts = line.split(None, 2)
    sha = parts[0].lower()
    if not _SHA256.fullmatch(sha):
        return None
    rest = parts[1:]
    verdict = "malicious"
    if rest and rest[0].lower() in LINE_VERDICTS:
        verdict = rest.pop(0).lower()
    label = " ".join(rest).strip() or "listed as known-bad"
    return sha, _Entry(verdict, label)
