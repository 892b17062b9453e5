"""A scanner process: one runner thread per scanner name, a health endpoint, clean shutdown.

Each runner's engine scans in child processes of its own (:mod:`scanners.isolation`), started
before the runners consume, so an engine that cannot start stops the process at once.  All
runners share one Kafka producer (:mod:`scanners.sender`).  ``SIGINT``/``SIGTERM`` (Ctrl-C or
Ctrl-Break on Windows) stop taking new requests; in-flight scans finish and their verdicts
are sent before the consumers leave their groups.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY

from ops.kafka import SCANNER, as_role
from ops.metrics import expose
from ops.settings import Settings
from scanners.downloads import SharedDownloads
from scanners.metrics import HostCollector
from scanners.registry import build
from scanners.runner import Runner
from scanners.sender import Sender

log = logging.getLogger(__name__)


def _handler(runners: list[Runner], metrics_token: str) -> type[BaseHTTPRequestHandler]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in ("/healthz", "/readyz"):
                body = json.dumps({"status": "ok", "scanners": [r.name for r in runners]})
                self._send(200, "application/json", body.encode())
            elif self.path == "/metrics":
                page = expose(self.headers.get("Authorization"), metrics_token)
                self._send(page.status, page.content_type, page.body)
            else:
                self._send(404, "application/json", b'{"error": "not found"}')

        def _send(self, status: int, kind: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Health


def serve(settings: Settings, specs: list[str], stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    settings = as_role(settings, SCANNER)  # a scanner host's Kafka principal
    downloads = SharedDownloads()  # engines in this process fetch each object once
    sender = Sender(settings)  # one producer for every runner of the process
    runners = [Runner(settings, *build(spec), downloads, sender) for spec in specs]
    for runner in runners:
        runner.engines.start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    collector = HostCollector(runners, lambda: downloads.downloaded)
    REGISTRY.register(collector)  # in flight and engines per scanner, read at scrape time
    server = ThreadingHTTPServer(
        (settings.bind.host, settings.bind.scanner_port_base),
        _handler(runners, settings.metrics_token),
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threads = [threading.Thread(target=r.run, args=(stop,), name=r.name) for r in runners]
    for thread in threads:
        thread.start()
    log.info("scanners running: %s", ", ".join(r.name for r in runners))
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(0.5)
    server.shutdown()
    REGISTRY.unregister(collector)
    sender.close(10)
    downloads.close()
