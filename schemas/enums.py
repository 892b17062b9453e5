"""The closed vocabularies of the contract: document statuses and verdict classes.

Declared once, here; the tracker, the gateway, the scanners and the SQL ``status_rank()``
(ops/bootstrap/postgres, checked against this file by a test) all use these.  On the wire they
stay plain strings (not Avro enums), so a reader older than a new value still decodes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Status(StrEnum):
    REQUESTED = "requested"
    UPLOADED = "uploaded"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"


# A status only moves forward: replays and redeliveries compare ranks.  The three final
# statuses share the top rank, so none of them replaces another.
STATUS_RANK: Mapping[str, int] = MappingProxyType(
    {
        Status.REQUESTED: 0,
        Status.UPLOADED: 1,
        Status.IN_PROGRESS: 2,
        Status.DONE: 3,
        Status.FAILED: 3,
        Status.REJECTED: 3,
    }
)
TERMINAL = frozenset({Status.DONE, Status.FAILED, Status.REJECTED})


def status_rank(status: object) -> int:
    """The rank of a status; -1 for anything unknown (it never replaces a known one)."""
    return STATUS_RANK.get(str(status), -1)


class Verdict(StrEnum):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"
    ERROR = "error"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"  # not a file this scanner takes: not flagged, not inconclusive


FLAGGED = frozenset({Verdict.SUSPICIOUS, Verdict.MALICIOUS})  # counts in "2 / 9 flagged"
INCONCLUSIVE = frozenset({Verdict.TIMEOUT, Verdict.ERROR})  # never reused for the same bytes
