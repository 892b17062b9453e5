"""The retro-scan's metrics (worker side; the scanner side is in scanners/rescans.py)."""

from __future__ import annotations

from prometheus_client import Counter

RESCAN_JOBS = Counter(
    "intellidox_rescan_jobs",
    "Rescan jobs opened by this worker, by scanner and reason (signatures, manual)",
    ["scanner", "reason"],
)
RESCAN_REQUESTS = Counter(
    "intellidox_rescan_requests",
    "Rescan requests sent to scan.rescans, by scanner",
    ["scanner"],
)
RESCAN_VERDICT_CHANGES = Counter(
    "intellidox_rescan_verdict_changes",
    "Documents whose verdict changed on a rescan (copies to the same bytes included), by"
    " scanner and the verdicts before and after: to=malicious is what an alert watches",
    ["scanner", "from", "to"],
)
