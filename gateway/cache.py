"""A short-lived cache of document rows for hot reads (GET meta, scan-results).

Safe because the gateway sees every change as it happens: the hub evicts a document on any
event for it, and a row is only cached while its document has been quiet for a while (so a
projection still catching up on a recent event is never cached).  Entries also expire after
``ttl_s`` whatever happens.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

QUIET_S = 5.0
MAX_ENTRIES = 100_000


class DocumentCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._rows: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._reads: dict[tuple[str, str], asyncio.Future[dict[str, Any] | None]] = {}

    def get(self, tenant: str, doc_id: str) -> dict[str, Any] | None:
        hit = self._rows.get(doc_id)
        if hit is None or hit[0] < time.monotonic() or hit[1]["tenant"] != tenant:
            return None
        return hit[1]

    def put(self, row: dict[str, Any], quiet_for_s: float) -> None:
        if self.ttl_s <= 0 or quiet_for_s < QUIET_S:
            return
        doc_id = str(row["id"])
        self._rows[doc_id] = (time.monotonic() + self.ttl_s, row)
        self._rows.move_to_end(doc_id)
        while len(self._rows) > MAX_ENTRIES:
            self._rows.popitem(last=False)

    def evict(self, doc_id: str) -> None:
        self._rows.pop(doc_id, None)

    async def single_flight(
        self, tenant: str, doc_id: str, read: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> dict[str, Any] | None:
        """Concurrent misses for one document share one database read."""
        key = (tenant, doc_id)
        pending = self._reads.get(key)
        if pending is None:
            pending = self._reads[key] = asyncio.ensure_future(read())
            pending.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(pending)
