"""Can a reader schema read data written with a writer schema?  The registry's BACKWARD test.

Schema Registry answers "is this new schema compatible" without data, so this checks Avro's
schema resolution rules (the specification's "Schema Resolution") on the two schemas' structure,
after fastavro has parsed both:

- named types match by unqualified name, or by a reader alias naming the writer's full name;
- a record reader field must exist in the writer (by name or alias) with a readable type, or have
  a default; fields only the writer has are skipped;
- every writer enum symbol must be a reader symbol unless the reader enum has a default;
- fixed sizes are equal; arrays and maps check their items and values;
- primitives match or promote (int -> long/float/double, long -> float/double, float -> double,
  string <-> bytes); logical types resolve by their underlying type, as Avro does;
- every branch of a writer union must be readable; a reader union reads a value when any of its
  branches does.

Not checked: default values beyond what fastavro's parser checks (primitive defaults, a union's
against any branch), schema references (the registry refuses them), FORWARD or FULL levels.
The work per check is bounded (:data:`MAX_STEPS`), so a hostile schema costs little.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, UnknownType

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_COMPLEX_KINDS = frozenset({"record", "error", "enum", "fixed", "array", "map"})
MAX_STEPS = 10_000  # type comparisons per check; our own schemas need well under 100
_MALFORMED = (KeyError, TypeError, AttributeError)  # a part fastavro did not check
_PARSE_ERRORS = (SchemaParseException, UnknownType, ValueError)


class InvalidSchema(ValueError):
    """Not an Avro schema (fastavro refuses it)."""


class _TooComplex(Exception):
    pass


@dataclass(frozen=True)
class Parsed:
    """A schema as given (decoded JSON), parsed, and the named types it defines."""

    raw: Any
    schema: Any
    names: dict[str, Any]


def parse(raw: Any) -> Parsed:
    """Parse a schema (decoded JSON); InvalidSchema when fastavro refuses it or it is malformed."""
    names: dict[str, Any] = {}
    try:
        if "__fastavro" in repr(raw):  # fastavro trusts its own markers and skips its checks
            raise InvalidSchema("names starting with __fastavro are reserved")
        parsed = Parsed(raw, fastavro.parse_schema(raw, named_schemas=names), names)
        _run(parsed, parsed)  # walks every node: a part fastavro let through raises here
    except RecursionError:
        raise InvalidSchema("schema nested too deeply") from None
    except _MALFORMED as exc:
        raise InvalidSchema(f"malformed schema: {exc!r}"[:300]) from exc
    except _PARSE_ERRORS as exc:
        raise InvalidSchema(str(exc)[:300]) from exc
    return parsed


def problems(reader: Parsed, writer: Parsed) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer``; empty when it can."""
    try:
        return _run(reader, writer)
    except _MALFORMED as exc:  # a part only this comparison reached (parse walked the rest)
        return [f"malformed schema: {exc!r}"[:300]]


def _run(reader: Parsed, writer: Parsed) -> list[str]:
    check = _Check(reader, writer)
    try:
        check.read(reader.schema, writer.schema, _short(_name(reader.schema)))
    except _TooComplex:
        return [f"too complex to check (more than {MAX_STEPS} comparisons)"]
    return check.found


def _name(schema: Any) -> str:
    return str(schema.get("name", "")) if isinstance(schema, dict) else ""


def _kind(node: Any) -> str:
    """``int``…``string``, ``union``, ``record``, ``enum``, ``fixed``, ``array`` or ``map``."""
    if isinstance(node, list):
        return "union"
    if isinstance(node, str):
        return node
    kind = str(node["type"])
    return "record" if kind == "error" else kind


def _short(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]


def _same_name(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    if _short(reader["name"]) == _short(writer["name"]):
        return True
    namespace = reader["name"].rpartition(".")[0]
    aliases = {
        a if "." in a or not namespace else f"{namespace}.{a}" for a in reader.get("aliases", [])
    }
    return writer["name"] in aliases


@dataclass
class _Check:
    reader: Parsed
    writer: Parsed
    found: list[str] = field(default_factory=list)
    assumed: set[tuple[str, str]] = field(default_factory=set)  # records being compared
    steps: int = 0

    def read(self, reader: Any, writer: Any, path: str) -> bool:
        """Record the problems of reading ``writer`` as ``reader`` at ``path``; True if none."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _TooComplex
        r, w = _resolve(self.reader, reader), _resolve(self.writer, writer)
        rk, wk = _kind(r), _kind(w)
        if wk == "union":
            return all([self.read(r, branch, f"{path}[{i}]") for i, branch in enumerate(w)])
        if rk == "union":
            return self._any_branch(r, w, path)
        if rk in PRIMITIVES or wk in PRIMITIVES:
            return self._primitive(rk, wk, path)
        if rk != wk:
            return self._problem(f"{path}: a {wk} cannot be read as a {rk}")
        if rk in ("record", "enum", "fixed") and not _same_name(r, w):
            return self._problem(f"{path}: {rk} {w['name']} cannot be read as {r['name']}")
        return self._complex(rk, r, w, path)

    def _complex(self, kind: str, r: dict[str, Any], w: dict[str, Any], path: str) -> bool:
        match kind:
            case "record":
                return self._record(r, w, path)
            case "enum":
                return self._enum(r, w, path)
            case "fixed":
                return self._fixed(r, w, path)
            case "array":
                return self.read(r["items"], w["items"], f"{path}[]")
            case "map":
                return self.read(r["values"], w["values"], f"{path}{{}}")
        return self._problem(f"{path}: unknown type {kind}")

    def _problem(self, text: str) -> bool:
        self.found.append(text)
        return False

    def _primitive(self, rk: str, wk: str, path: str) -> bool:
        if rk == wk or rk in PROMOTIONS.get(wk, ()):
            return True
        return self._problem(f"{path}: a {wk} cannot be read as a {rk}")

    def _any_branch(self, union: list[Any], writer: Any, path: str) -> bool:
        kept, readable = self.found, False
        for branch in union:
            self.found = []
            readable = self.read(branch, writer, path)
            if readable:
                break
        self.found = kept
        if readable:
            return True
        return self._problem(f"{path}: no branch of the reader's union reads a {_kind(writer)}")

    def _record(self, r: dict[str, Any], w: dict[str, Any], path: str) -> bool:
        pair = (r["name"], w["name"])
        if pair in self.assumed:  # a recursive type: readable unless shown otherwise
            return True
        self.assumed.add(pair)
        written = {f["name"]: f for f in w["fields"]}
        ok = True
        for f in r["fields"]:
            source = next(
                (written[n] for n in [f["name"], *f.get("aliases", [])] if n in written), None
            )
            at = f"{path}.{f['name']}"
            if source is not None:
                ok = self.read(f["type"], source["type"], at) and ok
            elif "default" not in f:
                ok = self._problem(f"{at}: not written and has no default")
        self.assumed.discard(pair)
        return ok

    def _enum(self, r: dict[str, Any], w: dict[str, Any], path: str) -> bool:
        missing = [s for s in w["symbols"] if s not in r["symbols"]]
        if missing and "default" not in r:
            return self._problem(f"{path}: the reader's enum lacks {missing} and has no default")
        return True

    def _fixed(self, r: dict[str, Any], w: dict[str, Any], path: str) -> bool:
        if r["size"] != w["size"]:
            return self._problem(f"{path}: fixed size {w['size']} cannot be read as {r['size']}")
        return True


def _resolve(side: Parsed, node: Any) -> Any:
    """Follow named references and ``{"type": …}`` wrappers to a primitive, union or type."""
    while True:
        if isinstance(node, str) and node not in PRIMITIVES:
            node = side.names[node]
        elif isinstance(node, dict) and node["type"] in PRIMITIVES:
            return node["type"]  # a logical type resolves by its underlying type
        elif isinstance(node, dict) and node["type"] not in _COMPLEX_KINDS:
            node = node["type"]  # {"type": <a union, a type or a name>}
        else:
            return node
