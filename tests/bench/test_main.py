"""The command line: what --only, --scale and --quick select."""

import pytest

from bench.__main__ import DASHBOARD_ROWS, arguments_parse, options_from
from bench.scenarios import SCENARIOS


def options(*argv: str):
    return options_from(arguments_parse(list(argv)))


def test_by_default_every_scenario_runs_and_no_scale_part():
    chosen = options()

    assert chosen.scenarios == SCENARIOS
    assert (chosen.duration, chosen.warmup) == (10.0, 2.0)
    assert chosen.scale_parts == frozenset()
    assert not chosen.workers
    assert chosen.dashboard_rows == 0


def test_scale_adds_keys_deployments_workers_and_the_10_million_row_dashboard():
    chosen = options("--scale")

    assert chosen.scenarios == SCENARIOS
    assert chosen.scale_parts == {"keys", "deployments"}
    assert chosen.workers
    assert chosen.dashboard_rows == DASHBOARD_ROWS == 10_000_000


def test_only_runs_exactly_the_names_given():
    chosen = options("--only", "c32,streams-2000,dashboard")

    assert [scenario.name for scenario in chosen.scenarios] == ["c32", "streams-2000"]
    assert chosen.scale_parts == frozenset()
    assert chosen.dashboard_rows == DASHBOARD_ROWS


def test_only_a_scale_part_runs_no_scenario():
    chosen = options("--only", "keys")

    assert chosen.scenarios == ()
    assert chosen.scale_parts == {"keys"}
    assert chosen.dashboard_rows == 0


def test_only_workers_runs_the_workers_part_alone():
    chosen = options("--only", "workers")

    assert chosen.workers
    assert chosen.scenarios == ()
    assert chosen.scale_parts == frozenset()
    assert chosen.dashboard_rows == 0


def test_quick_shortens_the_runs_and_the_dashboard_unless_told_otherwise():
    quick = options("--quick", "--scale")
    told = options("--quick", "--scale", "--dashboard-rows", "5000", "--duration", "3")

    assert (quick.duration, quick.warmup, quick.dashboard_rows) == (2.0, 0.5, 100_000)
    assert (told.duration, told.dashboard_rows) == (3.0, 5000)


def test_an_unknown_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        arguments_parse(["--only", "c64"])

    assert "--only: unknown c64" in capsys.readouterr().err
