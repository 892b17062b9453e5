"""What ``intellidox upload`` says about each file: one line or one JSON document on stdout,
and the exit code a script or CI job acts on (as ``clamscan``: 0 clean, 1 flagged, 2 error)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CLEAN, FLAGGED, ERROR = 0, 1, 2
FLAGGING = frozenset({"malicious", "suspicious"})
UNFINISHED = frozenset({"failed", "rejected"})  # the pipeline could not scan it


@dataclass(frozen=True)
class Verdict:
    scanner: str
    verdict: str
    result: str | None
    reused: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Verdict:
        return cls(
            str(row.get("scanner")),
            str(row.get("verdict")),
            row.get("result"),
            bool(row.get("reused")),
        )


@dataclass(frozen=True)
class FileResult:
    """One file as the gateway last described it (or why it could not)."""

    path: str
    file_name: str
    id: str | None = None
    sha256: str | None = None
    file_size: int | None = None
    file_type: str | None = None
    status: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    verdicts: tuple[Verdict, ...] = ()
    expected: int | None = None
    duplicate_of: str | None = None
    error: str | None = None

    @property
    def flagged(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.verdict in FLAGGING]

    @property
    def exit_code(self) -> int:
        if self.error is not None or self.status in UNFINISHED:
            return ERROR
        return FLAGGED if self.flagged else CLEAN

    @property
    def ratio(self) -> str:
        engines = self.expected if self.expected is not None else len(self.verdicts)
        return f"{len(self.flagged)}/{engines}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file_name": self.file_name,
            "path": self.path,
            "sha256": self.sha256,
            "file_size": self.file_size,
            "file_type": self.file_type,
            "status": self.status,
            "metadata": dict(self.meta),
            "verdicts": [dataclasses.asdict(v) for v in self.verdicts],
            "ratio": self.ratio,
            "flagged": [v.scanner for v in self.flagged],
            "duplicate_of": self.duplicate_of,
            "error": self.error,
            "exit_code": self.exit_code,
        }

    def line(self) -> str:
        """The one-line verdict (clamscan style: ``name: OK`` / ``name: … FOUND``)."""
        ident = f"  [{self.id}]" if self.id else ""
        if self.error is not None:
            return f"{self.path}: ERROR {self.error}{ident}"
        if self.status in UNFINISHED:
            return f"{self.path}: ERROR document {self.status}{ident}"
        if self.status not in ("done", None) and not self.verdicts:
            return f"{self.path}: SUBMITTED ({self.status}){ident}"
        if self.flagged:
            names = ", ".join(f"{v.scanner}: {v.result or v.verdict}" for v in self.flagged)
            return f"{self.path}: FLAGGED {self.ratio} engines ({names}){ident}"
        return f"{self.path}: OK {self.ratio} engines flagged{ident}"

    def render(self, as_json: bool) -> str:
        return json.dumps(self.to_json(), sort_keys=True) if as_json else self.line()


def exit_code(results: Iterable[FileResult]) -> int:
    """2 if any file could not be scanned (an incomplete run vouches for nothing), else 1 if
    any engine flagged a file, else 0."""
    return max((r.exit_code for r in results), default=CLEAN)


def from_api(
    path: str, meta: Mapping[str, Any], scan: Mapping[str, Any], duplicate_of: str | None
) -> FileResult:
    """A result from ``GET meta`` and ``GET scan-results``."""
    return FileResult(
        path=path,
        file_name=str(meta.get("file_name")),
        id=str(meta.get("id")),
        sha256=meta.get("sha256"),
        file_size=meta.get("file_size"),
        file_type=meta.get("file_type"),
        status=str(scan.get("status")),
        meta=dict(meta.get("meta") or {}),
        verdicts=tuple(Verdict.of(row) for row in scan.get("scan_results") or ()),
        expected=(scan.get("summary") or {}).get("expected"),
        duplicate_of=duplicate_of,
    )
