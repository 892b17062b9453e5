"""YARA rules (yara-python) from a directory that is recompiled whenever it changes."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yara

from scanners.base import ScanJob, Scanner, Verdict

log = logging.getLogger(__name__)

RULES_DIR = Path(__file__).with_name("yara_rules")
RULE_SUFFIXES = (".yar", ".yara")
SEVERITY = {"clean": 0, "suspicious": 1, "malicious": 2}

# (file name, size, mtime in ns) for each rule file: what is checked on every scan
Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class RuleSet:
    """Compiled rules and what they were compiled from."""

    rules: Any
    fingerprint: Fingerprint
    digest: str
    count: int


class Yara(Scanner):
    """YARA rules matched against the file on disk (never loaded into Python's memory).

    Every ``*.yar``/``*.yara`` file in the rules directory is compiled, each in its own
    namespace (the file's stem).  Before each scan the directory's file names, sizes and
    mtimes are compared with the last compile (a few ``stat`` calls); on any change the set
    is recompiled.  A set that fails to compile is logged and the previous one kept.
    ``signatures_version()`` is the first 16 hex digits of a sha256 over the rule files'
    names and contents.

    A match's verdict comes from the rule's ``verdict`` meta (``malicious`` or
    ``suspicious``), else ``default_verdict``; the worst match wins, and ``result`` lists
    every matching rule as ``namespace.rule``.

    Options: ``rules_dir`` (default: ``scanners/yara_rules`` shipped in the package),
    ``default_verdict`` (for rules without a ``verdict`` meta, default ``suspicious``),
    ``max_file_size`` (bytes, default 256 MiB: bigger files are ``too_large``),
    ``deadline_s`` (default 60; also YARA's own match timeout).
    """

    name = "yara"
    vendor = "VirusTotal YARA"
    version = "1"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.rules_dir = Path(self.option("rules_dir", str(RULES_DIR)))
        self.default_verdict = self.option("default_verdict", "suspicious")
        if self.default_verdict not in ("suspicious", "malicious"):
            raise ValueError(f"yara: default_verdict {self.default_verdict!r} is not allowed")
        self.max_file_size = self.option("max_file_size", 256 << 20, int)
        self.deadline_s = self.option("deadline_s", 60.0, float)
        self._lock = threading.Lock()
        self._failed: Fingerprint | None = None
        self._ruleset = self._compile(self._fingerprint())

    # -- rule set ---------------------------------------------------------------------------
    def _rule_files(self) -> list[Path]:
        files = [p for p in self.rules_dir.iterdir() if p.suffix.lower() in RULE_SUFFIXES]
        return sorted(p for p in files if p.is_file())

    def _fingerprint(self) -> Fingerprint:
        stats = ((p.name, p.stat()) for p in self._rule_files())
        return tuple((name, st.st_size, st.st_mtime_ns) for name, st in stats)

    def _compile(self, fingerprint: Fingerprint) -> RuleSet:
        files = self._rule_files()
        if not files:
            raise ValueError(f"yara: no {'/'.join(RULE_SUFFIXES)} files in {self.rules_dir}")
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        rules = yara.compile(filepaths={p.stem: str(p) for p in files})
        return RuleSet(rules, fingerprint, digest.hexdigest()[:16], len(files))

    def _current(self) -> RuleSet:
        """The compiled rules, recompiled first if the directory changed since.

        A rule set that failed to compile is not retried until the directory changes again.
        """
        try:
            fingerprint = self._fingerprint()
        except OSError as exc:
            log.error("yara: keeping the previous rules; cannot list %s: %s", self.rules_dir, exc)
            return self._ruleset
        with self._lock:
            if fingerprint not in (self._ruleset.fingerprint, self._failed):
                try:
                    self._ruleset = self._compile(fingerprint)
                    log.info("yara: recompiled %d rule files", len(fingerprint))
                except (yara.Error, ValueError, OSError) as exc:
                    self._failed = fingerprint
                    log.error("yara: keeping the previous rules; recompiling failed: %s", exc)
            return self._ruleset

    def engine_version(self) -> str:
        return str(yara.YARA_VERSION)

    def signatures_version(self) -> str:
        return self._current().digest

    # -- scanning ---------------------------------------------------------------------------
    def _too_large(self, path: Path, job: ScanJob) -> Verdict | None:
        size = max(job.file_size, path.stat().st_size)
        if self.max_file_size is not None and size > self.max_file_size:
            return Verdict("too_large", f"{size} bytes is over yara's {self.max_file_size}")
        return None

    def _verdict_of(self, match: Any) -> str:
        verdict = str(match.meta.get("verdict", self.default_verdict)).lower()
        return verdict if verdict in ("suspicious", "malicious") else self.default_verdict

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        too_large = self._too_large(path, job)
        if too_large is not None:
            return too_large
        ruleset = self._current()
        try:
            matches = ruleset.rules.match(filepath=str(path), timeout=max(1, int(self.deadline_s)))
        except yara.TimeoutError as exc:
            return Verdict("timeout", f"yara: {exc}")
        except yara.Error as exc:
            return Verdict("error", f"yara: {exc}")
        if not matches:
            return Verdict("clean", f"no match in {ruleset.count} rule files ({ruleset.digest})")
        labelled = [(self._verdict_of(m), f"{m.namespace}.{m.rule}") for m in matches]
        worst = max((v for v, _ in labelled), key=SEVERITY.__getitem__)
        described = ", ".join(f"{rule} ({verdict})" for verdict, rule in labelled)
        return Verdict(worst, described)
