"""The topic contract: each topic declared once, with its key, family and record type."""

from __future__ import annotations

import pytest

from schemas import codec, topics
from schemas.record import at_ms
from schemas.records import ScanVerdict


def test_each_topic_is_declared_once_and_its_record_writes_its_family() -> None:
    names = [t.name for t in topics.CONTRACT]
    assert len(names) == len(set(names))
    assert len({t.record for t in topics.CONTRACT}) == len(names)  # one topic per record type
    for topic in topics.CONTRACT:
        assert codec.versions(topic.family), topic.name
        assert topic.key


def test_every_schema_family_is_some_topics() -> None:
    families = {codec.family(stem) for stem in codec.SCHEMA_IDS.values()}
    assert families == {t.family for t in topics.CONTRACT}


def test_code_can_ask_what_a_topic_carries() -> None:
    verdicts = topics.contract_of(topics.SCAN_VERDICTS)
    assert verdicts.record is ScanVerdict and not verdicts.compacted
    assert topics.contract_of(topics.EXTRACTOR_SCRIPTS).compacted
    verdict = ScanVerdict("d", "t", "s", "", "clean", "", "", "", at_ms(0), at_ms(0))
    assert topics.topic_for(verdict) is verdicts
    with pytest.raises(ValueError, match="unknown topic"):
        topics.contract_of("docs.nonsense")


def test_facts_are_kept_and_state_is_compacted() -> None:
    specs = {s.name: s for s in topics.topic_specs("p.")}
    assert specs["p.scan.verdicts"].config()["retention.ms"] == "-1"
    assert specs["p.scan.verdicts.dlq"].partitions == 1
    assert specs["p.extractor.scripts"].compacted
    assert "p.extractor.scripts.dlq" not in specs
