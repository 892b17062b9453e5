"""The BACKWARD check agrees with what fastavro really reads, and hostile schemas cost little."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.read import SchemaResolutionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.avro_compat import InvalidSchema, parse, problems
from schemas import codec
from schemas.subjects import TOPIC_FAMILIES

SCHEMAS = Path(codec.__file__).parent


def rec(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def fld(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "E", "symbols": list(symbols), **extra}


LINKED = rec("Node", fld("v", "int"), fld("next", ["null", "Node"]))
LINKED_MORE = rec(
    "Node", fld("v", "long"), fld("next", ["null", "Node"]), fld("w", "int", default=0)
)
LINKED_BAD = rec("Node", fld("v", "int"), fld("next", ["null", "Node"]), fld("w", "int"))
NODE = {"v": 1, "next": {"v": 2, "next": None}}

# (reader, writer, a datum the writer writes, readable?)
CASES: dict[str, tuple[Any, Any, Any, bool]] = {
    "same": (rec("R", fld("a", "string")), rec("R", fld("a", "string")), {"a": "x"}, True),
    "optional field added": (
        rec("R", fld("a", "string"), fld("b", ["null", "string"], default=None)),
        rec("R", fld("a", "string")),
        {"a": "x"},
        True,
    ),
    "required field added": (
        rec("R", fld("a", "string"), fld("b", "string")),
        rec("R", fld("a", "string")),
        {"a": "x"},
        False,
    ),
    "field dropped": (rec("R"), rec("R", fld("a", "string")), {"a": "x"}, True),
    "int to long": (rec("R", fld("a", "long")), rec("R", fld("a", "int")), {"a": 7}, True),
    "long to int": (rec("R", fld("a", "int")), rec("R", fld("a", "long")), {"a": 7}, False),
    "string to int": (rec("R", fld("a", "int")), rec("R", fld("a", "string")), {"a": "7"}, False),
    "string to bytes": ("bytes", "string", "abc", True),
    "int to double in an array": (
        {"type": "array", "items": "double"},
        {"type": "array", "items": "int"},
        [1, 2],
        True,
    ),
    "map values narrowed": (
        {"type": "map", "values": "int"},
        {"type": "map", "values": "long"},
        {"k": 1},
        False,
    ),
    "enum symbol dropped": (enum("A"), enum("A", "B"), "B", False),
    "enum symbol dropped, reader default": (enum("A", default="A"), enum("A", "B"), "B", True),
    "enum symbol added": (enum("A", "B", "C"), enum("A", "B"), "B", True),
    "union widened": (["null", "string"], "string", "x", True),
    "union narrowed": ("string", ["null", "string"], None, False),
    "record renamed": (rec("New", fld("a", "int")), rec("Old", fld("a", "int")), {"a": 1}, False),
    "record renamed, alias": (
        rec("New", fld("a", "int"), aliases=["Old"]),
        rec("Old", fld("a", "int")),
        {"a": 1},
        True,
    ),
    "field renamed, alias": (
        rec("R", fld("b", "int", aliases=["a"])),
        rec("R", fld("a", "int")),
        {"a": 1},
        True,
    ),
    "fixed resized": (
        {"type": "fixed", "name": "F", "size": 4},
        {"type": "fixed", "name": "F", "size": 8},
        b"12345678",
        False,
    ),
    "timestamp from long": (
        {"type": "long", "logicalType": "timestamp-millis"},
        "long",
        1_700_000_000_000,
        True,
    ),
    "recursive, same": (LINKED, LINKED, NODE, True),
    "recursive, evolved": (LINKED_MORE, LINKED, NODE, True),
    "recursive, field without default": (LINKED_BAD, LINKED, NODE, False),
}


def fastavro_reads(reader: Any, writer: Any, datum: Any) -> bool:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(writer), datum)
    out.seek(0)
    try:
        fastavro.schemaless_reader(
            out, fastavro.parse_schema(writer), fastavro.parse_schema(reader)
        )
    except SchemaResolutionError:
        return False
    return True


@pytest.mark.parametrize("case", CASES)
def test_the_check_agrees_with_a_real_read(case: str) -> None:
    reader, writer, datum, readable = CASES[case]
    assert fastavro_reads(reader, writer, datum) is readable  # the table itself is right
    found = problems(parse(reader), parse(writer))
    assert (not found) is readable, found


def test_problems_say_where() -> None:
    reader = rec("R", fld("a", "string"), fld("b", rec("S", fld("c", "int"))))
    writer = rec("R", fld("b", rec("S", fld("c", "string"))))
    assert problems(parse(reader), parse(writer)) == [
        "R.a: not written and has no default",
        "R.b.c: a string cannot be read as a int",
    ]


@pytest.mark.parametrize("family", sorted(set(TOPIC_FAMILIES.values())))
def test_every_newer_version_of_our_schemas_reads_the_older_ones(family: str) -> None:
    ids = codec.versions(family)
    raw = {sid: json.loads((SCHEMAS / f"{codec.SCHEMA_IDS[sid]}.avsc").read_text()) for sid in ids}
    for i, newer in enumerate(ids):
        for older in ids[:i]:
            assert problems(parse(raw[newer]), parse(raw[older])) == [], (newer, older)


@pytest.mark.parametrize(
    "schema",
    [
        "nope",
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": "x"}]},
        {"__fastavro_parsed": True, "type": "record", "name": "R"},
        {"type": "array", "items": {"type": "nope"}},
        {"type": "enum", "name": "E"},
        {"type": "fixed", "name": "F"},
        {"type": "record", "name": "R", "fields": [{"name": "a"}]},
    ],
)
def test_invalid_schemas_are_refused(schema: Any) -> None:
    with pytest.raises(InvalidSchema):
        parse(schema)


def test_malformed_parts_only_a_comparison_reaches_are_problems_not_crashes() -> None:
    reader = parse(rec("New", fld("a", "int"), aliases=[3]))  # aliases fastavro does not check
    assert problems(reader, parse(rec("Old", fld("a", "int"))))[0].startswith("malformed schema")


def test_deep_nesting_is_refused_not_crashed() -> None:
    deep: Any = "int"
    for _ in range(3000):
        deep = {"type": "array", "items": deep}
    with pytest.raises(InvalidSchema, match="nested too deeply"):
        parse(deep)


def test_a_combinatorial_schema_is_cut_short() -> None:
    def union(tag: str) -> list[Any]:
        return [rec(f"{tag}{i}", fld("a", "int")) for i in range(150)]

    started = time.perf_counter()
    found = problems(parse(union("R")), parse(union("W")))
    assert found == ["too complex to check (more than 10000 comparisons)"]
    assert time.perf_counter() - started < 1.0


KEYS = st.sampled_from(
    ["type", "name", "fields", "items", "values", "symbols", "size", "default", "aliases"]
)
WORDS = st.sampled_from(
    ["record", "enum", "array", "map", "fixed", "int", "long", "string", "null", "R", "E", "a"]
)
JSON = st.recursive(
    WORDS | st.integers(-2, 9) | st.none() | st.booleans(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON, JSON)
def test_any_json_is_refused_or_checked_never_crashes(reader: Any, writer: Any) -> None:
    try:
        parsed = parse(reader), parse(writer)
    except InvalidSchema:
        return
    assert isinstance(problems(*parsed), list)
