"""The short fault suite (``python -m ops.bench.faults`` is the long one): the worker and the
scanners are SIGKILLed mid-run under a steady stream of documents, and nothing untrue or lost
reaches users."""

from __future__ import annotations

import pytest

from ops.bench.faults import run_fault

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fault", ["worker", "scanners"])
async def test_a_killed_process_delays_results_and_falsifies_nothing(fault: str) -> None:
    outcome = await run_fault(fault, docs=50, rate=5.0, down_s=3.0)
    audit = outcome.audit
    assert audit.documents == 50 and audit.documents_lost == 0, audit
    assert audit.projection_verdicts_lost == 0 and audit.topic_verdicts_lost == 0, audit
    assert audit.false_verdicts == 0, audit
    assert audit.stream_repeats == 0, audit
    assert audit.server_errors == 0, audit
    # Generous here (a shared CI box); the benchmark reports the real figure.
    assert outcome.recovery_s is not None and outcome.recovery_s <= 30, outcome
