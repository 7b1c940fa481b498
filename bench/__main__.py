"""`python -m bench`: measure the gateway against a static upstream and a bare Django pass-through."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from bench import scale, workers
from bench.report import report_write, table
from bench.runner import Options, run
from bench.scenarios import SCENARIOS, scenarios_select
from bench.servers import REPO_ROOT

TOOLS = ("nginx", "wrk")
DASHBOARD = "dashboard"
SCALE_NAMES = (*scale.PARTS, workers.PART, DASHBOARD)
DASHBOARD_ROWS = 10_000_000
QUICK = {"duration": 2.0, "warmup": 0.5, "dashboard_rows": 100_000, "dashboard_renders": 3}


def _install_tools() -> None:
    """Install nginx and wrk with apt (root only); refresh the package lists if the first try fails."""
    if os.geteuid() != 0:
        sys.exit("--install-tools runs apt-get and needs root: install nginx and wrk yourself instead.")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *TOOLS]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(install, check=True)


def parser_build() -> argparse.ArgumentParser:
    """Return the command line's parser (``arguments_parse`` checks the names given to --only)."""
    names = [scenario.name for scenario in SCENARIOS]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 10, --quick 2)")
    parser.add_argument(
        "--warmup", type=float, help="unmeasured seconds before each run (default 2, --quick 0.5)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short runs for development: 2 s measured, 0.5 s warm-up, a 100,000-row dashboard",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure upstream, floor, gateway in turn this many times; report medians (default 1)",
    )
    parser.add_argument(
        "--only",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=[],
        metavar="NAME,...",
        help=f"run only these: scenarios ({', '.join(names)}) and scale parts ({', '.join(SCALE_NAMES)})",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="also run the scale parts: 10 vs 100,000 keys, 5 vs 1,000 deployments, 1 vs 2 workers, "
        "the dashboard",
    )
    parser.add_argument(
        "--dashboard-rows",
        type=int,
        metavar="N",
        help=f"ledger rows for the dashboard part (default {DASHBOARD_ROWS:,}, --quick 100,000)",
    )
    parser.add_argument("--dashboard-renders", type=int, help="timed renders of the dashboard (default 5)")
    parser.add_argument(
        "--dashboard-fresh", action="store_true", help="regenerate the dashboard's database even if reusable"
    )
    parser.add_argument(
        "--upstream-delay",
        type=float,
        metavar="MS",
        help="make the upstream answer this many ms late in every scenario (uses the Python upstream)",
    )
    parser.add_argument("--upstream-server", choices=("auto", "nginx", "python"), default="auto")
    parser.add_argument(
        "--load-generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk when installed, the Python generator where first bytes are timed",
    )
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "var" / "bench" / "last.json", help="the JSON report"
    )
    parser.add_argument("--install-tools", action="store_true", help="apt-get install nginx wrk first (root)")
    return parser


def arguments_parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the parsed command line; exit with the usage when --only names something unknown."""
    parser = parser_build()
    arguments = parser.parse_args(argv)
    known = {scenario.name for scenario in SCENARIOS} | set(SCALE_NAMES)
    unknown = sorted(set(arguments.only) - known)
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}")
    return arguments


def options_from(arguments: argparse.Namespace) -> Options:
    """Return the run's options: what --only and --scale select, with --quick's or the default values."""
    defaults = (
        QUICK if arguments.quick else {"duration": 10.0, "warmup": 2.0, "dashboard_rows": DASHBOARD_ROWS}
    )
    only = set(arguments.only)
    scenario_names = sorted(only - set(SCALE_NAMES))
    scenarios = () if only and not scenario_names else scenarios_select(scenario_names)
    parts = set(SCALE_NAMES) if arguments.scale else only & set(SCALE_NAMES)
    if arguments.upstream_delay is not None:
        scenarios = tuple(
            dataclasses.replace(s, upstream_delay_ms=arguments.upstream_delay) for s in scenarios
        )
    rows = arguments.dashboard_rows if arguments.dashboard_rows is not None else defaults["dashboard_rows"]
    return Options(
        scenarios=scenarios,
        duration=arguments.duration if arguments.duration is not None else defaults["duration"],
        warmup=arguments.warmup if arguments.warmup is not None else defaults["warmup"],
        upstream_server=arguments.upstream_server,
        load_generator=arguments.load_generator,
        rounds=max(1, arguments.rounds),
        scale_parts=frozenset(parts & set(scale.PARTS)),
        workers=workers.PART in parts,
        dashboard_rows=rows if DASHBOARD in parts else 0,
        dashboard_renders=arguments.dashboard_renders or defaults.get("dashboard_renders", 5),
        dashboard_fresh=arguments.dashboard_fresh,
    )


def main() -> None:
    arguments = arguments_parse()
    if arguments.install_tools:
        _install_tools()
    report = run(options_from(arguments))
    print(table(report))
    report_write(report, arguments.output)
    print(f"\nWritten to {arguments.output}")


if __name__ == "__main__":
    main()
