"""IntelliDox's own processes, supervised like the backing services by ``intellidox up``."""

from __future__ import annotations

import sys
import urllib.request

from ops.services.base import Launch, Service
from ops.settings import PREFIX, Settings

DEV_RUNTIME_ENV = {PREFIX + "DEV_MODE": "1"}


def http_ready(url: str) -> bool:
    """True when ``url`` (a /readyz) answers 2xx within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(200 <= response.status < 300)
    except OSError:
        return False


class OwnProcess(Service):
    """An ``intellidox <verb>`` process: healthy when its /readyz answers on ``port``."""

    def __init__(
        self, settings: Settings, name: str, port: int, verb: list[str], start_timeout_s: float
    ) -> None:
        super().__init__(settings)
        self.name, self.port, self.verb = name, port, verb
        self.start_timeout_s = start_timeout_s

    def ports(self) -> list[int]:
        return [self.port]

    def launch(self) -> Launch:
        # The local runtime is the one place where dev mode (and the repository's secrets) is on.
        return Launch([sys.executable, "-m", "ops.cli", *self.verb], env=DEV_RUNTIME_ENV)

    def healthy(self) -> bool:
        return http_ready(f"http://{self.settings.bind.host}:{self.port}/readyz")


def own_processes(settings: Settings) -> list[OwnProcess]:
    """Worker, gateway, storage events and the scanner fleet (``INTELLIDOX_SCANNER_FLEET``),
    in start order."""
    fleet = [s.strip() for s in settings.scanner_fleet.split(",") if s.strip()]
    return [
        OwnProcess(settings, "worker", settings.bind.worker_port, ["worker"], 120.0),
        OwnProcess(settings, "gateway", settings.bind.gateway_port, ["gateway"], 90.0),
        OwnProcess(
            settings, "storage-events", settings.bind.storage_events_port, ["storage-events"], 60.0
        ),
        OwnProcess(
            settings, "scanners", settings.bind.scanner_port_base, ["scanner", "run", *fleet], 60.0
        ),
    ]
