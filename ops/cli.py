"""The ``intellidox`` command: one entry point, one verb per job."""

# A scanner host installs ``intellidox[scanner]``, without the libraries of the server roles and
# the operator tools (Faust, aiohttp, the database drivers, psutil).  So this module imports none
# of them: each verb imports what it needs when it runs, and the operator verbs' modules (which
# import them at the top) are imported only when their verb is asked for, or for the full help.

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ops.services import ALL_NAMES, SERVICE_NAMES, bootstrap_services, build_services
from ops.services.base import PrerequisiteMissing, Service, ServiceFailed
from ops.settings import Settings, get_settings

# verb -> "module:function" that adds it to the parser
_TOOL_VERBS = {
    "upload": "ops.upload:add_upload_verb",
    "extractor": "ops.extractor_cli:add_extractor_verb",
    "replay": "ops.replay:add_replay_verb",
    "dlq": "ops.dlq:add_dlq_verb",
    "rescan": "ops.rescan:add_rescan_verb",
    "trace": "ops.trace:add_trace_verb",
}
_OURS = ("ops", "schemas", "gateway", "streams", "scanners")
_EXTRAS_HINT = (
    "a scanner host installs 'intellidox[scanner]'; the gateway, the worker and the operator "
    "tools need 'intellidox[server]', the local runtime 'intellidox[local]'"
)


def _select(settings: Settings, names: Sequence[str]) -> list[Service]:
    services = build_services(settings)
    if not names:
        return services
    unknown = sorted(set(names) - set(ALL_NAMES))
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(ALL_NAMES)}")
    return [s for s in services if s.name in names]


def cmd_up(args: argparse.Namespace) -> int:
    from ops.services.runtime import format_table, say, start, start_all, state

    settings = get_settings()
    t0 = time.monotonic()
    selected = _select(settings, args.services)
    start_all([s for s in selected if s.name in SERVICE_NAMES])  # side by side
    for service in selected:  # our processes need the services, and start in order
        if service.name not in SERVICE_NAMES:
            start(service)
    say(f"all up in {time.monotonic() - t0:.1f}s (data in {settings.var_dir})")
    print(format_table(state(s) for s in _select(settings, args.services)))
    if not args.services or "gateway" in args.services:
        print(f"\nIntelliDox is running: open {settings.gateway_url}/")
        print(f"API key (tenant '{settings.dev_tenant}'): {settings.dev_api_key}")
        print("Try it:  .venv/bin/intellidox upload README.md")
    if not args.services or "prometheus" in args.services:
        url = f"http://{settings.bind.host}:{settings.bind.prometheus_port}"
        print(f"Prometheus (metrics, alerts): {url}/  and  {url}/alerts")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from ops.services.runtime import stop

    for service in reversed(_select(get_settings(), args.services)):
        stop(service)
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    """Create topics, schema and buckets on services started elsewhere (compose, cloud)."""
    from ops.services.runtime import say

    for service in _select(get_settings(), args.services):
        bootstrap_services([service])
        say(f"{service.name}: bootstrapped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ops.services.runtime import format_table, state

    states = [state(s) for s in _select(get_settings(), args.services)]
    print(format_table(states))
    return 0 if all(s.healthy for s in states) else 1


def cmd_gateway(_args: argparse.Namespace) -> int:
    from gateway.app import run
    from streams.script_check import check  # the admin API checks scripts as the worker does

    run(get_settings(), check_script=check)
    return 0


def cmd_worker(_args: argparse.Namespace) -> int:
    from streams.worker import main as worker_main

    worker_main(get_settings())
    return 0


def cmd_storage_events(_args: argparse.Namespace) -> int:
    from gateway.storage_listener import run

    run(get_settings())
    return 0


def cmd_scanner(args: argparse.Namespace) -> int:
    from scanners.service import serve

    if args.action == "run":
        from ops.defaults import refuse_repository_defaults
        from ops.logs import setup_logging

        settings = get_settings()
        setup_logging("scanners", settings)
        refuse_repository_defaults(settings, "scanner")
        serve(settings, args.specs)
        return 0
    from scanners.listing import print_registry

    return print_registry(get_settings())


def _process_verbs(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    verbs.add_parser("gateway", help="run the HTTP gateway").set_defaults(handler=cmd_gateway)
    verbs.add_parser("worker", help="run the Faust worker").set_defaults(handler=cmd_worker)
    verbs.add_parser(
        "storage-events", help="mark uploads 'uploaded' from the object store's events"
    ).set_defaults(handler=cmd_storage_events)
    scanner = verbs.add_parser("scanner", help="run scanners or list the registry")
    scanner.add_argument("action", choices=["run", "list"])
    scanner.add_argument(
        "specs",
        nargs="*",
        metavar="SPEC",
        help="name[:engine][?key=value&...], e.g. clamav or sim1:simulated?latency_ms=50",
    )
    scanner.set_defaults(handler=cmd_scanner)


def _tool_verbs(verbs: Any, argv: Sequence[str]) -> None:
    """The operator verbs: only the one asked for, or all of them (for help or a wrong verb),
    each listed even where its libraries are missing."""
    asked = next((a for a in argv if not a.startswith("-")), None)
    if asked in _TOOL_VERBS:
        _adder(_TOOL_VERBS[asked])(verbs)
        return
    if asked is not None and asked in verbs.choices:
        return
    for verb, spec in _TOOL_VERBS.items():
        try:
            adder = _adder(spec)
        except ModuleNotFoundError as exc:
            if not _missing_library(exc):
                raise
            verbs.add_parser(verb, help=f"(not installed here: needs {exc.name})")
            continue
        adder(verbs)


def _adder(spec: str) -> Callable[[Any], None]:
    module, function = spec.split(":")
    adder: Callable[[Any], None] = getattr(importlib.import_module(module), function)
    return adder


def _missing_library(exc: ModuleNotFoundError) -> bool:
    """A library this install lacks (an extra not installed), not a module of ours."""
    return (exc.name or "").partition(".")[0] not in _OURS


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intellidox", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    handlers: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
        "up": (cmd_up, "start the local services (idempotent) and bootstrap them"),
        "down": (cmd_down, "stop the local services"),
        "status": (cmd_status, "show service, pid, port, health and RSS"),
        "bootstrap": (cmd_bootstrap, "create topics, schema, keyspace and buckets only"),
    }
    for verb, (handler, help_text) in handlers.items():
        sub = verbs.add_parser(verb, help=help_text)
        sub.add_argument("services", nargs="*", metavar="SERVICE", help=", ".join(ALL_NAMES))
        sub.set_defaults(handler=handler)
    _process_verbs(verbs)
    _tool_verbs(verbs, argv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(argv).parse_args(argv)
        return int(args.handler(args))
    except (PrerequisiteMissing, ServiceFailed) as exc:
        print(f"intellidox: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if not _missing_library(exc):
            raise
        print(f"intellidox: error: this install lacks {exc.name} ({_EXTRAS_HINT})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
