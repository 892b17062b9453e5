"""The worker's metrics, recorded as events pass (the periodic probes are streams/monitor.py).

Each is a module-level ``prometheus_client`` metric in the default registry, served at the
worker's ``/metrics`` (streams/app.py).  Labels are bounded sets: scanner names, statuses,
and the failure reasons :func:`extraction_failure` sorts errors into (never the raw text).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from ops.metrics import EXTRACTION_BUCKETS

EXTRACTION_DURATION = Histogram(
    "intellidox_extraction_duration_seconds",
    "Time to read, hash and run the extractor script on one document",
    buckets=EXTRACTION_BUCKETS,
)
EXTRACTION_FAILURES = Counter(
    "intellidox_extraction_failures",
    "Extractions that failed (download) or whose script gave no metadata, by reason",
    ["reason"],
)
DOCUMENTS_EXTRACTED = Counter("intellidox_documents_extracted", "Documents extracted")
CONFIRMATIONS_REPLAYED = Counter(
    "intellidox_confirmations_replayed",
    "Redelivered confirmations skipped because their document was already fanned out",
)
SCAN_REQUESTS = Counter("intellidox_scan_requests", "Scan requests fanned out")
VERDICTS_REUSED = Counter(
    "intellidox_verdicts_reused",
    "Verdicts copied from an earlier document with the same content, by scanner",
    ["scanner"],
)
VERDICTS_UNSUPPORTED = Counter(
    "intellidox_verdicts_unsupported",
    "Unsupported verdicts the orchestrator gave for a scanner that does not accept the file type"
    " (not asked, nothing downloaded), by scanner",
    ["scanner"],
)
VERDICT_REREADS = Counter(
    "intellidox_verdict_rereads",
    "Verdict partitions read again because a live scanner's verdict never reached the tracker",
)
VERDICTS_TIMED_OUT = Counter(
    "intellidox_verdicts_timed_out",
    "Timeout verdicts the tracker gave for a scanner group with no live member, by scanner",
    ["scanner"],
)
VERDICTS_LATE = Counter(
    "intellidox_verdicts_late", "Real verdicts that arrived after the tracker's timeout"
)
STATUSES = Counter(
    "intellidox_document_statuses",
    "Status transitions the tracker emitted, by status",
    ["status"],
)
MATERIALIZED = Counter(
    "intellidox_events_materialized",
    "Events written to a projection, by projection (documents: Postgres, verdicts: Cassandra)",
    ["projection"],
)
SCRIPT_SWAPS = Counter("intellidox_script_swaps", "Extractor script activations applied")
SCRIPT_SWAP_FAILURES = Counter(
    "intellidox_script_swap_failures", "Extractor script activations that could not be applied"
)
REEXTRACTED = Counter("intellidox_documents_reextracted", "Documents extracted again")
REEXTRACTIONS_SKIPPED = Counter(
    "intellidox_reextractions_skipped", "Re-extraction requests skipped"
)

# Error texts of streams/extraction.py and streams/sandbox_*.py, first match wins.
_REASONS = (
    ("time limit", "timeout"),
    ("memory limit", "memory"),
    ("MemoryError", "memory"),
    ("crashed", "crash"),
    ("sandbox", "sandbox"),
    ("cannot read the script", "script_unavailable"),
)


def extraction_failure(failed: bool, error: str | None) -> str | None:
    """Why a docs.metadata record failed, as a metric label; None when it did not."""
    if failed:
        return "download"
    if not error:
        return None
    return next((reason for text, reason in _REASONS if text in error), "script_error")


def observe_extraction(failed: bool, error: str | None, seconds: float) -> None:
    EXTRACTION_DURATION.observe(seconds)
    DOCUMENTS_EXTRACTED.inc()
    reason = extraction_failure(failed, error)
    if reason is not None:
        EXTRACTION_FAILURES.labels(reason).inc()
