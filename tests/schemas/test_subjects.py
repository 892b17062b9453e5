"""Every topic declares the schema family it carries, and that family exists in the codec."""

from __future__ import annotations

from schemas import codec, subjects, topics


def test_every_topic_has_a_subject_and_no_dead_letter_twin_does() -> None:
    assert set(subjects.TOPIC_FAMILIES) == set(topics.FACT_TOPICS + topics.STATE_TOPICS)
    declared = subjects.subject_families()
    assert all(topics.dlq(t) + "-value" not in declared for t in topics.FACT_TOPICS)


def test_every_family_is_the_codecs_and_has_versions() -> None:
    for family in subjects.TOPIC_FAMILIES.values():
        assert codec.versions(family), family
        assert codec.schema_id(family) == codec.versions(family)[-1]


def test_subjects_follow_the_topic_name_strategy_under_a_prefix() -> None:
    assert subjects.value_subject(topics.SCAN_VERDICTS) == "scan.verdicts-value"
    under = subjects.subject_families("e2e1234.")
    assert under["e2e1234.scan.verdicts-value"] == "scan_verdict"
    assert under["e2e1234.docs.confirmed-value"] == "docs_confirmed"
    assert under["e2e1234.scanners.registry-value"] == "scanner_heartbeat"
    assert len(under) == len(subjects.TOPIC_FAMILIES)
