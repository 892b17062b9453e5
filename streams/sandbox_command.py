"""The command that starts the runner (:mod:`streams.sandbox`) contained, with bubblewrap.

The sandbox sees a read-only view of ``/usr`` (and the ``/lib*``, ``/bin`` links), the Python
installation, the venv's site-packages, the runner file and the built-in extractors
(``streams.extractors``, which published scripts may import), the worker's inbox (where the one
input file appears for one job) and a small scratch tmpfs; fresh ``/proc`` and ``/dev``; no
repository, no ``/var/lib/intellidox``, no sockets; new pid, net, ipc, uts and cgroup
namespaces.  The script runs as uid 65534 with no capabilities and ``no_new_privs``, under
a seccomp filter against keyrings and new user namespaces (:mod:`streams.sandbox_seccomp`).

Run as root, bubblewrap builds the view as root (Python may live under ``/root``) and
``setpriv`` then drops to 65534 with an empty bounding set: a user namespace is deliberately
NOT used there, because bubblewrap would map the sandbox uid back to host uid 0.  Run as
anyone else, bubblewrap's own user namespace does the same job (``--unshare-all``, nested
user namespaces disabled).  Either way the network namespace has no way back: ``setns``
needs CAP_SYS_ADMIN over the host's namespace, which nothing inside has.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ops.settings import sandbox_environment
from streams import sandbox_seccomp

SANDBOX_UID = 65534
RUNNER = "/sandbox/runner.py"
LIB = "/sandbox/lib"  # holds streams/extractors only: scripts may build on the built-in one
INBOX = "/input"
SCRATCH = "/scratch"  # not /tmp: a checkout (venv, Python) may live under the host's /tmp
PROBE_TIMEOUT_S = 20.0
# Imported once per warm sandbox: what the built-in script needs (streams/extractors/default.py).
PRELOAD = ("zipfile", "tarfile", "xml.etree.ElementTree", "pypdf", "PIL.Image", "olefile")
_NAMESPACES = ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts")
_ROOT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")  # for setpriv only, then dropped
_SETPRIV = (
    f"--reuid={SANDBOX_UID}",
    f"--regid={SANDBOX_UID}",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--",
)


class SandboxUnavailable(RuntimeError):
    """Bubblewrap cannot run here; the message says why and what to do."""


@dataclass(frozen=True)
class Runtime:
    """The Python the sandbox runs: interpreter, its installation, the venv's packages."""

    python: Path
    prefix: Path
    site_dirs: tuple[Path, ...]
    runner: Path  # streams/sandbox.py; its directory's extractors/ is mounted too

    @classmethod
    def current(cls) -> Runtime:
        python = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
        paths = sysconfig.get_paths()
        sites = dict.fromkeys(Path(paths[k]) for k in ("purelib", "platlib"))
        return cls(
            python=python,
            prefix=Path(sys.base_prefix),
            site_dirs=tuple(p for p in sites if p.is_dir()),
            runner=Path(__file__).with_name("sandbox.py"),
        )


def runner_config(runtime: Runtime, scratch: str, contained: bool, preload: bool) -> str:
    return json.dumps(
        {
            "paths": [LIB if contained else str(runtime.runner.parents[1])],
            "site_dirs": [str(p) for p in runtime.site_dirs],
            "preload": list(PRELOAD) if preload else [],
            "scratch": scratch,
            "contained": contained,
        }
    )


def bwrap_argv(
    runtime: Runtime, inbox: Path, scratch_mb: int, preload: bool, seccomp_fd: int | None
) -> list[str]:
    """``bwrap … runner.py CONFIG`` for one warm sandbox (see the module docstring).

    ``seccomp_fd`` holds :func:`streams.sandbox_seccomp.program` (None where unsupported)."""
    config = runner_config(runtime, SCRATCH, contained=True, preload=preload)
    python = [str(runtime.python), "-I", "-S", "-B", RUNNER, config]
    return [
        *_bwrap_head(seccomp_fd),
        *_view(runtime),
        *("--ro-bind", str(inbox), INBOX),
        *("--perms", "1777", "--size", str(scratch_mb << 20), "--tmpfs", SCRATCH),
        *("--remount-ro", "/", "--chdir", SCRATCH, "--clearenv"),
        *_environment(),
        *(([_setpriv(), *_SETPRIV]) if os.geteuid() == 0 else []),
        *python,
    ]


def weak_argv(runtime: Runtime, scratch: Path) -> list[str]:
    """The development-only mode: the same runner with rlimits only, NOT contained."""
    config = runner_config(runtime, str(scratch), contained=False, preload=False)
    return [str(runtime.python), "-I", "-S", "-B", str(runtime.runner), config]


def _bwrap_head(seccomp_fd: int | None) -> list[str]:
    common = ["--die-with-parent", "--new-session", "--as-pid-1"]
    if seccomp_fd is not None:
        common += ["--seccomp", str(seccomp_fd)]
    if os.geteuid() == 0:
        caps = [a for cap in _ROOT_CAPS for a in ("--cap-add", cap)]
        namespaces = [*_NAMESPACES, "--unshare-cgroup-try"]
        return [_bwrap(), *namespaces, "--cap-drop", "ALL", *caps, *common]
    user = ["--unshare-all", "--unshare-user", "--disable-userns"]
    ids = ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    return [_bwrap(), *user, *ids, "--cap-drop", "ALL", *common]


def _view(runtime: Runtime) -> list[str]:
    """Read-only mounts, with 0755 parents (bubblewrap would make them 0700)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    made: set[Path] = {Path("/")}
    for source in (runtime.prefix, *runtime.site_dirs):
        if source.is_relative_to("/usr"):
            continue
        for parent in reversed(source.parents):
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(source), str(source)]
    package = runtime.runner.parent
    args += ["--perms", "0755", "--dir", "/sandbox", "--ro-bind", str(runtime.runner), RUNNER]
    args += ["--perms", "0755", "--dir", LIB, "--perms", "0755", "--dir", f"{LIB}/streams"]
    args += ["--ro-bind", str(package / "__init__.py"), f"{LIB}/streams/__init__.py"]
    args += ["--ro-bind", str(package / "extractors"), f"{LIB}/streams/extractors"]
    return [*args, "--proc", "/proc", "--dev", "/dev"]


def _environment() -> list[str]:
    env = sandbox_environment() | {"HOME": SCRATCH, "TMPDIR": SCRATCH, "TEMP": SCRATCH}
    env.pop("TMP", None)
    return [a for key, value in sorted(env.items()) for a in ("--setenv", key, value)]


def _bwrap() -> str:
    return shutil.which("bwrap") or "bwrap"


def _setpriv() -> str:
    return os.path.realpath(shutil.which("setpriv") or "/usr/bin/setpriv")


def check_available(runtime: Runtime) -> None:
    """Raise :class:`SandboxUnavailable` unless a bubblewrap sandbox starts here."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"extractor sandboxes need Linux (this is {sys.platform})")
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable("bubblewrap is not installed: apt-get install bubblewrap")
    if os.geteuid() == 0 and not _setpriv().startswith("/usr/"):
        raise SandboxUnavailable("setpriv (util-linux) is missing from /usr/bin")
    _probe(runtime)


def _probe(runtime: Runtime) -> None:
    """Start a real (empty) sandbox once, so that a missing kernel feature shows up now."""
    seccomp_fd = sandbox_seccomp.program_fd() if sandbox_seccomp.supported() else None
    argv = [*_bwrap_head(seccomp_fd), *_view(runtime), "--remount-ro", "/"]
    argv += [*(([_setpriv(), *_SETPRIV]) if os.geteuid() == 0 else []), str(runtime.python)]
    argv += ["-I", "-S", "-c", "pass"]
    fds = () if seccomp_fd is None else (seccomp_fd,)
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False, pass_fds=fds
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bubblewrap did not run: {exc}") from exc
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SandboxUnavailable(f"bubblewrap cannot start a sandbox here: {tail[0]}")
