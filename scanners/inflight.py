"""The requests one consumer has taken and not finished yet, and what it may commit.

A consumer takes up to ``limit`` requests of its partitions (queued for a scan, scanned side
by side, their verdicts on their way to Kafka), and requests finish in any order.  At-least-once
demands that a committed offset never passes an unfinished request: for each partition the
commit point is the first offset still open, so offset k is committed only once every
request before it has finished.  A crash loses only uncommitted work, which the group
redelivers.

A partition taken away by a rebalance is forgotten: nothing more is committed for it by this
consumer, its requests still queued are dropped (:meth:`InFlight.owns` says so), and those
already scanning finish (their verdicts go out: a duplicate is harmless, the projections keep
one per scanner).  Pure logic, no Kafka: the consumer
loop (:mod:`scanners.consumer`) drives it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

Partition = tuple[str, int]  # (topic, partition)


@dataclass
class PartitionWindow:
    """One partition's open offsets in the order they were taken."""

    open: dict[int, bool] = field(default_factory=dict)  # offset -> finished
    next_commit: int | None = None  # everything before it is finished
    committed: int | None = None  # what was last handed out for commit

    def take(self, offset: int) -> None:
        self.open[offset] = False
        if self.next_commit is None:
            self.next_commit = offset

    def finish(self, offset: int) -> None:
        if offset not in self.open:
            return
        self.open[offset] = True
        while self.open:  # move past the finished ones at the front
            first = next(iter(self.open))
            if not self.open[first]:
                self.next_commit = first
                return
            del self.open[first]
            self.next_commit = first + 1


@dataclass(frozen=True)
class Ticket:
    """One request in flight: where it came from, and the window it belongs to."""

    partition: Partition
    offset: int
    window: PartitionWindow


class InFlight:
    """A consumer's requests in flight, by partition (thread-safe: requests finish on other
    threads than the consumer's)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._windows: dict[Partition, PartitionWindow] = {}
        self._count = 0
        self._changed = threading.Condition()  # notified at half full and when empty

    def take(self, partition: Partition, offset: int) -> Ticket:
        with self._changed:
            window = self._windows.setdefault(partition, PartitionWindow())
            window.take(offset)
            self._count += 1
            return Ticket(partition, offset, window)

    def finish(self, ticket: Ticket) -> None:
        with self._changed:
            ticket.window.finish(ticket.offset)
            self._less()

    def abandon(self, ticket: Ticket) -> None:
        """A request let go unscanned (stopping, or its partition moved): no longer counted,
        and never finished, so no commit passes it; the group delivers it again."""
        with self._changed:
            self._less()

    def _less(self) -> None:
        """One fewer (locked); waiters hear when it reaches half full or empty."""
        self._count -= 1
        if self._count in (0, self.limit // 2):
            self._changed.notify_all()

    def owns(self, ticket: Ticket) -> bool:
        """False once the ticket's partition was taken away (or taken away and back)."""
        with self._changed:
            return self._windows.get(ticket.partition) is ticket.window

    def __len__(self) -> int:
        with self._changed:
            return self._count

    @property
    def full(self) -> bool:
        return self._count >= self.limit  # one int read: no lock needed

    @property
    def low(self) -> bool:
        """At most half full: time to take more (pausing at full and resuming only here
        keeps a consumer from flapping between the two at every request)."""
        return self._count <= self.limit // 2

    def due(self, partitions: list[Partition] | None = None) -> dict[Partition, int]:
        """Commit points that moved since last asked (of ``partitions``, default all)."""
        with self._changed:
            chosen = self._windows if partitions is None else partitions
            due = {}
            for partition in chosen:
                window = self._windows.get(partition)
                if window is None or window.next_commit is None:
                    continue
                if window.next_commit != window.committed:
                    window.committed = due[partition] = window.next_commit
            return due

    def retry(self, partition: Partition, offset: int) -> None:
        """A commit of ``offset`` failed (say, mid-rebalance): hand it out again."""
        with self._changed:
            window = self._windows.get(partition)
            if window is not None and window.committed == offset:
                window.committed = None

    def forget(self, partitions: list[Partition]) -> None:
        """Partitions this consumer lost: nothing more is committed for them here."""
        with self._changed:
            for partition in partitions:
                self._windows.pop(partition, None)

    def wait_low(self, timeout_s: float) -> bool:
        """True once at most half full; False after ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count <= self.limit // 2, timeout_s)

    def wait_empty(self, timeout_s: float) -> bool:
        """True once nothing is in flight; False after ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout_s)
