"""The workers part (``--only workers``): what a second worker process on a second core buys.

Issue 6's target: two gateway workers on two cores serve at least 1.7 times one worker's requests/s.
The gateway (``manage.py serve --workers N``, embedded SQLite: each worker has its own limiter, budget
holds and ledger writer, all writing to the one database) gets the ``c32`` scenario's request, seeded
as for the scenarios: the bench key and team with budgets and limits, two deployments per group, a
price. The floor (``bench/floor`` under ``uvicorn --workers N``) gets the same request, measured the
same way, so that its ratio can be read next to the gateway's.

One worker is pinned to the server's core; two may use both cores. The upstream (nginx when installed)
and the load generator (wrk when installed) stay on the load core either way: with only two cores,
the two workers share one of them with the load side, and the ratio reads low by what it takes. Each
run therefore reports the cores its server and its load side used.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.scenarios import Scenario, scenarios_select
from bench.servers import Pinning

PART = "workers"
SCENARIO = "c32"
TARGET_RATIO = 1.7  # the target: two workers on two cores, against one worker on one
WORKER_COUNTS = (1, 2)


@dataclass(frozen=True)
class WorkersRun:
    target: str  # "gateway" (manage.py serve) or "floor" (uvicorn)
    workers: int

    @property
    def name(self) -> str:
        return f"{self.target}-{self.workers}w"

    @property
    def baseline(self) -> str:
        """Return the run this one is compared with: the same target with one worker ("" for that one)."""
        return "" if self.workers == 1 else f"{self.target}-1w"

    @property
    def server(self) -> str:
        """Return how the server is started, for the report."""
        command = "manage.py serve" if self.target == "gateway" else "uvicorn"
        return f"{command} --workers {self.workers}"

    def pinning(self, pinning: Pinning) -> Pinning:
        """Return where the run's processes go: one worker on the server's core, more on both cores."""
        return pinning if self.workers == 1 else pinning.widened()


RUNS: tuple[WorkersRun, ...] = tuple(
    WorkersRun(target, workers) for target in ("gateway", "floor") for workers in WORKER_COUNTS
)


def workers_scenario() -> Scenario:
    """Return the scenario whose request every run sends (c32: 32 clients, non-streaming)."""
    return scenarios_select([SCENARIO])[0]


def cores_used(cpu_seconds: float, wall_seconds: float) -> float | None:
    """Return the CPU time used over a span as a number of cores busy all along (2 decimals)."""
    if wall_seconds <= 0:
        return None
    return round(max(cpu_seconds, 0.0) / wall_seconds, 2)


def cores_described(cores: str | None) -> str:
    """Return a taskset core list for the report: "core 0", "cores 0,1", or "any core" when unpinned."""
    if cores is None:
        return "any core"
    return f"{'cores' if ',' in cores else 'core'} {cores}"
