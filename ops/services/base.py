"""What every locally run service is: how to install it, configure it, start it and probe it.

A service is a plain OS process started in its own session, with a pid file and a log file
under ``<var_dir>/<name>/``.  The supervisor (:mod:`ops.services.runtime`) owns pid files,
ports and stopping; a service class only knows its own program.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ops.settings import Settings


class PrerequisiteMissing(RuntimeError):
    """A tool the service needs is not installed; the message says how to get it."""


class ServiceFailed(RuntimeError):
    """A service did not come up; the message points at its log."""


@dataclass
class Launch:
    """How to start a service's process."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None  # run as this OS user (Postgres refuses root)
    cwd: Path | None = None


class Service:
    """Base class: subclasses set ``name`` and implement the hooks."""

    name: str = ""
    start_timeout_s: float = 60.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # -- paths ------------------------------------------------------------------------------
    @property
    def home(self) -> Path:
        return self.settings.var_dir / self.name

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    # -- hooks ------------------------------------------------------------------------------
    def ports(self) -> list[int]:
        """Every TCP port the service listens on; the first is the one shown in status."""
        raise NotImplementedError

    def check_prerequisites(self) -> None:
        """Raise :class:`PrerequisiteMissing` naming what to install."""

    def install(self) -> None:
        """Fetch binaries into the cache (idempotent, no network when cached)."""

    def configure(self) -> None:
        """Write config and initialise the data directory (idempotent)."""

    def launch(self) -> Launch:
        raise NotImplementedError

    def healthy(self) -> bool:
        """True when the service answers its own protocol, not merely when the port is open."""
        return port_open(self.settings.bind.host, self.ports()[0])

    def bootstrap(self) -> None:
        """Create schema, topics, buckets (idempotent; runs after the service is healthy)."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_command(command: str, how: str) -> str:
    path = shutil.which(command)
    if path is None:
        raise PrerequisiteMissing(f"'{command}' is not installed: {how}")
    return path
