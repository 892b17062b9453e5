"""Prometheus metrics shared by every process: one exposition, behind a bearer token.

Each process (gateway, worker, scanner host) records into ``prometheus_client``'s default
``REGISTRY`` and serves it at ``/metrics``, so a module that registers its own metrics there
(rate limits, a new stage) shows up without any wiring.  The page wants
``Authorization: Bearer <metrics_token>``: every endpoint authenticates, and the local
Prometheus reads the token from a file (ops/services/prometheus.py).

Names follow the Prometheus conventions: ``intellidox_`` prefix, base units (seconds, bytes),
``_total`` on counters (``prometheus_client`` appends it).  Metrics used by more than one
component are declared here, once: a name registered twice in one process is an error.
"""

from __future__ import annotations

import hmac
import urllib.request
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.parser import text_string_to_metric_families

# Histogram buckets (seconds): an HTTP request, an engine scan, an extraction.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SCAN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
EXTRACTION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

DEAD_LETTERS = Counter(
    "intellidox_dead_letters",
    "Events this process sent to a dead-letter topic, by source topic (unprefixed)",
    ["topic"],
)
PROBE_ERRORS = Counter(
    "intellidox_probe_errors",
    "Periodic probes (Kafka lag, outbox, stuck documents) that failed, by probe",
    ["probe"],
)
PROBE_SUCCESS = Gauge(
    "intellidox_probe_last_success_timestamp_seconds",
    "When a periodic probe last succeeded (Unix time), by probe: its gauges are that fresh",
    ["probe"],
)


@dataclass(frozen=True)
class Exposition:
    """What a ``/metrics`` request gets: the text format, or 401."""

    status: int
    body: bytes
    content_type: str


def authorized(header: str | None, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>`` (compared in constant time)."""
    if not header or not token:
        return False
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def expose(
    authorization: str | None, token: str, registry: CollectorRegistry = REGISTRY
) -> Exposition:
    if not authorized(authorization, token):
        body = b'{"error": "send Authorization: Bearer <metrics token>"}'
        return Exposition(401, body, "application/json")
    return Exposition(200, _generate_latest(registry), CONTENT_TYPE_LATEST)


def scrape(url: str, token: str, timeout_s: float = 5.0) -> str:
    """A process's ``/metrics`` text (benchmarks and tests)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return str(response.read().decode())


def families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """Metric families of an exposition: name -> [(sample name, labels, value)]."""
    return {
        family.name: [(s.name, dict(s.labels), s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def total(text: str, sample: str, **labels: str) -> float:
    """The sum of every ``sample`` whose labels include ``labels``."""
    return sum(
        value
        for found in families(text).values()
        for name, have, value in found
        if name == sample and labels.items() <= have.items()
    )
