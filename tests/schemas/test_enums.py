"""The contract's vocabularies, and the SQL that must agree with them."""

from __future__ import annotations

import re
from pathlib import Path

from schemas.enums import FLAGGED, STATUS_RANK, TERMINAL, Status, Verdict, status_rank

MIGRATIONS = Path(__file__).parents[2] / "ops" / "bootstrap" / "postgres"


def _sql_ranks() -> dict[str, int]:
    """status_rank() as the newest migration that defines it says."""
    defining = [p for p in sorted(MIGRATIONS.glob("*.sql")) if "status_rank(" in p.read_text()]
    text = [p.read_text() for p in defining if "FUNCTION status_rank" in p.read_text()][-1]
    return {name: int(rank) for name, rank in re.findall(r"WHEN '(\w+)' THEN (\d+)", text)}


def test_the_sql_status_rank_is_the_contracts() -> None:
    assert _sql_ranks() == {str(s): rank for s, rank in STATUS_RANK.items()}


def test_every_status_has_a_rank_and_the_final_ones_share_the_top() -> None:
    assert set(STATUS_RANK) == set(Status)
    top = max(STATUS_RANK.values())
    assert {s for s, rank in STATUS_RANK.items() if rank == top} == TERMINAL


def test_unknown_statuses_rank_below_every_known_one() -> None:
    assert status_rank("archived") == -1 < status_rank("requested") == 0
    assert status_rank(Status.DONE) == status_rank("done") == 3


def test_verdict_strings_are_the_wire_values() -> None:
    assert Verdict("timeout") is Verdict.TIMEOUT and "malicious" in FLAGGED
    assert [str(v) for v in Verdict] == [
        "clean",
        "suspicious",
        "malicious",
        "error",
        "timeout",
        "too_large",
        "unsupported",
    ]
