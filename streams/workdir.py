"""Where the worker keeps the objects its extraction reads: in memory when there is room.

Extraction writes each object to a local file that the sandboxed script reads (the sandbox
gets it by a hard link, so the file and the sandboxes' homes share one directory).  For a big
file that write is the slowest step on a disk: 1 GiB took 1.9 s under /tmp on the dev box and
0.5 s on /dev/shm, while the GET and the hash it overlaps take 1.1 s.  So the worker puts its
temporary files on /dev/shm when that holds every extraction at once at the largest size an
upload may have, and on the system's temporary directory otherwise; ``extraction_work_dir``
chooses for it.

Each extraction's directory is named after the worker's pid (``intellidox-extract-<pid>-``):
a worker killed mid-extraction leaves its directory behind, and on /dev/shm that is memory
held until a reboot (a 1 GiB upload's, each time).  A worker starting removes the
directories of pids no longer alive (:func:`remove_dead`), never another live worker's.  A
directory is removed off the critical path once its extraction is over (:func:`remove_soon`):
freeing a 1 GiB file took 0.13 s, before the metadata could go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SHM = Path("/dev/shm")
AT_ONCE = 4 + 2  # extraction's and re-extraction's agent concurrency
SPARE = 256 << 20  # what /dev/shm keeps free for everyone else
EXTRACT_PREFIX = "intellidox-extract-"
_removing: set[asyncio.Future[None]] = set()  # held until done (the loop keeps weak refs)


def choose(configured: str, max_file_size: int, shm: Path = SHM) -> Path:
    """The directory for the worker's temporary files."""
    if configured:
        return Path(configured)
    try:
        room = shutil.disk_usage(shm).free if os.access(shm, os.W_OK) else 0
    except OSError:
        room = 0
    if room >= AT_ONCE * max_file_size + SPARE:
        return shm
    return Path(tempfile.gettempdir())


def use(directory: Path) -> None:
    """Every temporary file and directory of this process goes there from now on."""
    tempfile.tempdir = str(directory)


def job_dir(prefix: str = EXTRACT_PREFIX) -> Path:
    """A new directory for one job, named after this process (see :func:`remove_dead`)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


@contextlib.contextmanager
def extraction_dir() -> Iterator[Path]:
    """A job directory for one extraction, removed (:func:`remove_soon`) when the block ends."""
    directory = job_dir()
    try:
        yield directory
    finally:
        remove_soon(directory)  # the metadata need not wait for the pages to be freed


def remove_soon(directory: Path) -> None:
    """Remove ``directory`` and what it holds on a thread, without waiting for it."""
    remove = functools.partial(shutil.rmtree, directory, ignore_errors=True)
    removing = asyncio.get_running_loop().run_in_executor(None, remove)
    _removing.add(removing)
    removing.add_done_callback(_removing.discard)


def remove_dead(prefix: str = EXTRACT_PREFIX) -> list[Path]:
    """Remove the job directories (``<prefix><pid>-...``) of processes no longer alive; the
    ones removed."""
    removed = []
    for directory in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        pid = directory.name.removeprefix(prefix).split("-")[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True
