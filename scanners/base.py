"""The scanner SDK's base class: one subclass per engine, one ``scan()`` method.

The runner (:mod:`scanners.runner`) owns Kafka, downloading, deadlines, retries and
heartbeats; a scanner only scans a local file and says what it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ops.filetype import KINDS
from schemas import enums
from schemas.records import accepts_type, refusal

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

    ``accepts`` declares the file types (:data:`ops.filetype.KINDS`, as ``docs.metadata``
    carries them) the engine can judge; None: every type.  A document of another type is
    never sent to it: the orchestrator answers ``unsupported`` and nothing is downloaded.
    List every type the engine might find something in (an excluded type is never looked
    at); the engine still checks the bytes itself.  Every scanner takes the option
    ``accepts`` (``pdf,zip``, or ``all``), which replaces the declaration for an instance.
    """

    name: ClassVar[str] = ""
    vendor: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    deadline_s: float = 60.0
    max_file_size: int | None = None  # bigger files get ``too_large`` without scanning
    accepts: frozenset[str] | None = None  # file types it is asked about; None: every type
    # Requests one consumer keeps in flight (option ``inflight``): enough to overlap downloads,
    # scans and acknowledgements; an engine that mostly waits (a remote service) wants more.
    inflight: int = 4

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        if "accepts" in self.options:
            self.accepts = parse_accepts(self.options["accepts"])

    def option(self, key: str, default: Any, kind: type = str) -> Any:
        raw = self.options.get(key)
        return default if raw is None else kind(raw)

    @property
    def vendor_label(self) -> str:
        """The vendor shown on verdicts (option ``vendor`` overrides the class's)."""
        return self.options.get("vendor", self.vendor)

    def engine_version(self) -> str:
        return self.version

    def takes(self, file_type: str | None) -> bool:
        return accepts_type(self.accepts, file_type)

    def refusal(self, scanner: str, file_type: str) -> Verdict:
        """The ``unsupported`` verdict for a type it does not take (``scanner``: its name)."""
        return Verdict(enums.Verdict.UNSUPPORTED, refusal(scanner, self.accepts or (), file_type))

    def signatures_version(self) -> str:
        return ""

    def scan(self, path: Path, job: ScanJob) -> Verdict:
        raise NotImplementedError

    def unaffected(self, job: ScanJob, signatures_version: str) -> bool:
        """True when the engine knows that scanning ``job`` again with its current signatures
        would say what ``signatures_version`` said (e.g. a hash list whose entry for these
        bytes did not change): a rescan is then skipped.  Default: it cannot know."""
        return False


def parse_accepts(value: str) -> frozenset[str] | None:
    """The option ``accepts``: ``all``, or file types separated by commas."""
    if value.strip() == "all":
        return None
    kinds = frozenset(filter(None, (kind.strip() for kind in value.split(","))))
    unknown = sorted(kinds - KINDS)
    if not kinds or unknown:
        raise ValueError(
            f"accepts={value!r}: {', '.join(unknown) or 'no type'} is not a file type;"
            f" known: all, {', '.join(sorted(KINDS))}"
        )
    return kinds
