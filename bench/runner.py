"""Run the scenarios: start the servers once, then per scenario measure upstream, floor, gateway."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import load, report, servers, upstream
from bench.scenarios import TARGETS, Request, Scenario, gateway_deployments, request_for


@dataclass(frozen=True)
class Options:
    scenarios: tuple[Scenario, ...]
    duration: float
    warmup: float
    upstream_server: str  # auto, nginx or python
    load_generator: str  # auto, wrk or python
    rounds: int = 1


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _open_files_raise() -> None:
    """Let this process and its children hold as many sockets as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def upstream_kind(choice: str, delay_ms: float) -> str:
    """Return "nginx" or "python" for an upstream: nginx cannot delay, and may not be installed."""
    if delay_ms or choice == "python":
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


@dataclass(frozen=True)
class Session:
    """What every measurement shares: the options, the load runner, the scratch folder, the cores."""

    options: Options
    runner: Callable[..., load.LoadResult]
    workdir: Path
    pinning: servers.Pinning


def _measure(
    session: Session, scenario: Scenario, request: Request, server: servers.Server
) -> dict[str, Any]:
    _probe(request, scenario.stream)
    server.peak_rss_reset()
    result = session.runner(
        request,
        concurrency=scenario.concurrency,
        duration=session.options.duration,
        warmup=session.options.warmup,
        workdir=session.workdir,
        pinning=session.pinning,
    )
    return {
        **asdict(result),
        "peak_rss_mb": round(server.peak_rss() / 2**20, 1),
        # Above ~2 (server and load generator busy), something else competed for the cores.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


@dataclass
class Servers:
    upstreams: dict[float, servers.Server]
    floor: servers.Server
    gateway: servers.Server

    def for_target(self, target: str, scenario: Scenario) -> servers.Server:
        if target == "upstream":
            return self.upstreams[scenario.upstream_delay_ms]
        return self.floor if target == "floor" else self.gateway


def _servers_start(options: Options, workdir: Path, pinning: servers.Pinning, stack: ExitStack) -> Servers:
    upstreams: dict[float, servers.Server] = {}
    for delay in sorted({scenario.upstream_delay_ms for scenario in options.scenarios}):
        kind = upstream_kind(options.upstream_server, delay)
        upstreams[delay] = servers.upstream_start(workdir=workdir, pinning=pinning, delay_ms=delay, kind=kind)
        stack.callback(upstreams[delay].stop)
    floor = servers.floor_start(workdir=workdir, pinning=pinning)
    stack.callback(floor.stop)
    _progress("Migrating and seeding the gateway's database...")
    deployments = gateway_deployments(options.scenarios, {delay: up.url for delay, up in upstreams.items()})
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
            rounds[target].append(_measure(session, scenario, request, server))
            _progress(f"{scenario.name:<12} {target:<9} {rounds[target][-1]}")
    results = {target: report.rounds_combine(measured) for target, measured in rounds.items()}
    return {**asdict(scenario), "results": results, "ratios": report.ratios(results)}


def run(options: Options) -> dict[str, Any]:
    """Start upstreams, floor and gateway, run every scenario against each, and return the report."""
    _open_files_raise()
    pinning = servers.Pinning.detect()
    load_name, runner = load.load_runner(options.load_generator)
    with tempfile.TemporaryDirectory(prefix="bench-") as temporary, ExitStack() as stack:
        workdir = Path(temporary)
        running = _servers_start(options, workdir, pinning, stack)
        session = Session(options=options, runner=runner, workdir=workdir, pinning=pinning)
        records = [_scenario_run(session, scenario, running) for scenario in options.scenarios]
    kinds = {server.kind for server in running.upstreams.values()}
    tools = {
        "upstream": sorted(kinds),
        "nginx": _version([upstream.nginx_binary() or "nginx", "-v"]) if "nginx" in kinds else None,
        "load_generator": _version(["wrk", "-v"]) if load_name == "wrk" else "python (bench.load)",
        "pinning": asdict(pinning),
    }
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "options": {"duration_s": options.duration, "warmup_s": options.warmup, "rounds": options.rounds},
        "tools": tools,
        "scenarios": records,
    }
