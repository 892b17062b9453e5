"""ClamAV throughput: our engine (FILDES, by path, INSTREAM) against ``clamdscan`` on one file.

Run with clamd up:  .venv/bin/python -m ops.bench.clamav_throughput [--mb 100 --runs 5]

The file is random bytes (nothing to decompress, no signature hit: the engine's plain scan
rate).  ``clamdscan`` (Debian package ``clamdscan``; skipped when not installed) gets the same
file by path (clamd reads it itself), and with ``--stream`` (the same INSTREAM protocol we
use).  Medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ops.bench.common import machine
from ops.settings import get_settings
from scanners.base import ScanJob
from scanners.clamav import ClamAV


def _timed(run: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _clamdscan(path: Path, config: Path, stream: bool) -> None:
    argv = ["clamdscan", f"--config-file={config}", "--no-summary"]
    subprocess.run(
        [*argv, *(["--stream"] if stream else []), str(path)], check=True, capture_output=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = get_settings()
    config = settings.var_dir / "clamav" / "clamd.conf"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.bin"
        path.write_bytes(os.urandom(args.mb << 20))
        os.chmod(tmp, 0o755)  # clamd runs as its own user and opens the file by path
        os.chmod(path, 0o644)
        job = ScanJob("bench", path.name, args.mb << 20, "binary", None, "")
        print(f"machine: {machine()}; {args.mb} MB random file, median of {args.runs}")
        rows = {
            "intellidox clamav, FILDES (mode auto on one host)": ClamAV({"mode": "fildes"}),
            "intellidox clamav, by path (mode path)": ClamAV({"mode": "path"}),
            "intellidox clamav, INSTREAM (mode stream)": ClamAV({"mode": "stream"}),
        }
        times = {
            name: _timed(lambda e=engine: e.scan(path, job), args.runs)
            for name, engine in rows.items()
        }
        if shutil.which("clamdscan"):
            times["clamdscan by path"] = _timed(lambda: _clamdscan(path, config, False), args.runs)
            times["clamdscan --stream"] = _timed(lambda: _clamdscan(path, config, True), args.runs)
    for name, seconds in times.items():
        print(f"{name}: {seconds:.2f}s, {args.mb / seconds:.0f} MB/s")


if __name__ == "__main__":
    main()
