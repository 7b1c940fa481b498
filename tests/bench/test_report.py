"""The report: ratios, rounds, the text tables.

No timing here: timings belong to `python -m bench`, not to assertions.
"""

import pytest

from bench import report

RESULTS = {
    "upstream": {"rps": 40000.0, "p50_ms": 0.05, "p99_ms": 0.1, "errors": 0, "peak_rss_mb": 17.0},
    "floor": {"rps": 1000.0, "p50_ms": 0.8, "p99_ms": 2.0, "errors": 0, "peak_rss_mb": 55.0},
    "gateway": {
        "rps": 800.0,
        "p50_ms": 1.0,
        "p99_ms": 3.0,
        "errors": 6,
        "non_2xx": 1,
        "socket_errors": 2,
        "timeouts": 3,
        "peak_rss_mb": 110.0,
    },
}


def test_ratios_compare_the_gateway_with_the_floor_and_the_upstream():
    ratios = report.ratios(RESULTS)

    assert ratios["gateway/floor"] == {"rps": 0.8, "p50": 1.25}
    assert ratios["gateway/upstream"] == {"rps": 0.02, "p50": 20.0}
    assert ratios["added_p50_ms"] == {"floor": 0.75, "gateway": 0.95}


def test_ratios_are_empty_where_a_target_has_no_numbers():
    ratios = report.ratios({"gateway": RESULTS["gateway"], "floor": {"rps": 0.0, "p50_ms": None}})

    assert ratios["gateway/floor"] == {"rps": None, "p50": None}
    assert ratios["added_p50_ms"] == {"floor": None, "gateway": None}


def test_a_ratio_needs_both_numbers_and_a_nonzero_denominator():
    assert report.ratio(1.0, 3.0) == 0.333
    assert report.ratio(None, 3.0) is None
    assert report.ratio(1.0, 0.0) is None
    assert report.ratio(0.0, 2.0) == 0.0


def test_the_table_has_a_row_per_target_and_the_ratios():
    scenario = {"name": "c32", "results": RESULTS, "ratios": report.ratios(RESULTS)}

    text = report.table({"scenarios": [scenario]})

    rows = text.splitlines()
    assert (
        " ".join(rows[0].split()) == "scenario target req/s p50 ms p99 ms non-2xx socket timeout peak RSS MB"
    )
    assert rows[2].split() == ["c32", "upstream", "40000", "0.050", "0.100", "-", "-", "-", "17.0"]
    assert rows[4].split() == ["gateway", "800", "1.000", "3.000", "1", "2", "3", "110.0"]
    assert "gateway/floor 0.80x" in rows[5]
    assert "gateway +0.950 ms" in rows[5]


def test_the_table_tells_first_byte_from_total_for_first_byte_scenarios():
    results = {
        target: {"rps": 100.0, "p50_ms": total, "first_byte_p50_ms": first, "streamed_share": share}
        for target, total, first, share in (
            ("upstream", 1001.0, 2.0, 1.0),
            ("floor", 1100.0, 40.0, 1.0),
            ("gateway", 1500.0, 1499.0, 0.0),
        )
    }
    scenario = {
        "name": "streams-2000",
        "first_byte": True,
        "stream_span_ms": 1000.0,
        "results": results,
        "ratios": report.ratios(results),
    }

    rows = report.table({"scenarios": [scenario]}).splitlines()

    assert "first byte p50: upstream 2.0 ms, floor 40.0 ms, gateway 1,499.0 ms" in rows[6]
    assert "(total p50 1,001.0 ms / 1,100.0 ms / 1,500.0 ms)" in rows[6]
    assert "first byte >= 500 ms before the last: 100.0% / 100.0% / 0.0% of streams" in rows[7]


def test_the_table_ends_with_the_memory_left_after_the_runs():
    scenario = {"name": "c32", "results": RESULTS, "ratios": report.ratios(RESULTS)}

    text = report.table({"scenarios": [scenario], "rss_after_runs_mb": {"gateway": 180.5, "floor": 60.0}})

    assert text.splitlines()[-1] == "Memory after the runs (RSS): gateway 180.5 MB, floor 60.0 MB"


def test_rounds_combine_into_medians_sums_and_peaks():
    rounds = [
        {"rps": 900.0, "p50_ms": 1.0, "p99_ms": 9.0, "requests": 9000, "errors": 0, "duration_s": 10.0},
        {"rps": 1000.0, "p50_ms": 0.9, "p99_ms": 5.0, "requests": 10000, "errors": 2, "duration_s": 10.0},
        {"rps": 400.0, "p50_ms": 3.0, "p99_ms": 30.0, "requests": 4000, "errors": 0, "duration_s": 10.0},
    ]
    for index, result in enumerate(rounds):
        result |= {"peak_rss_mb": 100.0 + index, "load_average_1m": 2.0 * index, "timeouts": index}
        result |= {"streamed_share": 1.0 - index / 10}

    combined = report.rounds_combine(rounds)

    assert (combined["rps"], combined["p50_ms"], combined["p99_ms"]) == (900.0, 1.0, 9.0)
    assert (combined["requests"], combined["errors"], combined["duration_s"]) == (23000, 2, 30.0)
    assert combined["timeouts"] == 3
    assert (combined["peak_rss_mb"], combined["load_average_1m"]) == (102.0, 4.0)
    assert combined["streamed_share"] == pytest.approx(0.8)
    assert combined["rounds"] == rounds
    assert report.rounds_combine(rounds[:1]) is rounds[0]


def test_microseconds_per_request_is_one_over_the_rate():
    assert report.microseconds_per_request(800.0) == 1250.0
    assert report.microseconds_per_request(0.0) is None
    assert report.microseconds_per_request(None) is None


SCALE_STEPS = [
    {"name": "keys-10", "description": "10 keys", "baseline": "", "result": {"rps": 500.0, "p50_ms": 60.0}},
    {
        "name": "keys-100k-warm",
        "description": "100,000 keys",
        "baseline": "keys-10",
        "result": {"rps": 400.0, "p50_ms": 75.0, "p99_ms": 90.0, "errors": 0, "peak_rss_mb": 200.0},
    },
]


def test_scale_ratios_compare_each_step_with_its_baseline():
    compared = report.scale_ratios(SCALE_STEPS)

    assert compared == {"keys-100k-warm": {"against": "keys-10", "rps": 0.8, "p50": 1.25}}


def test_the_scale_table_gives_the_time_per_request_and_the_comparison():
    section = {
        "steps": SCALE_STEPS,
        "comparisons": report.scale_ratios(SCALE_STEPS),
        "rss_after_runs_mb": 210.0,
    }

    rows = report.scale_table(section)

    assert rows[4].split() == ["keys-100k-warm", "400", "75.000", "90.000", "0", "2500", "200.0"]
    assert rows[5].strip() == "100,000 keys; against keys-10: req/s 0.80x, p50 1.25x"
    assert rows[-1] == "Scale gateway memory after the runs (RSS): 210.0 MB"


def test_the_dashboard_lines_give_the_median_and_the_database():
    figures = {
        "rows": 10_000_000,
        "rollup_rows": 120_000,
        "days": 30,
        "reused": False,
        "generate_s": 300.0,
        "rollup_s": 90.5,
        "first_render_ms": 2500.0,
        "renders_ms": [1200.0, 1100.0, 1300.0],
        "median_ms": 1200.0,
        "queries": 18,
    }

    first, second = report.dashboard_lines(figures)

    assert "10,000,000 ledger rows, 120,000 rollup rows" in first
    assert "median 1,200.0 ms over 3 renders (first 2,500.0 ms, 18 queries)" in second
    assert "generated in 300 s, rolled up in 90.5 s" in second
    assert "reused" in report.dashboard_lines(figures | {"reused": True})[1]


def workers_run(name: str, baseline: str, result: dict) -> dict:
    target, count = name.split("-")
    cores = "0" if count == "1w" else "0,1"
    command = "manage.py serve" if target == "gateway" else "uvicorn"
    server = f"{command} --workers {count[0]}"
    base = {"load_generator": "wrk", "load_average_1m": 1.25}
    return {
        "name": name,
        "target": target,
        "server": server,
        "cores": cores,
        "baseline": baseline,
        "upstream": "nginx",
        "result": base | result,
    }


WORKERS_RUNS = [
    workers_run("gateway-1w", "", {"rps": 1000.0, "p50_ms": 30.0, "server_cores": 1.0, "load_cores": 0.1}),
    workers_run(
        "gateway-2w",
        "gateway-1w",
        {"rps": 1600.0, "p50_ms": 20.0, "p99_ms": 90.0, "errors": 0, "server_cores": 1.6, "load_cores": 0.3},
    ),
    workers_run("floor-1w", "", {"rps": 800.0, "p50_ms": 40.0, "server_cores": 1.0}),
    workers_run("floor-2w", "floor-1w", {"rps": 1400.0, "p50_ms": 23.0, "server_cores": 2.0}),
]


def workers_section() -> dict:
    return {
        "scenario": "c32",
        "cpus": 2,
        "load_cores_pinned": "1",
        "runs": WORKERS_RUNS,
        "comparisons": report.workers_ratios(WORKERS_RUNS),
        "target_ratio": 1.7,
    }


def test_workers_ratios_compare_two_workers_with_one_per_request_and_per_core():
    compared = report.workers_ratios(WORKERS_RUNS)

    assert compared["gateway-2w"] == {
        "against": "gateway-1w",
        "rps": 1.6,
        "p50": 0.667,
        "rps_per_server_core": 1.0,
    }
    assert compared["floor-2w"]["rps"] == 1.75
    assert compared["floor-2w"]["rps_per_server_core"] == 0.875
    assert set(compared) == {"gateway-2w", "floor-2w"}


def test_a_run_without_its_cores_has_no_per_core_ratio():
    runs = [
        workers_run("gateway-1w", "", {"rps": 1000.0}),
        workers_run("gateway-2w", "gateway-1w", {"rps": 1500.0}),
    ]

    assert report.workers_ratios(runs)["gateway-2w"]["rps_per_server_core"] is None


def test_the_workers_table_has_a_row_per_run_and_its_cores():
    rows = report.workers_table(workers_section())

    assert " ".join(rows[0].split()) == (
        "workers (c32) req/s p50 ms p99 ms errors server cores load cores peak RSS MB"
    )
    assert rows[4].split() == ["gateway-2w", "1600", "20.000", "90.000", "0", "1.60", "0.30", "-"]
    assert rows[5].strip() == (
        "manage.py serve --workers 2, on cores 0,1, load average 1.25; "
        "against gateway-1w: req/s 1.60x, req/s per server core 1.00x"
    )
    assert rows[7].strip() == "uvicorn --workers 1, on core 0, load average 1.25"


def test_the_workers_ratio_line_puts_both_ratios_side_by_side_with_the_caveat():
    ratio_line, explanation = report.workers_table(workers_section())[-2:]

    assert ratio_line.startswith("2w/1w req/s: gateway 1.60x, floor 1.75x (issue 6: gateway >= 1.70x)")
    assert (
        "caveat: 2 cores only, the 2 workers share core 1 with nginx and wrk (0.30 cores in gateway-2w)"
        in (ratio_line)
    )
    assert "2.00x is out of reach" in explanation


def test_the_report_table_includes_the_workers_part():
    text = report.table({"scenarios": [], "workers": workers_section()})

    assert "gateway-2w" in text
    assert "2w/1w req/s" in text


def test_rounds_combine_takes_the_median_cores():
    rounds = [{"rps": 1.0, "server_cores": cores, "load_cores": 0.1} for cores in (1.0, 0.4, 0.9)]

    combined = report.rounds_combine(rounds)

    assert (combined["server_cores"], combined["load_cores"]) == (0.9, 0.1)
