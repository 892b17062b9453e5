"""``intellidox rescan --scanner NAME [--since T] [--sha256 H] [--wait]``: rescan on demand.

Opens a manual rescan job (Postgres ``rescan_jobs``), the same kind a change of signatures
opens by itself: a worker takes it and sends ``scan.rescans`` requests for what NAME judged
since T (default: the rescan window), one per content, at the bounded rate, whatever
signatures the verdicts were made with; only verdicts that change become new facts.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ops.settings import Settings, get_settings
from streams.rescan import jobs
from streams.rescan.plan import RescanJob

_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SCANNER = re.compile(r"[A-Za-z0-9_-]{1,128}")
FINISHED = ("done", "superseded")


def parse_since(text: str | None, settings: Settings, now: datetime) -> datetime:
    """``None`` (the rescan window), a duration ago (``90m``, ``12h``, ``3d``) or an ISO time
    (UTC when it names no zone)."""
    if text is None:
        return now - timedelta(days=settings.rescan_window_days)
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now - timedelta(**{_UNITS[ago[2]]: float(ago[1])})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: give an ISO time or a duration like 12h, 3d") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def open_job(
    settings: Settings, scanner: str, since: datetime, sha256: str | None
) -> uuid.UUID:
    async with await psycopg.AsyncConnection.connect(settings.postgres.dsn) as conn:
        return await jobs.create_manual(conn, settings.topic_prefix, scanner, since, sha256)


async def job_state(settings: Settings, job_id: uuid.UUID) -> RescanJob | None:
    async with await psycopg.AsyncConnection.connect(settings.postgres.dsn) as conn:
        return await jobs.get(conn, job_id)


def add_rescan_verb(verbs: Any) -> None:
    verb = verbs.add_parser("rescan", help="scan again what a scanner judged (a manual job)")
    verb.add_argument("--scanner", required=True, metavar="NAME", help="scanner name")
    verb.add_argument(
        "--since", default=None, metavar="T", help="ISO time or 12h, 3d (default: the window)"
    )
    verb.add_argument("--sha256", default=None, metavar="H", help="only documents with these bytes")
    verb.add_argument("--wait", action="store_true", help="follow the job until it is done")
    verb.set_defaults(handler=_cmd_rescan)


def _cmd_rescan(args: Any) -> int:
    settings = get_settings()
    if not _SCANNER.fullmatch(args.scanner):
        raise SystemExit(f"not a scanner name: {args.scanner!r}")
    sha256 = args.sha256.lower() if args.sha256 else None
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise SystemExit(f"--sha256 {args.sha256!r}: give 64 hex digits")
    try:
        since = parse_since(args.since, settings, datetime.now(UTC))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    job_id = asyncio.run(open_job(settings, args.scanner, since, sha256))
    print(f"rescan job {job_id}: {args.scanner}, verdicts since {since.isoformat()}", end="")
    print(f", sha256 {sha256}" if sha256 else "")
    print(f"workers send at most {settings.rescan_rate_per_s:g} requests/s; changed verdicts")
    print("appear in scan-results (rescan: true) and intellidox_rescan_verdict_changes_total")
    if not args.wait:
        return 0
    while True:
        job = asyncio.run(job_state(settings, job_id))
        if job is None:
            raise SystemExit(f"rescan job {job_id} disappeared")
        print(f"{job.state}: {job.selected} selected, {job.requested} requested", flush=True)
        if job.state in FINISHED:
            return 0
        time.sleep(2)
