"""What this process has seen of each deployment: requests in flight, latency, usage this minute.

The strategies read these numbers to choose; the router writes them around every attempt. They are
per process on purpose: they describe load this instance sends and latency it observes, and keeping
them in memory costs no round trip on the hot path. With N instances behind a balancer, each sees
about 1/N of the traffic, which is the same shape. (Cooldowns, which must be shared, live in
``cooldowns``; usage limits that must hold across instances are the limiter's deployment RPM/TPM.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

LATENCY_WEIGHT = 0.3  # weight of the newest sample in the moving averages
LATENCY_TTL = 300.0  # seconds after which a deployment's latency is unknown again (re-measured)


@dataclass(slots=True)
class DeploymentStats:
    in_flight: int = 0
    latency: float | None = None  # moving average of whole-response seconds
    time_to_first_token: float | None = None  # moving average for streams
    measured_at: float = 0.0
    minute: int = 0  # the minute (Unix time // 60) the counters below belong to
    requests: int = 0
    tokens: int = 0


def _average(previous: float | None, sample: float) -> float:
    return sample if previous is None else previous + LATENCY_WEIGHT * (sample - previous)


class RouterStats:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ) -> None:
        self._stats: dict[str, DeploymentStats] = {}
        self._clock = clock
        self._wall = wall

    def of(self, model_id: str) -> DeploymentStats:
        stats = self._stats.get(model_id)
        if stats is None:
            stats = self._stats[model_id] = DeploymentStats()
        minute = int(self._wall() // 60)
        if stats.minute != minute:
            stats.minute, stats.requests, stats.tokens = minute, 0, 0
        return stats

    def latency(self, model_id: str, stream: bool) -> float | None:
        """Return the deployment's recent latency (time to first token for streams), None if unknown."""
        stats = self.of(model_id)
        if stats.latency is None or self._clock() - stats.measured_at > LATENCY_TTL:
            return None
        if stream and stats.time_to_first_token is not None:
            return stats.time_to_first_token
        return stats.latency

    def started(self, model_id: str) -> None:
        stats = self.of(model_id)
        stats.in_flight += 1
        stats.requests += 1

    def finished(
        self,
        model_id: str,
        *,
        seconds: float | None,
        first_token_seconds: float | None = None,
        tokens: int = 0,
    ) -> None:
        """Record an attempt's end; ``seconds`` None means it says nothing about latency (a refusal)."""
        stats = self.of(model_id)
        stats.in_flight = max(stats.in_flight - 1, 0)
        stats.tokens += tokens
        if seconds is not None:
            stats.latency = _average(stats.latency, seconds)
            stats.measured_at = self._clock()
        if first_token_seconds is not None:
            stats.time_to_first_token = _average(stats.time_to_first_token, first_token_seconds)

    def clear(self) -> None:
        self._stats.clear()


stats = RouterStats()
