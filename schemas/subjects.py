"""Which schema family each topic carries: the Schema Registry subjects, declared once.

Confluent clients name a record's schema by the TopicNameStrategy: the subject of a topic's
values is ``<topic>-value``.  Every topic in :mod:`schemas.topics` carries exactly one schema
family of :mod:`schemas.codec` (all its versions); keys are plain UTF-8 document ids, so no topic
has a ``-key`` subject.  Dead-letter twins carry whatever bytes failed and have no subject.
"""

from __future__ import annotations

from schemas import topics

# topic (without prefix) -> the codec family of its values
TOPIC_FAMILIES: dict[str, str] = {
    topics.DOCS_REQUESTED: "docs_requested",
    topics.DOCS_CONFIRMED: "docs_confirmed",
    topics.DOCS_METADATA: "docs_metadata",
    topics.DOCS_STATUS: "docs_status",
    topics.SCAN_REQUESTS: "scan_request",
    topics.SCAN_VERDICTS: "scan_verdict",
    topics.DOCS_REEXTRACT: "docs_reextract",
    topics.SCAN_RESCANS: "rescan_request",
    topics.SCANNERS_REGISTRY: "scanner_heartbeat",
    topics.EXTRACTOR_SCRIPTS: "extractor_script",
}
VALUE_SUFFIX = "-value"


def value_subject(topic: str, prefix: str = "") -> str:
    """``scan.verdicts`` -> ``scan.verdicts-value`` (under a test stack's topic ``prefix``)."""
    return f"{prefix}{topic}{VALUE_SUFFIX}"


def subject_families(prefix: str = "") -> dict[str, str]:
    """Every subject with the family it versions, in declaration order."""
    return {value_subject(t, prefix): family for t, family in TOPIC_FAMILIES.items()}
