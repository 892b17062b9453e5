"""The log handler: whole lines from many threads at once, without a lock around the write."""

from __future__ import annotations

import json
import logging
import os
import select
import threading
from collections.abc import Iterator

import pytest

from ops.logs import JsonFormatter, LineHandler, Redactor


@pytest.fixture
def piped() -> Iterator[tuple[logging.Logger, LineHandler, int]]:
    """A logger whose handler writes into a pipe; yields the pipe's read end."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "w")
    handler = LineHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(Redactor(("the-kafka-password",)))
    logger = logging.getLogger("intellidox.test.lines")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, handler, read_fd
    logger.removeHandler(handler)
    stream.close()
    os.close(read_fd)


def _read_lines(fd: int, count: int) -> list[dict[str, object]]:
    data = b""
    while data.count(b"\n") < count:
        data += os.read(fd, 1 << 16)
    return [json.loads(line) for line in data.splitlines()]


def test_a_line_is_written_while_another_thread_holds_the_handlers_lock(
    piped: tuple[logging.Logger, LineHandler, int],
) -> None:
    # The lock is what the scanner host's threads queued on; a short line does not take it.
    logger, handler, read_fd = piped
    assert handler.lock is not None
    with handler.lock:
        writer = threading.Thread(target=logger.info, args=("scanning %s", "doc-1"))
        writer.start()
        writer.join(timeout=5)
        assert not writer.is_alive()
    (line,) = _read_lines(read_fd, 1)
    assert line["message"] == "scanning doc-1"


def test_lines_from_many_threads_stay_whole_and_scrubbed(
    piped: tuple[logging.Logger, LineHandler, int],
) -> None:
    logger, _, read_fd = piped
    threads, per_thread = 8, 25
    long = "x" * select.PIPE_BUF  # over PIPE_BUF: written under the lock, still whole
    seen: list[dict[str, object]] = []
    reader = threading.Thread(
        target=lambda: seen.extend(_read_lines(read_fd, threads * per_thread + 1))
    )
    reader.start()

    def log_some(n: int) -> None:
        for i in range(per_thread):
            logger.info("thread %d line %d password=the-kafka-password", n, i)

    writers = [threading.Thread(target=log_some, args=(n,)) for n in range(threads)]
    for writer in writers:
        writer.start()
    logger.warning("long %s", long)
    for writer in writers:
        writer.join()
    reader.join(timeout=10)
    messages = [str(line["message"]) for line in seen]
    assert len(messages) == threads * per_thread + 1
    assert f"long {long}" in messages
    assert not any("the-kafka-password" in m for m in messages)
    expected = {f"thread {n} line {i}" for n in range(threads) for i in range(per_thread)}
    assert {m.split(" password")[0] for m in messages if m.startswith("thread")} == expected
