"""``intellidox extractor ...``: publish, list, show, activate, roll back and re-extract."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from ops import extractor_admin as admin
from ops.extractor_admin import parse_since
from ops.settings import get_settings


def add_extractor_verb(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = verbs.add_parser("extractor", help="manage the metadata extractor scripts")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    actions = parser.add_subparsers(dest="action", required=True)
    publish = actions.add_parser("publish", help="validate and store a script as a new version")
    publish.add_argument("file", type=Path, metavar="FILE")
    publish.add_argument("--activate", action="store_true", help="make it active right away")
    publish.add_argument("--note", default=None, help="a word on what changed")
    actions.add_parser("list", help="every version, the active one marked")
    actions.add_parser("show", help="one version and its source").add_argument("version")
    actions.add_parser("activate", help="make a version active").add_argument("version")
    actions.add_parser("rollback", help="go back to the version active before this one")
    again = actions.add_parser("reextract", help="extract stored documents again (no new scan)")
    again.add_argument("--since", required=True, type=parse_since, help="ISO time, or 7d/12h")
    again.add_argument("--version", default=None, help="script version (default: the active)")
    again.add_argument("--tenant", default=None, help="only this tenant's documents")
    parser.set_defaults(handler=cmd_extractor)


def cmd_extractor(args: argparse.Namespace) -> int:
    try:
        result: Any = asyncio.run(_operation(args))
    except admin.AdminError as exc:
        print(f"intellidox: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else _text(args.action, result))
    return 0


def _operation(args: argparse.Namespace) -> Coroutine[Any, Any, Any]:
    settings = get_settings()
    if args.action == "publish":
        from streams.script_check import check  # runs the script in the worker's sandbox

        source = args.file.read_bytes()
        return admin.publish(settings, source, check, activate=args.activate, note=args.note)
    if args.action == "list":
        return admin.list_versions(settings)
    if args.action == "show":
        return admin.show(settings, args.version)
    if args.action == "activate":
        return admin.activate(settings, args.version)
    if args.action == "rollback":
        return admin.rollback(settings)
    return admin.reextract(settings, args.since, args.version, args.tenant)


def _text(action: str, result: Any) -> str:
    if action == "list":
        return "\n".join(_line(r) for r in result)
    if action == "show":
        return f"{_line(result)}\n\n{result['source']}"
    if action == "reextract":
        return f"re-extraction requested for {result['requested']} document(s)"
    if action == "publish":
        state = "active" if result["active"] else "published"
        fresh = "" if result["created"] else " (same content as an earlier version)"
        return f"{result['version']} {state}{fresh}"
    return f"active: {result['version']} (was {result['previous_version']})"


def _line(record: dict[str, Any]) -> str:
    mark = "*" if record.get("active") else " "
    sha = (record["sha256"] or "")[:12]
    note = record.get("note") or ""
    return f"{mark} {record['version']:<20} {sha:<12} {record['published_at'][:19]}  {note}"
