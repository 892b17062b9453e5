"""The scanner SDK's base class: one subclass per engine, one ``scan()`` method.

The runner (:mod:`scanners.runner`) owns Kafka, downloading, deadlines, retries and
heartbeats; a scanner only scans a local file and says what it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from schemas import enums

VERDICTS = tuple(enums.Verdict)  # declared in the contract (schemas/enums.py)


class TransientEngineError(Exception):
    """The engine could not answer this time (busy, its daemon unreachable or slow): the
    runner tries again while the deadline allows; any other exception is an ``error`` at once."""


@dataclass(frozen=True)
class Verdict:
    """One of :data:`VERDICTS`, plus the engine's own words."""

    verdict: str
    result: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")


@dataclass(frozen=True)
class ScanJob:
    """What a scanner is told about the file besides its bytes."""

    doc_id: str
    file_name: str
    file_size: int
    file_type: str | None
    content_type: str | None
    sha256: str


class Scanner:
    """Subclass with ``name``, ``vendor``, ``version`` and ``scan()``.

    ``options`` come from the command line (``name?key=value&...``); read them with defaults
    in ``__init__`` and document them in the class docstring.
    """

    name: ClassVar[str] = ""
    vendor: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    deadline_s: float = 60.0
    max_file_size: int | None = None  # bigger files get ``too_large`` without scanning
    # Requests one consumer keeps in flight (option ``inflight``): enough to overlap downloads,
    # scans and acknowledgements; an engine that mostly waits (a remote service) wants more.
    inflight: int = 4

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})

    def option(self, key: str, default: Any, kind: type = str) -> Any:
        raw = self.options.get(key)
        return default if raw is None else kind(raw)

    @property
    def vendor_label(self) -> str:
        """The vendor shown on verdicts (option ``vendor`` overrides the class's)."""
        return self.options.get("vendor", self.vendor)

    def engine_version(self) -> str:
        return self.version

    def signatures_version(self) -> str:
        return ""

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        raise NotImplementedError

    def unaffected(self, job: ScanJob, signatures_version: str) -> bool:
        """True when the engine knows that scanning ``job`` again with its current signatures
        would say what ``signatures_version`` said (e.g. a hash list whose entry for these
        bytes did not change): a rescan is then skipped.  Default: it cannot know."""
        return False
