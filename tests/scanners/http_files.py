"""A real HTTP server over a test's directory: the runner fetches only http(s) URLs."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ops.stack import free_port


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class FileServer:
    """Serves ``directory`` on a fixed local port; can start late (a storage outage)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> FileServer:
        handler = functools.partial(_Quiet, directory=str(self.directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        # A short poll: stop() waits for the serving loop to notice (0.5 s by default).
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        threading.Thread(target=serve, daemon=True).start()
        return self

    def start_after(self, delay_s: float) -> threading.Timer:
        timer = threading.Timer(delay_s, self.start)
        timer.start()
        return timer

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
