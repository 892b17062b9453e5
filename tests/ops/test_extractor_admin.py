"""Extractor script operations against the real Kafka and S3, on topics of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ops import extractor_admin as admin
from ops.bootstrap.topics import create_topics, delete_topics
from ops.settings import Settings
from streams.script_check import check

pytestmark = pytest.mark.integration

GOOD = b"def extract(path, info):\n    return {'size_seen': info['file_size'], 'tag': 'good'}\n"
SLEEPS = b"import time\ndef extract(path, info):\n    time.sleep(3600)\n"
GREEDY = b"def extract(path, info):\n    x = bytearray(10 * 2**30)\n    return {}\n"


@pytest.fixture
def ours(settings: Settings) -> Iterator[Settings]:
    prefix = f"xs{uuid.uuid4().hex[:8]}."
    mine = settings.with_overrides(topic_prefix=prefix, extractor_timeout_s=2)
    create_topics(mine, prefix)
    try:
        yield mine
    finally:
        delete_topics(mine, prefix)


def _unique(source: bytes) -> bytes:
    return source + f"# {uuid.uuid4().hex}\n".encode()  # a new sha256, so a new version


async def _active(settings: Settings) -> str:
    return str(next(r["version"] for r in await admin.list_versions(settings) if r["active"]))


async def test_publish_activate_show_and_roll_back_step_by_step(ours: Settings) -> None:
    assert await _active(ours) == "default-1"
    one = await admin.publish(ours, _unique(GOOD), check, activate=True, note="first")
    assert one["created"] and one["active"] and one["version"].startswith("v1-")
    source = _unique(GOOD)
    two = await admin.publish(ours, source, check)
    assert two["version"].startswith("v2-") and not two["active"]
    assert await _active(ours) == one["version"]  # published, not active
    again = await admin.publish(ours, source, check)
    assert again["version"] == two["version"] and not again["created"]
    assert (await admin.activate(ours, two["version"]))["previous_version"] == one["version"]
    shown = await admin.show(ours, two["version"])
    assert shown["source"] == source.decode() and shown["active"]
    assert [r["version"] for r in await admin.list_versions(ours)] == [
        "default-1",
        one["version"],
        two["version"],
    ]
    assert (await admin.rollback(ours))["version"] == one["version"]
    assert (await admin.rollback(ours))["version"] == "default-1"
    with pytest.raises(admin.AdminError) as nothing:
        await admin.rollback(ours)
    assert nothing.value.status == 409 and await _active(ours) == "default-1"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (SLEEPS, "time limit"),
        (GREEDY, "MemoryError"),
        (b"def extract(path, info):\n    return {'a': [1]}\n", "not str, int, float or bool"),
        (b"def extract(path, info:\n", "SyntaxError"),
        (b"import no_such_module_here\n", "ModuleNotFoundError"),
        (b"def transform(path, info):\n    return {}\n", "no extract"),
    ],
)
async def test_a_failing_script_is_refused_and_the_active_version_stays(
    ours: Settings, source: bytes, why: str
) -> None:
    good = await admin.publish(ours, _unique(GOOD), check, activate=True)
    with pytest.raises(admin.AdminError) as refused:
        await admin.publish(ours, _unique(source), check, activate=True)
    assert refused.value.status == 422 and why in refused.value.message
    assert await _active(ours) == good["version"]
    assert [r["version"] for r in await admin.list_versions(ours)] == [
        "default-1",
        good["version"],
    ]


async def test_unknown_versions_are_404(ours: Settings) -> None:
    for operation in (admin.activate(ours, "v9-nope"), admin.show(ours, "v9-nope")):
        with pytest.raises(admin.AdminError) as unknown:
            await operation
        assert unknown.value.status == 404 and "default-1" in unknown.value.message
