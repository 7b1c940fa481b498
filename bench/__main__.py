"""`python -m bench`: measure the gateway against a static upstream and a bare Django pass-through."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from bench.report import report_write, table
from bench.runner import Options, run
from bench.scenarios import SCENARIOS
from bench.servers import REPO_ROOT

TOOLS = ("nginx", "wrk")


def _install_tools() -> None:
    """Install nginx and wrk with apt (root only); refresh the package lists if the first try fails."""
    if os.geteuid() != 0:
        sys.exit("--install-tools runs apt-get and needs root: install nginx and wrk yourself instead.")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *TOOLS]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(install, check=True)


def _arguments() -> argparse.Namespace:
    names = [scenario.name for scenario in SCENARIOS]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure upstream, floor, gateway in turn this many times; report medians (default 1)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=names,
        help=f"run only these (repeatable; all: {', '.join(names)})",
    )
    parser.add_argument(
        "--upstream-delay",
        type=float,
        metavar="MS",
        help="make the upstream answer this many ms late in every scenario (uses the Python upstream)",
    )
    parser.add_argument("--upstream-server", choices=("auto", "nginx", "python"), default="auto")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "var" / "bench" / "last.json", help="the JSON report"
    )
    parser.add_argument("--install-tools", action="store_true", help="apt-get install nginx wrk first (root)")
    return parser.parse_args()


def main() -> None:
    arguments = _arguments()
    if arguments.install_tools:
        _install_tools()
    scenarios = tuple(s for s in SCENARIOS if not arguments.scenario or s.name in arguments.scenario)
    if arguments.upstream_delay is not None:
        scenarios = tuple(
            dataclasses.replace(s, upstream_delay_ms=arguments.upstream_delay) for s in scenarios
        )
    options = Options(
        scenarios=scenarios,
        duration=arguments.duration,
        warmup=arguments.warmup,
        upstream_server=arguments.upstream_server,
        load_generator=arguments.load_generator,
        rounds=max(1, arguments.rounds),
    )
    report = run(options)
    print(table(report))
    report_write(report, arguments.output)
    print(f"\nWritten to {arguments.output}")


if __name__ == "__main__":
    main()
