"""IntelliDox's own processes, supervised like the backing services by ``intellidox up``."""

from __future__ import annotations

import sys
import urllib.request

from ops.services.base import Launch, Service


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(200 <= response.status < 300)
    except OSError:
        return False


class Gateway(Service):
    name = "gateway"
    start_timeout_s = 90.0

    def ports(self) -> list[int]:
        return [self.settings.gateway_port]

    def launch(self) -> Launch:
        return Launch([sys.executable, "-m", "ops.cli", "gateway"])

    def healthy(self) -> bool:
        return _http_ok(f"http://{self.settings.host}:{self.settings.gateway_port}/readyz")


class Worker(Service):
    name = "worker"
    start_timeout_s = 120.0

    def ports(self) -> list[int]:
        return [self.settings.worker_port]

    def launch(self) -> Launch:
        return Launch([sys.executable, "-m", "ops.cli", "worker"])

    def healthy(self) -> bool:
        return _http_ok(f"http://{self.settings.host}:{self.settings.worker_port}/readyz")


class Scanners(Service):
    name = "scanners"
    start_timeout_s = 60.0

    def ports(self) -> list[int]:
        return [self.settings.scanner_port_base]

    def launch(self) -> Launch:
        specs = [s.strip() for s in self.settings.scanner_fleet.split(",") if s.strip()]
        return Launch([sys.executable, "-m", "ops.cli", "scanner", "run", *specs])

    def healthy(self) -> bool:
        return _http_ok(f"http://{self.settings.host}:{self.settings.scanner_port_base}/readyz")
