import time
import uuid

import pytest

from ops.ids import created_at_of, parse_doc_id, uuid7


def test_uuid7_has_version_variant_and_its_time() -> None:
    doc_id = uuid7(now_ms=1_700_000_000_123)
    assert doc_id.version == 7
    assert doc_id.variant == uuid.RFC_4122
    assert created_at_of(doc_id).timestamp() == pytest.approx(1_700_000_000.123)


def test_uuid7_sorts_by_time() -> None:
    ids = [uuid7(now_ms=int(time.time() * 1000) + i) for i in range(50)]
    assert sorted(ids) == ids
    assert len(set(ids)) == 50


@pytest.mark.parametrize("text", ["nope", "123", str(uuid.uuid4())])
def test_parse_rejects_what_is_not_a_v7_id(text: str) -> None:
    with pytest.raises(ValueError, match="not a document id"):
        parse_doc_id(text)
