"""A small clamd client: PING, VERSION, FILDES and INSTREAM over a unix socket or TCP.

Protocol (clamd(8)): commands prefixed with ``z`` are NUL-terminated and so are the replies.
INSTREAM sends the data as chunks, each prefixed with its length as a 4-byte big-endian
integer, ended by a zero-length chunk; clamd then answers ``stream: OK``,
``stream: <signature> FOUND`` or ``<reason> ERROR``.  FILDES (unix socket only) sends one byte
carrying an open file descriptor (``SCM_RIGHTS``): clamd scans the caller's open file, so it
needs no permission on the file or its directory and no byte is copied through the socket;
it answers ``fd[N]: OK`` and so on.  One connection per command keeps the client trivially
thread-safe.
"""

from __future__ import annotations

import io
import re
import socket
import struct
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ops.settings import Settings

DEFAULT_CHUNK = 64 * 1024
_MAX_REPLY = 64 * 1024
# With ExtendedDetectionInfo clamd appends "(md5:size)" to the name; the verdict wants the name.
_EXTENDED = re.compile(r"^(?P<name>.+?)\([0-9a-f]{32,64}:\d+\)$")


class ClamdError(RuntimeError):
    """clamd answered with an error (size limit, unreadable stream) or not at all."""


class ClamdUnreachable(ClamdError):
    """clamd could not be reached or did not answer in time: worth another try."""


class ScanResult(NamedTuple):
    infected: bool
    signature: str | None
    raw: str


def parse_scan_reply(raw: str) -> ScanResult:
    """Interpret one INSTREAM reply; raises :class:`ClamdError` on ``... ERROR``."""
    text = raw.rstrip("\0").strip()
    _, sep, status = text.rpartition(": ")  # "stream: " or "<id>: stream: "
    if not sep:
        status = text
    if status == "OK":
        return ScanResult(False, None, text)
    if status.endswith(" FOUND"):
        name = status.removesuffix(" FOUND").strip()
        match = _EXTENDED.match(name)
        return ScanResult(True, match.group("name") if match else name, text)
    raise ClamdError(f"clamd: {text or 'empty reply'}")


class ClamdClient:
    """Talks to one clamd, by unix socket path or by TCP host and port."""

    def __init__(
        self,
        *,
        socket_path: Path | str | None = None,
        host: str | None = None,
        port: int | None = None,
        timeout: float = 120.0,
    ) -> None:
        if socket_path is None and (host is None or port is None):
            raise ValueError("give socket_path, or host and port")
        self.socket_path = str(socket_path) if socket_path is not None else None
        self.address = (host, port) if host is not None and port is not None else None
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings, timeout: float = 120.0) -> ClamdClient:
        """The unix socket when it exists here (cheaper), TCP otherwise."""
        if hasattr(socket, "AF_UNIX") and settings.clamd_socket.exists():
            return cls(socket_path=settings.clamd_socket, timeout=timeout)
        return cls(host=settings.clamd.host, port=settings.clamd.port, timeout=timeout)

    def ping(self) -> bool:
        return self._command(b"zPING\0") == "PONG"

    def version(self) -> str:
        return self._command(b"zVERSION\0")

    def instream(self, fileobj: BinaryIO, chunk: int = DEFAULT_CHUNK) -> ScanResult:
        """Stream ``fileobj`` to clamd and return its verdict."""
        with self._connect() as sock:
            try:
                sock.sendall(b"zINSTREAM\0")
                while data := fileobj.read(chunk):
                    sock.sendall(struct.pack("!I", len(data)) + data)
                sock.sendall(struct.pack("!I", 0))
            except (BrokenPipeError, ConnectionResetError):
                # clamd closes early past StreamMaxLength; its reason is still readable.
                pass
            return parse_scan_reply(_read_reply(sock))

    def scan_fd(self, fileobj: BinaryIO) -> ScanResult:
        """clamd scans ``fileobj``'s open descriptor (FILDES); only on a local unix socket."""
        if not self.can_pass_fds:
            raise ClamdError(f"clamd at {self._where()} cannot take a file descriptor (FILDES)")
        with self._connect() as sock:
            sock.sendall(b"zFILDES\0")
            socket.send_fds(sock, [b"\0"], [fileobj.fileno()])
            return parse_scan_reply(_read_reply(sock))

    @property
    def can_pass_fds(self) -> bool:
        """True on a unix socket where this platform can pass descriptors (not Windows)."""
        return self.socket_path is not None and hasattr(socket, "send_fds")

    def scan_path(self, path: Path) -> ScanResult:
        """Have clamd read the file itself (same host only; clamd's user must be able to)."""
        return parse_scan_reply(self._command(f"zSCAN {path}\0".encode()))

    @property
    def local(self) -> bool:
        """True when clamd shares this host (unix socket): scanning by path is possible."""
        return self.socket_path is not None

    def scan_bytes(self, data: bytes) -> ScanResult:
        return self.instream(io.BytesIO(data))

    def _command(self, command: bytes) -> str:
        with self._connect() as sock:
            sock.sendall(command)
            return _read_reply(sock).rstrip("\0").strip()

    def _connect(self) -> socket.socket:
        try:
            if self.socket_path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.socket_path)
                return sock
            assert self.address is not None
            return socket.create_connection(self.address, timeout=self.timeout)
        except OSError as exc:
            raise ClamdUnreachable(f"clamd unreachable at {self._where()}: {exc}") from exc

    def _where(self) -> str:
        if self.socket_path is not None:
            return self.socket_path
        return f"{self.address[0]}:{self.address[1]}" if self.address else "?"


def _read_reply(sock: socket.socket) -> str:
    """Read up to the terminating NUL (or until clamd closes the connection)."""
    buf = bytearray()
    try:
        while b"\0" not in buf and len(buf) < _MAX_REPLY:
            data = sock.recv(4096)
            if not data:
                break
            buf += data
    except ConnectionResetError:
        pass
    except TimeoutError as exc:
        raise ClamdUnreachable("clamd did not answer in time") from exc
    return buf.split(b"\0", 1)[0].decode("utf-8", "replace")
