"""Every Kafka topic, declared once: its name, what its key is, the record type it carries,
and whether it is compacted (:data:`CONTRACT`, :func:`contract_of`); partitions come with the
deployment (:func:`topic_specs`).

Facts (``docs.*``, ``scan.*``) are kept forever (``retention.ms=-1``): the topics are the source
of truth and the databases are projections that ``replay`` rebuilds.  Current-state topics are
compacted.  Each fact topic has a ``<name>.dlq`` twin for poison events.  A ``prefix`` gives
tests (or a second environment on one cluster) their own set of names.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.documents import DocsConfirmed, DocsMetadata, DocsReextract, DocsRequested, DocsStatus
from schemas.record import Record
from schemas.records import ScannerHeartbeat, ScanVerdict
from schemas.scans import RescanRequest, ScanRequest
from schemas.scripts import ExtractorScript

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


@dataclass(frozen=True)
class Topic:
    """One topic of the contract (its name without a deployment's prefix)."""

    name: str
    key: str  # what the key of a record is
    record: type[Record]  # the typed record of its values
    compacted: bool = False  # current state (compacted) rather than facts (kept forever)

    @property
    def family(self) -> str:
        """The codec schema family of its values (all versions): the registry's subject."""
        return self.record.SCHEMA

    def decode(self, data: bytes) -> Record:
        """A value of this topic as its record type; ValueError when it is not one."""
        return self.record.decode(data)


DOC_ID = "the document id (UUIDv7 text)"
CONTRACT: tuple[Topic, ...] = (
    Topic(DOCS_REQUESTED, DOC_ID, DocsRequested),
    Topic(DOCS_CONFIRMED, DOC_ID, DocsConfirmed),
    Topic(DOCS_METADATA, DOC_ID, DocsMetadata),
    Topic(DOCS_STATUS, DOC_ID, DocsStatus),
    Topic(SCAN_REQUESTS, DOC_ID, ScanRequest),
    Topic(SCAN_VERDICTS, DOC_ID, ScanVerdict),
    Topic(DOCS_REEXTRACT, DOC_ID, DocsReextract),
    Topic(SCAN_RESCANS, DOC_ID, RescanRequest),
    Topic(
        SCANNERS_REGISTRY,
        "the scanner name (a null value retires it)",
        ScannerHeartbeat,
        compacted=True,
    ),
    Topic(
        EXTRACTOR_SCRIPTS,
        "'version:<v>' for a published version, 'active' for the active one",
        ExtractorScript,
        compacted=True,
    ),
)
_BY_NAME = {t.name: t for t in CONTRACT}


def contract_of(name: str) -> Topic:
    """The declaration of topic ``name`` (without prefix): what key and record it carries."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown topic {name!r}; known: {sorted(_BY_NAME)}") from None


def topic_for(record: Record) -> Topic:
    """The topic a record of this type goes to (each type is carried by exactly one)."""
    return _BY_RECORD[type(record)]


_BY_RECORD = {t.record: t for t in CONTRACT}
FACT_TOPICS = tuple(t.name for t in CONTRACT if not t.compacted)
STATE_TOPICS = tuple(t.name for t in CONTRACT if t.compacted)


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
