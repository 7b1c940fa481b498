"""The load runners' pure parts: wrk's output and script, percentiles.

No timing here: timings belong to `python -m bench`, not to assertions.
"""

from pathlib import Path

import pytest

from bench import load, scenarios

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
  Socket errors: connect 0, read 1, write 12645, timeout 7
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
    assert (result.errors, result.non_2xx, result.socket_errors, result.timeouts) == (0, 0, 0, 0)


def test_it_splits_errors_into_non_2xx_socket_errors_and_timeouts():
    result = load.wrk_output_parse(WRK_OUTPUT_WITH_ERRORS)

    assert result.non_2xx == 2
    assert result.socket_errors == 1 + 12645
    assert result.timeouts == 7
    assert result.errors == 2 + 1 + 12645 + 7
    assert result.p99_ms == pytest.approx(1200.0)


def test_wrk_knows_no_first_byte():
    result = load.wrk_output_parse(WRK_OUTPUT)

    assert result.first_byte_p50_ms is None
    assert result.streamed_share is None


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
    assert "request = function()" not in script


def test_the_wrk_script_rotates_the_keys_of_its_file():
    request = scenarios.Request("http://127.0.0.1:1/v1/chat/completions", b"{}", {}, keys=("sk-a", "sk-b"))

    script = load.wrk_script(request, Path("/tmp/body.json"), Path("/tmp/keys.txt"))

    assert 'io.lines("/tmp/keys.txt")' in script
    assert "index = index % #keys + 1" in script
    assert 'wrk.headers["Authorization"] = "Bearer " .. keys[index]' in script
    assert "return wrk.format()" in script


def test_a_line_break_cannot_reach_the_lua_script():
    request = scenarios.Request("http://127.0.0.1:1/", b"{}", {"X-Evil": "a\nb"})

    with pytest.raises(ValueError, match="line break"):
        load.wrk_script(request, Path("/tmp/body.json"))


def test_percentile_is_nearest_rank():
    ordered = [float(value) for value in range(1, 101)]

    assert load.percentile(ordered, 50) == 50.0
    assert load.percentile(ordered, 99) == 99.0
    assert load.percentile(ordered, 100) == 100.0
    assert load.percentile([7.0], 99) == 7.0
    assert load.percentile([1.0, 2.0], 50) == 1.0
    assert load.percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert load.percentile([], 50) is None


def test_percentile_does_not_drift_with_floats():
    ordered = [float(value) for value in range(1, 1001)]

    assert load.percentile(ordered, 99) == 990.0
    assert load.percentile(ordered, 99.9) == 999.0


def test_auto_picks_wrk_when_installed(monkeypatch):
    monkeypatch.setattr(load.shutil, "which", lambda name: "/usr/bin/wrk" if name == "wrk" else None)

    assert load.load_runner("auto") == ("wrk", load.wrk_run)
    assert load.load_runner("python") == ("python", load.python_run)


def test_without_wrk_auto_falls_back_and_wrk_is_refused(monkeypatch):
    monkeypatch.setattr(load.shutil, "which", lambda name: None)

    assert load.load_runner("auto") == ("python", load.python_run)
    with pytest.raises(RuntimeError, match="wrk is not installed"):
        load.load_runner("wrk")
