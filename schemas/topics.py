"""Every Kafka topic, declared once: name, partitions, and whether it is compacted.

Facts (``docs.*``, ``scan.*``) are kept forever (``retention.ms=-1``): the topics are the source
of truth and the databases are projections that ``replay`` rebuilds.  Current-state topics are
compacted.  Each fact topic has a ``<name>.dlq`` twin for poison events.  A ``prefix`` gives
tests (or a second environment on one cluster) their own set of names.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCS_REQUESTED = "docs.requested"
DOCS_CONFIRMED = "docs.confirmed"
DOCS_METADATA = "docs.metadata"
DOCS_STATUS = "docs.status"
SCAN_REQUESTS = "scan.requests"
SCAN_VERDICTS = "scan.verdicts"
SCANNERS_REGISTRY = "scanners.registry"
EXTRACTOR_SCRIPTS = "extractor.scripts"
DOCS_REEXTRACT = "docs.reextract"  # re-run extraction on stored documents, no new scan
SCAN_RESCANS = "scan.rescans"  # scan stored documents again (signatures changed), low priority

FACT_TOPICS = (
    DOCS_REQUESTED,
    DOCS_CONFIRMED,
    DOCS_METADATA,
    DOCS_STATUS,
    SCAN_REQUESTS,
    SCAN_VERDICTS,
    DOCS_REEXTRACT,
    SCAN_RESCANS,
)
STATE_TOPICS = (SCANNERS_REGISTRY, EXTRACTOR_SCRIPTS)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool

    def config(self) -> dict[str, str]:
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        return {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


def topic_specs(prefix: str = "", partitions: int = 6) -> list[TopicSpec]:
    """The whole declaration, with names under ``prefix``."""
    specs = [TopicSpec(prefix + name, partitions, False) for name in FACT_TOPICS]
    specs += [TopicSpec(prefix + dlq(name), 1, False) for name in FACT_TOPICS]
    specs += [TopicSpec(prefix + name, 1, True) for name in STATE_TOPICS]
    return specs
