"""Where the worker keeps the objects its extraction reads: in memory when there is room.

Extraction writes each object to a local file that the sandboxed script reads (the sandbox
gets it by a hard link, so the file and the sandboxes' homes share one directory).  For a big
file that write is the slowest step on a disk: 1 GiB took 1.9 s under /tmp on the dev box and
0.5 s on /dev/shm, while the GET and the hash it overlaps take 1.1 s.  So the worker puts its
temporary files on /dev/shm when that holds every extraction at once at the largest size an
upload may have, and on the system's temporary directory otherwise; ``extraction_work_dir``
chooses for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

SHM = Path("/dev/shm")
AT_ONCE = 4 + 2  # extraction's and re-extraction's agent concurrency
SPARE = 256 << 20  # what /dev/shm keeps free for everyone else


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
