"""Prometheus text metrics without a dependency: counters and a latency histogram."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 5000)


@dataclass
class Metrics:
    counters: Counter[str] = field(default_factory=Counter)
    latency: Counter[tuple[str, float]] = field(default_factory=Counter)
    latency_sum_ms: dict[str, float] = field(default_factory=dict)

    def inc(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def observe(self, route: str, ms: float) -> None:
        for bucket in BUCKETS_MS:
            if ms <= bucket:
                self.latency[(route, bucket)] += 1
        self.latency[(route, float("inf"))] += 1
        self.latency_sum_ms[route] = self.latency_sum_ms.get(route, 0.0) + ms

    def render(self, prefix: str = "intellidox") -> str:
        lines = [f"{prefix}_{name}_total {value}" for name, value in sorted(self.counters.items())]
        for (route, bucket), count in sorted(self.latency.items()):
            le = "+Inf" if bucket == float("inf") else f"{bucket:g}"
            lines.append(f'{prefix}_request_ms_bucket{{route="{route}",le="{le}"}} {count}')
        for route, total in sorted(self.latency_sum_ms.items()):
            lines.append(f'{prefix}_request_ms_sum{{route="{route}"}} {total:.3f}')
        return "\n".join(lines) + "\n"
