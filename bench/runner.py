"""Run the benchmark: the scenarios against upstream, floor and gateway, then the scale parts.

The servers start once per phase. Each scenario measures its three targets in turn (``rounds`` times
over); the scale steps measure one more gateway while its tables grow; the workers part starts the
gateway and the floor with one, then two worker processes; the dashboard part runs in a process of
its own on PostgreSQL (``bench.dashboard``).
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import dashboard, load, report, scale, servers, upstream, workers
from bench.scenarios import (
    TARGETS,
    Request,
    Scenario,
    UpstreamShape,
    gateway_deployments,
    request_for,
    upstream_api_base,
)


@dataclass(frozen=True)
class Options:
    scenarios: tuple[Scenario, ...]
    duration: float
    warmup: float
    upstream_server: str  # auto, nginx or python
    load_generator: str  # auto, wrk or python
    rounds: int = 1
    scale_parts: frozenset[str] = frozenset()  # of scale.PARTS
    workers: bool = False  # the workers part: one worker against two
    dashboard_rows: int = 0  # 0: no dashboard
    dashboard_renders: int = 5
    dashboard_fresh: bool = False


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def open_files_raise() -> tuple[int, int]:
    """Let this process and its children hold as many sockets as the hard limit allows; return the limits.

    wrk, the upstream and the servers each hold 2,000 sockets in streams-2000 (the servers twice that).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def upstream_kind(choice: str, shape: UpstreamShape) -> str:
    """Return "nginx" or "python" for an upstream: nginx can only answer at once, and may be missing."""
    if not shape.is_static or choice == "python":
        return "python"
    if upstream.nginx_binary() is None:
        if choice == "nginx":
            raise RuntimeError("nginx is not installed (see --install-tools)")
        return "python"
    return "nginx"


def _version(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def _probe(request: Request, stream: bool) -> None:
    """Send the request once and raise unless it succeeds with the expected body, before timing it."""
    sent = urllib.request.Request(request.url, data=request.body, headers=request.headers, method="POST")
    with urllib.request.urlopen(sent, timeout=30) as response:
        body = response.read()
    expected = b"data: [DONE]" if stream else b'"chat.completion"'
    if expected not in body:
        raise RuntimeError(f"{request.url} answered without {expected!r}: {body[:300]!r}")


def _megabytes(size: int) -> float:
    return round(size / 2**20, 1)


@dataclass(frozen=True)
class Session:
    """What every measurement shares: the options, the load runners, the scratch folder, the cores."""

    options: Options
    load_name: str
    workdir: Path
    pinning: servers.Pinning

    def load_generator(self, first_byte: bool) -> str:
        """Return the generator for a run: the Python one when first bytes are timed (wrk cannot)."""
        if first_byte and self.options.load_generator == "auto":
            return "python"
        return self.load_name

    def measure(
        self,
        request: Request,
        server: servers.Server,
        *,
        concurrency: int,
        warmup: float,
        stream: bool = False,
        first_byte: bool = False,
        first_byte_lead_ms: float = 0.0,
    ) -> dict[str, Any]:
        """Probe, then run the load at ``server`` while sampling its memory; return the result."""
        _probe(request, stream)
        generator = self.load_generator(first_byte)
        _, run_load = load.load_runner(generator)
        with server.rss_sampled() as memory:
            result = run_load(
                request,
                concurrency=concurrency,
                duration=self.options.duration,
                warmup=warmup,
                workdir=self.workdir,
                pinning=self.pinning,
                first_byte_lead_ms=first_byte_lead_ms,
            )
        return {
            **asdict(result),
            "peak_rss_mb": _megabytes(memory.peak),
            "load_generator": generator,
            # Above ~2 (server and load generator busy), something else competed for the cores.
            "load_average_1m": round(os.getloadavg()[0], 2),
        }


@dataclass
class Servers:
    upstreams: dict[UpstreamShape, servers.Server]
    floor: servers.Server
    gateway: servers.Server

    def for_target(self, target: str, scenario: Scenario) -> servers.Server:
        if target == "upstream":
            return self.upstreams[scenario.upstream]
        return self.floor if target == "floor" else self.gateway


def _servers_start(session: Session, stack: ExitStack) -> Servers:
    options, workdir, pinning = session.options, session.workdir, session.pinning
    upstreams: dict[UpstreamShape, servers.Server] = {}
    for shape in sorted({scenario.upstream for scenario in options.scenarios}):
        kind = upstream_kind(options.upstream_server, shape)
        upstreams[shape] = servers.upstream_start(workdir=workdir, pinning=pinning, shape=shape, kind=kind)
        stack.callback(upstreams[shape].stop)
    floor = servers.floor_start(workdir=workdir, pinning=pinning)
    stack.callback(floor.stop)
    _progress("Migrating and seeding the gateway's database...")
    deployments = gateway_deployments(options.scenarios, {shape: up.url for shape, up in upstreams.items()})
    gateway = servers.gateway_start(workdir=workdir, pinning=pinning, deployments=deployments)
    stack.callback(gateway.stop)
    return Servers(upstreams=upstreams, floor=floor, gateway=gateway)


def _scenario_run(session: Session, scenario: Scenario, running: Servers) -> dict[str, Any]:
    """Measure the targets in turn, ``rounds`` times over, and combine each target's rounds."""
    rounds: dict[str, list[dict[str, Any]]] = {target: [] for target in TARGETS}
    upstream_port = running.for_target("upstream", scenario).port
    for _ in range(session.options.rounds):
        for target in TARGETS:
            server = running.for_target(target, scenario)
            request = request_for(
                target, scenario, base_url=server.url, upstream_port=upstream_port, key=servers.GATEWAY_KEY
            )
            measured = session.measure(
                request,
                server,
                concurrency=scenario.concurrency,
                warmup=max(session.options.warmup, scenario.min_warmup_s),
                stream=scenario.stream,
                first_byte=scenario.first_byte,
                # A stream counts as relayed when its first byte came at least half the upstream's span early.
                first_byte_lead_ms=scenario.stream_span_ms / 2,
            )
            rounds[target].append(measured)
            _progress(f"{scenario.name:<12} {target:<9} {measured}")
    results = {target: report.rounds_combine(measured) for target, measured in rounds.items()}
    return {
        **asdict(scenario),
        "stream_span_ms": scenario.stream_span_ms,
        "results": results,
        "ratios": report.ratios(results),
    }


def _scenarios_phase(session: Session) -> dict[str, Any]:
    """Run every scenario; return their records, the upstreams' kinds and the servers' memory after."""
    with ExitStack() as stack:
        running = _servers_start(session, stack)
        records = [_scenario_run(session, scenario, running) for scenario in session.options.scenarios]
        rss_after = {"gateway": _megabytes(running.gateway.rss()), "floor": _megabytes(running.floor.rss())}
    kinds = sorted({server.kind for server in running.upstreams.values()})
    return {"scenarios": records, "rss_after_runs_mb": rss_after, "upstream_kinds": kinds}


def _scale_phase(session: Session) -> dict[str, Any]:
    """Run the scale steps against a gateway of their own, growing its tables between steps."""
    options, workdir, pinning = session.options, session.workdir, session.pinning
    steps = scale.steps_select(set(options.scale_parts))
    records: list[dict[str, Any]] = []
    with ExitStack() as stack:
        shape = UpstreamShape()
        kind = upstream_kind(options.upstream_server, shape)
        scale_upstream = servers.upstream_start(workdir=workdir, pinning=pinning, shape=shape, kind=kind)
        stack.callback(scale_upstream.stop)
        api_base = upstream_api_base(scale_upstream.url, stream=False)
        _progress("Migrating and seeding the scale gateway's database...")
        gateway = servers.gateway_start(
            workdir=workdir, pinning=pinning, deployments={scale.SCALE_GROUP: api_base}, name="gateway-scale"
        )
        stack.callback(gateway.stop)
        scale.gateway_prepare(gateway, api_base)
        for step in steps:
            if step.grow:
                _progress(f"Adding {step.grow} for {step.name}...")
                scale.gateway_grow(gateway, step.grow, api_base)
            request = scale.scale_request(gateway.url, step)
            if step.warm:
                scale.keys_prime(request)
            measured = session.measure(
                request,
                gateway,
                concurrency=scale.CONCURRENCY,
                warmup=options.warmup if step.warm else 0.0,
            )
            _progress(f"{step.name:<18} {measured}")
            records.append({**asdict(step), "keys": [step.keys.start, step.keys.stop], "result": measured})
        rss_after = _megabytes(gateway.rss())
    return {"steps": records, "comparisons": report.scale_ratios(records), "rss_after_runs_mb": rss_after}


def _children_cpu_seconds() -> float:
    """Return the CPU time of this process's finished children: the load generator's runs (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measure_with_cores(
    session: Session,
    request: Request,
    server: servers.Server,
    upstream_server: servers.Server,
    concurrency: int,
) -> dict[str, Any]:
    """Measure; add the cores the server and the load side (upstream, generator) used meanwhile.

    The cores are averaged over the warm-up and the measured run together.
    """
    started = time.monotonic()
    server_before, upstream_before = server.cpu_seconds(), upstream_server.cpu_seconds()
    generator_before = _children_cpu_seconds()
    measured = session.measure(request, server, concurrency=concurrency, warmup=session.options.warmup)
    wall = time.monotonic() - started
    server_cpu = server.cpu_seconds() - server_before
    load_cpu = upstream_server.cpu_seconds() - upstream_before + _children_cpu_seconds() - generator_before
    return {
        **measured,
        "server_cores": workers.cores_used(server_cpu, wall),
        "load_cores": workers.cores_used(load_cpu, wall),
    }


def _workers_server_start(session: Session, run: workers.WorkersRun, gateway_var_dir: Path) -> servers.Server:
    pinning = run.pinning(session.pinning)
    if run.target == "gateway":
        return servers.gateway_serve(
            workdir=session.workdir,
            pinning=pinning,
            var_dir=gateway_var_dir,
            name=run.name,
            workers=run.workers,
        )
    return servers.floor_start(workdir=session.workdir, pinning=pinning, workers=run.workers, name=run.name)


def _workers_phase(session: Session) -> dict[str, Any]:
    """Measure the gateway and the floor at c32 with one worker, then two; ``rounds`` times over.

    Each run starts its server afresh; the gateway's runs share one database, seeded once.
    """
    options, workdir = session.options, session.workdir
    scenario = workers.workers_scenario()
    measured: dict[str, list[dict[str, Any]]] = {run.name: [] for run in workers.RUNS}
    with ExitStack() as stack:
        kind = upstream_kind(options.upstream_server, scenario.upstream)
        upstream_server = servers.upstream_start(
            workdir=workdir, pinning=session.pinning, shape=scenario.upstream, kind=kind
        )
        stack.callback(upstream_server.stop)
        _progress("Migrating and seeding the workers gateway's database...")
        deployments = gateway_deployments((scenario,), {scenario.upstream: upstream_server.url})
        var_dir = servers.gateway_database_create(
            workdir=workdir, deployments=deployments, name="gateway-workers"
        )
        for _ in range(options.rounds):
            for run in workers.RUNS:
                server = _workers_server_start(session, run, var_dir)
                try:
                    request = request_for(
                        run.target,
                        scenario,
                        base_url=server.url,
                        upstream_port=upstream_server.port,
                        key=servers.GATEWAY_KEY,
                    )
                    result = _measure_with_cores(
                        session, request, server, upstream_server, scenario.concurrency
                    )
                finally:
                    server.stop()
                measured[run.name].append(result)
                _progress(f"{run.name:<12} {result}")
    records = [
        {
            "name": run.name,
            "target": run.target,
            "workers": run.workers,
            "server": run.server,
            "cores": run.pinning(session.pinning).server,
            "baseline": run.baseline,
            "upstream": kind,
            "result": report.rounds_combine(measured[run.name]),
        }
        for run in workers.RUNS
    ]
    return {
        "scenario": scenario.name,
        "cpus": os.cpu_count(),
        "load_cores_pinned": session.pinning.load,
        "runs": records,
        "comparisons": report.workers_ratios(records),
        "target_ratio": workers.TARGET_RATIO,
    }


def run(options: Options) -> dict[str, Any]:
    """Run the scenarios, the scale steps, the workers part and the dashboard asked for; return the report."""
    if servers.psutil is None:
        sys.exit("python -m bench needs psutil: .venv/bin/pip install -e '.[bench]'")
    open_files = open_files_raise()
    pinning = servers.Pinning.detect()
    if pinning.load is not None:
        # This process samples memory and waits on the others: keep it off the server's core.
        os.sched_setaffinity(0, {int(core) for core in pinning.load.split(",")})
    load_name, _ = load.load_runner(options.load_generator)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    result: dict[str, Any] = {"scenarios": []}
    with tempfile.TemporaryDirectory(prefix="bench-") as temporary:
        session = Session(options=options, load_name=load_name, workdir=Path(temporary), pinning=pinning)
        if options.scenarios:
            result |= _scenarios_phase(session)
        if options.scale_parts:
            result["scale"] = _scale_phase(session)
        if options.workers:
            result["workers"] = _workers_phase(session)
        if options.dashboard_rows:
            _progress(f"Dashboard at {options.dashboard_rows:,} ledger rows (PostgreSQL)...")
            result["dashboard"] = dashboard.dashboard_run(
                rows=options.dashboard_rows,
                renders=options.dashboard_renders,
                fresh=options.dashboard_fresh,
                workdir=session.workdir,
            )
    kinds = result.pop("upstream_kinds", [])
    return {
        "started_at": started_at,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "open_files_limit": list(open_files),
        },
        "options": {"duration_s": options.duration, "warmup_s": options.warmup, "rounds": options.rounds},
        "tools": {
            "upstream": kinds,
            "nginx": _version([upstream.nginx_binary() or "nginx", "-v"]) if "nginx" in kinds else None,
            "load_generator": _version(["wrk", "-v"]) if load_name == "wrk" else "python (bench.generator)",
            "pinning": asdict(pinning),
        },
        **result,
    }
