"""The benchmark's pure parts: wrk output parsing, percentiles, ratios, the table, the requests.

No timing here: timings belong to `python -m bench`, not to assertions.
"""

from pathlib import Path

import pytest

from bench import load, report, scenarios, upstream

# Captured from `wrk -t1 -c32 -d1s --latency` against the Python upstream on this machine.
WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:38523/v1/chat/completions
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.89ms   13.91ms  83.55ms   89.97%
    Req/Sec    29.83k     9.91k   48.46k    80.00%
  Latency Distribution
     50%  385.00us
     75%    2.79ms
     90%   19.96ms
     99%   66.14ms
  30724 requests in 1.04s, 11.81MB read
Requests/sec:  29438.45
Transfer/sec:     11.31MB
"""

# Captured from a run that sent GET to a POST-only endpoint (405s) and lost its connection.
WRK_OUTPUT_WITH_ERRORS = """\
Running 1s test @ http://127.0.0.1:46001/v1/chat/completions
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   300.36ms   41.72us 300.39ms  100.00%
    Req/Sec     3.00      0.00     3.00    100.00%
  Latency Distribution
     50%  300.36ms
     75%  300.39ms
     90%  300.39ms
     99%     1.20s
  2 requests in 1.10s, 580.00B read
  Socket errors: connect 0, read 1, write 12645, timeout 0
  Non-2xx or 3xx responses: 2
Requests/sec:      1.82
Transfer/sec:     527.20B
"""


def test_it_reads_throughput_and_percentiles_from_wrk_output():
    result = load.wrk_output_parse(WRK_OUTPUT)

    assert result.requests == 30724
    assert result.rps == 29438.45
    assert result.p50_ms == pytest.approx(0.385)
    assert result.p99_ms == pytest.approx(66.14)
    assert result.duration_s == pytest.approx(1.04)
    assert result.errors == 0


def test_it_counts_non_2xx_answers_and_socket_errors_as_errors():
    result = load.wrk_output_parse(WRK_OUTPUT_WITH_ERRORS)

    assert result.errors == 2 + 1 + 12645
    assert result.p99_ms == pytest.approx(1200.0)


def test_it_refuses_output_that_is_not_wrks():
    with pytest.raises(ValueError, match="not wrk output"):
        load.wrk_output_parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_the_wrk_script_posts_the_body_file_with_escaped_headers():
    request = scenarios.Request(
        "http://127.0.0.1:1/v1/chat/completions", b"{}", {"Authorization": 'Bearer a"b'}
    )

    script = load.wrk_script(request, Path("/tmp/body.json"))

    assert 'wrk.method = "POST"' in script
    assert 'io.open("/tmp/body.json", "rb")' in script
    assert 'wrk.headers["Authorization"] = "Bearer a\\"b"' in script


def test_percentile_is_nearest_rank():
    ordered = [float(value) for value in range(1, 101)]

    assert load.percentile(ordered, 50) == 50.0
    assert load.percentile(ordered, 99) == 99.0
    assert load.percentile([7.0], 99) == 7.0
    assert load.percentile([], 50) is None


def test_the_python_generator_sends_a_complete_post():
    raw = load.request_bytes("http://127.0.0.1:8000/v1/chat/completions", b'{"a":1}', {"X-Key": "v"})

    assert raw == (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 7\r\n"
        b'X-Key: v\r\n\r\n{"a":1}'
    )


RESULTS = {
    "upstream": {"rps": 40000.0, "p50_ms": 0.05, "p99_ms": 0.1, "errors": 0, "peak_rss_mb": 17.0},
    "floor": {"rps": 1000.0, "p50_ms": 0.8, "p99_ms": 2.0, "errors": 0, "peak_rss_mb": 55.0},
    "gateway": {"rps": 800.0, "p50_ms": 1.0, "p99_ms": 3.0, "errors": 0, "peak_rss_mb": 110.0},
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


def test_the_table_has_a_row_per_target_and_the_ratios():
    scenario = {"name": "c32", "results": RESULTS, "ratios": report.ratios(RESULTS)}

    text = report.table({"scenarios": [scenario]})

    rows = text.splitlines()
    assert rows[2].split() == ["c32", "upstream", "40000", "0.050", "0.100", "0", "17.0"]
    assert rows[4].split() == ["gateway", "800", "1.000", "3.000", "0", "110.0"]
    assert "gateway/floor 0.80x" in rows[5]
    assert "gateway +0.950 ms" in rows[5]


def test_each_target_gets_the_same_body_for_its_own_url():
    scenario = scenarios.Scenario("s", "streaming", concurrency=4, stream=True, upstream_delay_ms=100)
    common = {"upstream_port": 9000, "key": "sk-k"}

    to_upstream = scenarios.request_for("upstream", scenario, base_url="http://u:9000", **common)
    to_floor = scenarios.request_for("floor", scenario, base_url="http://f", **common)
    to_gateway = scenarios.request_for("gateway", scenario, base_url="http://g", **common)

    assert to_upstream.url == "http://u:9000/stream/v1/chat/completions"
    assert to_floor.url == "http://f/9000/stream/v1/chat/completions"
    assert to_gateway.url == "http://g/v1/chat/completions"
    assert b'"model":"bench-100ms-stream"' in to_gateway.body
    assert to_floor.body == to_upstream.body
    assert to_gateway.headers == to_floor.headers


def test_the_gateway_gets_a_deployment_per_upstream_and_mode():
    deployments = scenarios.gateway_deployments(scenarios.SCENARIOS, {0.0: "http://127.0.0.1:9000"})

    assert deployments == {
        "bench-0ms": "http://127.0.0.1:9000/v1",
        "bench-0ms-stream": "http://127.0.0.1:9000/stream/v1",
    }


def test_the_static_stream_ends_with_usage_and_done():
    events = upstream.STREAM.split(b"\n\n")

    assert events[-2:] == [b"data: [DONE]", b""]
    assert b'"usage"' in events[-3]
    assert sum(b'"content":"token' in event for event in events) == upstream.CHUNKS


def test_the_nginx_configuration_serves_both_bodies_to_post(tmp_path):
    config = upstream.nginx_config(tmp_path, 8123)

    assert "listen 127.0.0.1:8123" in config
    assert "error_page 405 =200 /stream.sse" in config
    assert "error_page 405 =200 /completion.json" in config


def test_rounds_combine_into_medians_sums_and_peaks():
    rounds = [
        {"rps": 900.0, "p50_ms": 1.0, "p99_ms": 9.0, "requests": 9000, "errors": 0, "duration_s": 10.0},
        {"rps": 1000.0, "p50_ms": 0.9, "p99_ms": 5.0, "requests": 10000, "errors": 2, "duration_s": 10.0},
        {"rps": 400.0, "p50_ms": 3.0, "p99_ms": 30.0, "requests": 4000, "errors": 0, "duration_s": 10.0},
    ]
    for index, result in enumerate(rounds):
        result |= {"peak_rss_mb": 100.0 + index, "load_average_1m": 2.0 * index}

    combined = report.rounds_combine(rounds)

    assert (combined["rps"], combined["p50_ms"], combined["p99_ms"]) == (900.0, 1.0, 9.0)
    assert (combined["requests"], combined["errors"], combined["duration_s"]) == (23000, 2, 30.0)
    assert (combined["peak_rss_mb"], combined["load_average_1m"]) == (102.0, 4.0)
    assert combined["rounds"] == rounds
    assert report.rounds_combine(rounds[:1]) is rounds[0]
