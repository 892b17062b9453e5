"""Which schema family each topic carries: the Schema Registry subjects, declared once.

Confluent clients name a record's schema by the TopicNameStrategy: the subject of a topic's
values is ``<topic>-value``.  Every topic in :mod:`schemas.topics` carries exactly one schema
family of :mod:`schemas.codec` (all its versions); keys are plain UTF-8 document ids, so no topic
has a ``-key`` subject.  Dead-letter twins carry whatever bytes failed and have no subject.
"""

from __future__ import annotations

from schemas import topics

# topic (without prefix) -> the codec family of its values, as the contract declares it
TOPIC_FAMILIES: dict[str, str] = {t.name: t.family for t in topics.CONTRACT}
VALUE_SUFFIX = "-value"


def value_subject(topic: str, prefix: str = "") -> str:
    """``scan.verdicts`` -> ``scan.verdicts-value`` (under a test stack's topic ``prefix``)."""
    return f"{prefix}{topic}{VALUE_SUFFIX}"


def subject_families(prefix: str = "") -> dict[str, str]:
    """Every subject with the family it versions, in declaration order."""
    return {value_subject(t, prefix): family for t, family in TOPIC_FAMILIES.items()}
