"""A read-only Confluent Schema Registry under ``/registry``, so standard clients decode our topics.

Our records carry the Confluent wire format with the codec's ids (:data:`schemas.codec.SCHEMA_IDS`);
this serves those ids and the TopicNameStrategy subjects of :mod:`schemas.subjects` in the
registry's REST shapes (content type ``application/vnd.schemaregistry.v1+json``, errors as
``{"error_code": 40401, "message": …}``).  A subject's versions are its family's ids, oldest
first, numbered from 1; ids never change.  Nothing is ever registered here: a new schema
version is a new ``.avsc`` file and id in the repository, so writes answer 42205 (read-only).

The registry is public, like the schemas in the repository it serves: it tells the shape of
the records, never their content, reads no store (no database, no object store, only the
``.avsc`` files packaged with the gateway), and grants nothing: reading the records themselves
takes Kafka credentials with ACLs.  So analysts' tools point at ``<gateway>/registry`` with no
key; a client that sends ``basic.auth.user.info`` anyway is answered the same.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web

from gateway import avro_compat
from gateway.state import APP
from schemas import codec, subjects

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
COMPATIBILITY = "BACKWARD"
MAX_VERSION = 2**31 - 1
registry_routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.Response]]


class RegistryError(Exception):
    """An answer in the registry's error shape: HTTP status, Confluent error code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Version:
    subject: str
    version: int
    id: int
    schema: str  # the .avsc as compact JSON, as the registry stores it

    def body(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "version": self.version,
            "id": self.id,
            "schema": self.schema,
        }


@dataclass(frozen=True)
class Catalog:
    """Every subject with its versions (oldest first), for one topic prefix."""

    subjects: dict[str, tuple[Version, ...]]

    def versions(self, subject: str) -> tuple[Version, ...]:
        if subject not in self.subjects:
            raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
        return self.subjects[subject]

    def with_id(self, schema_id: int) -> list[Version]:
        return [v for vs in self.subjects.values() for v in vs if v.id == schema_id]


@functools.cache
def schema_text(schema_id: int) -> str:
    raw = resources.files("schemas").joinpath(f"{codec.SCHEMA_IDS[schema_id]}.avsc").read_text()
    return json.dumps(json.loads(raw), separators=(",", ":"))


@functools.cache
def catalog(prefix: str) -> Catalog:
    listed: dict[str, tuple[Version, ...]] = {}
    for subject, family in subjects.subject_families(prefix).items():
        ids = codec.versions(family)
        listed[subject] = tuple(
            Version(subject, n, sid, schema_text(sid)) for n, sid in enumerate(ids, 1)
        )
    return Catalog(listed)


@functools.cache
def _parsed(schema_id: int) -> avro_compat.Parsed:
    return avro_compat.parse(json.loads(schema_text(schema_id)))


def reply(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, content_type=CONTENT_TYPE)


def confluent(handler: Handler) -> Handler:
    """Answer a RegistryError in the registry's error shape."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except RegistryError as exc:
            return reply({"error_code": exc.code, "message": exc.message}, exc.status)

    return wrapped


def _catalog(request: web.Request) -> Catalog:
    return catalog(request.app[APP].settings.topic_prefix)


def _digits(text: str) -> bool:
    """A non-negative int below 2^31 could be written so (no sign, no spaces, ASCII, short)."""
    return text.isascii() and text.isdigit() and len(text) <= 10


def _pick(versions: tuple[Version, ...], text: str) -> Version:
    """``latest``/``-1`` or 1..2^31-1, as the registry reads a version id."""
    if text in ("latest", "-1"):
        return versions[-1]
    number = int(text) if _digits(text) else 0
    if not 1 <= number <= MAX_VERSION:
        raise RegistryError(
            422,
            42202,
            f"The specified version '{text[:40]}' is not a valid version id. "
            'Allowed values are between [1, 2^31-1] and the string "latest"',
        )
    if number > len(versions):
        raise RegistryError(404, 40402, f"Version {number} not found.")
    return versions[number - 1]


def _version(request: web.Request) -> Version:
    versions = _catalog(request).versions(request.match_info["subject"])
    return _pick(versions, request.match_info["version"])


def _by_id(request: web.Request) -> list[Version]:
    text = request.match_info["id"]
    found = _catalog(request).with_id(int(text)) if _digits(text) else []
    if not found:
        raise RegistryError(404, 40403, f"Schema {text[:40]} not found")
    return found


async def _posted_schema(request: web.Request) -> avro_compat.Parsed:
    """The Avro schema of a ``{"schema": "<json>", "schemaType": "AVRO"}`` body."""
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError) as exc:
        raise RegistryError(400, 400, f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise RegistryError(422, 42201, 'Invalid schema: the body must be {"schema": "<json>"}')
    if body.get("schemaType", "AVRO") != "AVRO" or body.get("references"):
        raise RegistryError(422, 42201, "Invalid schema: only AVRO without references is served")
    try:
        return avro_compat.parse(json.loads(body["schema"]))
    except (ValueError, RecursionError) as exc:  # InvalidSchema is a ValueError
        raise RegistryError(422, 42201, f"Invalid schema: {str(exc)[:300]}") from None


@registry_routes.get("/registry/subjects")
@confluent
async def list_subjects(request: web.Request) -> web.Response:
    start = request.query.get("subjectPrefix", "")
    return reply([s for s in _catalog(request).subjects if s.startswith(start)])


@registry_routes.get("/registry/subjects/{subject}/versions")
@confluent
async def list_versions(request: web.Request) -> web.Response:
    versions = _catalog(request).versions(request.match_info["subject"])
    return reply([v.version for v in versions])


@registry_routes.get("/registry/subjects/{subject}/versions/{version}")
@confluent
async def get_version(request: web.Request) -> web.Response:
    return reply(_version(request).body())


@registry_routes.get("/registry/subjects/{subject}/versions/{version}/schema")
@confluent
async def get_version_schema(request: web.Request) -> web.Response:
    return reply(json.loads(_version(request).schema))


@registry_routes.post("/registry/subjects/{subject}")
@confluent
async def lookup(request: web.Request) -> web.Response:
    """Which version of the subject is this schema (the same JSON, whitespace aside)?"""
    versions = _catalog(request).versions(request.match_info["subject"])
    posted = await _posted_schema(request)
    for version in versions:
        if _parsed(version.id).raw == posted.raw:
            return reply(version.body())
    raise RegistryError(404, 40403, "Schema not found")


@registry_routes.post("/registry/subjects/{subject}/versions")
@confluent
async def register(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    raise RegistryError(422, 42205, f"Subject {subject[:200]} is in read-only mode")


@registry_routes.get("/registry/schemas/ids/{id}")
@confluent
async def get_schema(request: web.Request) -> web.Response:
    return reply({"schema": _by_id(request)[0].schema})


@registry_routes.get("/registry/schemas/ids/{id}/schema")
@confluent
async def get_raw_schema(request: web.Request) -> web.Response:
    return reply(json.loads(_by_id(request)[0].schema))


@registry_routes.get("/registry/schemas/ids/{id}/versions")
@confluent
async def id_versions(request: web.Request) -> web.Response:
    return reply([{"subject": v.subject, "version": v.version} for v in _by_id(request)])


@registry_routes.get("/registry/schemas/ids/{id}/subjects")
@confluent
async def id_subjects(request: web.Request) -> web.Response:
    return reply([v.subject for v in _by_id(request)])


@registry_routes.get("/registry/schemas/types")
async def schema_types(_request: web.Request) -> web.Response:
    return reply(["AVRO"])


@registry_routes.post("/registry/compatibility/subjects/{subject}/versions/{version}")
@confluent
async def compatibility(request: web.Request) -> web.Response:
    """BACKWARD: can the posted schema read data written with that version?"""
    version = _version(request)
    found = avro_compat.problems(await _posted_schema(request), _parsed(version.id))
    body: dict[str, Any] = {"is_compatible": not found}
    if request.query.get("verbose", "").lower() == "true":
        body["messages"] = found
    return reply(body)


@registry_routes.get("/registry/config")
async def config(_request: web.Request) -> web.Response:
    return reply({"compatibilityLevel": COMPATIBILITY})


@registry_routes.get("/registry/config/{subject}")
@confluent
async def subject_config(request: web.Request) -> web.Response:
    """Every subject follows the global level (the registry's ``defaultToGlobal`` answer)."""
    _catalog(request).versions(request.match_info["subject"])
    return reply({"compatibilityLevel": COMPATIBILITY})


@registry_routes.get("/registry/mode")
async def mode(_request: web.Request) -> web.Response:
    return reply({"mode": "READONLY"})
