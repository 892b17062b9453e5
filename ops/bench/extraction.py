"""Extraction figures: a 10-page PDF, a 1 GiB file, and how long a script swap takes.

    .venv/bin/python -m ops.bench.extraction [--runs 5]

* PDF: the default script on a 10-page PDF (pypdf), in its sandboxed child process, spawn
  included: what one document costs the worker after its download.
* 1 GiB: a sparse file of zeros (type ``binary``) and a 1 GiB text file (the default script
  reads its first 8 MiB); each timed as the worker does it: SHA-256 over the whole file, type
  detection, then the script.  The download itself is not included (it depends on S3).
* Swap: a real worker on topics of its own; from the ``active`` record being acknowledged by
  Kafka to the worker having downloaded, verified and switched to the version (its
  ``script_swaps`` counter moves).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ops import extractor_admin as admin
from ops.filetype import HEAD_BYTES, detect
from ops.metrics import scrape, total
from ops.settings import Settings, get_settings
from ops.stack import Stack
from streams.context import DEFAULT_SCRIPT
from streams.corpus import pdf
from streams.extractor import Limits, run_script
from streams.script_check import check

GIB = 1 << 30


async def extract_file(path: Path) -> float:
    """Hash, detect and run the default script on ``path``; milliseconds."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        digest.update(head)
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    file_type, mime = detect(head, path)
    info = {"file_name": path.name, "file_type": file_type, "mime_type": mime}
    outcome = await run_script(
        DEFAULT_SCRIPT, path, info | {"sha256": digest.hexdigest()}, Limits()
    )
    assert outcome.error is None, outcome.error
    return (time.perf_counter() - started) * 1000


def make_sparse(path: Path) -> None:
    with open(path, "wb") as handle:
        handle.truncate(GIB)


def make_text(path: Path) -> None:
    line = b"the quick brown fox jumps over the lazy dog 0123456789\n" * 1000
    with open(path, "wb") as handle:
        for _ in range(GIB // len(line)):
            handle.write(line)
        handle.write(line[: GIB % len(line)])


async def files(runs: int, directory: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    pdf_path = directory / "ten.pdf"
    pdf_path.write_bytes(pdf(pages=10))
    makers: dict[str, tuple[Path, Callable[[Path], None] | None]] = {
        "10-page PDF": (pdf_path, None),
        "1 GiB sparse (zeros)": (directory / "sparse.bin", make_sparse),
        "1 GiB text": (directory / "big.txt", make_text),
    }
    for name, (path, make) in makers.items():
        if make is not None:
            make(path)
        out[name] = [await extract_file(path) for _ in range(runs)]
        path.unlink()
    return out


def swaps_seen(settings: Settings) -> int:
    url = f"http://{settings.bind.host}:{settings.bind.worker_port}/metrics"
    return int(total(scrape(url, settings.metrics_token, 2), "intellidox_script_swaps_total"))


async def swap_times(runs: int) -> list[float]:
    stack = Stack.create(get_settings(), Path(tempfile.mkdtemp(prefix="intellidox-bench-")))
    try:
        stack.start("worker", "worker", ready_port=stack.settings.bind.worker_port)
        tags = [f"def extract(path, info):\n    return {{'run': {i}}}\n" for i in range(2)]
        versions = [
            (await admin.publish(stack.settings, tag.encode(), check))["version"] for tag in tags
        ]
        times = []
        for run in range(runs):
            before = swaps_seen(stack.settings)
            await admin.activate(stack.settings, versions[run % 2])
            started = time.perf_counter()
            while swaps_seen(stack.settings) == before:
                await asyncio.sleep(0.01)
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        stack.close()


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="intellidox-bench-", dir="/var/tmp") as tmp:
        results = await files(runs, Path(tmp))
    results["swap takes effect"] = await swap_times(runs)
    for name, values in results.items():
        print(
            f"{name}: median {statistics.median(values):.0f} ms "
            f"(n={len(values)}, min {min(values):.0f}, max {max(values):.0f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
