"""Every scanner engine, listed once.  ``tests/scanners/test_registry.py`` checks each has tests."""

from __future__ import annotations

from scanners.archive_inspector import ArchiveInspector
from scanners.base import Scanner
from scanners.clamav import ClamAV
from scanners.hash_reputation import HashReputation
from scanners.office_macros import OfficeMacros
from scanners.pdf_active import PdfActiveContent
from scanners.simulated import Simulated
from scanners.type_mismatch import TypeMismatch
from scanners.yara import Yara

ENGINES: dict[str, type[Scanner]] = {
    ClamAV.name: ClamAV,
    Yara.name: Yara,
    OfficeMacros.name: OfficeMacros,
    PdfActiveContent.name: PdfActiveContent,
    HashReputation.name: HashReputation,
    TypeMismatch.name: TypeMismatch,
    ArchiveInspector.name: ArchiveInspector,
    Simulated.name: Simulated,
}


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """``name[:engine][?key=value&...]`` → (instance name, engine, options).

    ``clamav`` runs the clamav engine as group ``clamav``; ``sim07:simulated?latency_ms=50``
    runs a simulated vendor as its own group ``sim07``.
    """
    head, _, query = spec.partition("?")
    name, _, engine = head.partition(":")
    engine = engine or name
    if engine not in ENGINES:
        raise ValueError(f"unknown scanner engine {engine!r}; known: {', '.join(sorted(ENGINES))}")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"scanner name {name!r} must be letters, digits, '-' or '_'")
    options = {}
    for pair in filter(None, query.split("&")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"option {pair!r} in {spec!r} must be key=value")
        options[key] = value
    return name, engine, options


def build(spec: str) -> tuple[str, Scanner]:
    name, engine, options = parse_spec(spec)
    return name, ENGINES[engine](options)
