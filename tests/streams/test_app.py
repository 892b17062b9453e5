"""The worker's Faust app: flow control that keeps what was fetched while flow was on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from mode.utils.queues import FlowControlQueue

from streams.app import SteadyFlowControl


async def test_resuming_flow_that_was_on_keeps_the_queues() -> None:
    flow = SteadyFlowControl()
    queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()  # on at start (Faust: to read the changelogs)
    await queue.put("fetched after the seek")
    flow.resume()  # again, once the stream partitions are sought (Faust cleared them here)
    assert queue.qsize() == 1 and flow.is_active()


async def test_resuming_after_a_suspension_clears_the_queues() -> None:
    flow = SteadyFlowControl()
    queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()
    await queue.put("of a partition taken away")
    flow.suspend()  # a rebalance: what is queued may belong to another worker now
    flow.resume()
    assert queue.qsize() == 0
    await asyncio.wait_for(queue.put("new"), 1)
    assert queue.qsize() == 1


def test_the_worker_keeps_no_statistics_of_every_event() -> None:
    """Faust's Monitor sensor is left out of the per-event sensor calls (its stats pages are
    not served); the object itself stays for Faust's direct calls.  In a child process: the
    app's services make event loops of their own that this test cannot close."""
    program = (
        "from ops.settings import Settings\n"
        "from streams.app import _faust_app\n"
        "app = _faust_app(Settings())\n"
        "list(app.on_init_dependencies())\n"
        "app.monitor.on_tp_commit({})\n"
        "print(app.monitor in set(app.sensors), len(set(app.sensors)))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.split() == ["False", "0"], run.stderr


def test_faust_keeps_its_data_under_the_var_dir_not_the_working_directory(tmp_path: Path) -> None:
    program = (
        "from pathlib import Path\n"
        "from ops.settings import Settings\n"
        "from streams.app import _faust_app\n"
        f"app = _faust_app(Settings(var_dir=Path({str(tmp_path)!r})))\n"
        "print(app.conf.datadir)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert Path(run.stdout.strip()).is_relative_to(tmp_path), run.stdout + run.stderr
