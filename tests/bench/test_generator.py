"""The Python generator's pure parts: the bytes it sends and how it counts what came back.

Times here are made-up numbers given to the counting code, not measurements.
"""

from itertools import islice

import pytest

from bench import generator


def test_the_generator_sends_a_complete_post():
    raw = generator.request_bytes("http://127.0.0.1:8000/v1/chat/completions", b'{"a":1}', {"X-Key": "v"})

    assert raw == (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 7\r\n"
        b'X-Key: v\r\n\r\n{"a":1}'
    )


def test_without_keys_every_request_is_the_same():
    payloads = generator.request_payloads("http://h:1/p", b"{}", {"Authorization": "Bearer sk-x"}, [])

    first, second = islice(payloads, 2)

    assert first == second
    assert b"Authorization: Bearer sk-x" in first


def test_with_keys_each_request_carries_the_next_key_in_turn():
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-probe"}
    payloads = generator.request_payloads("http://h:1/p", b"{}", headers, ["sk-a", "sk-b"])

    sent = list(islice(payloads, 3))

    assert [payload.count(b"Authorization:") for payload in sent] == [1, 1, 1]
    assert [b"Bearer sk-a" in payload for payload in sent] == [True, False, True]
    assert [b"Bearer sk-b" in payload for payload in sent] == [False, True, False]
    assert all(b"sk-probe" not in payload for payload in sent)
    assert all(b"Content-Type: application/json" in payload for payload in sent)


def window() -> generator.Window:
    return generator.Window(measure_from=10.0, end=20.0)


def test_answers_count_when_they_end_inside_the_window():
    counted = window()

    counted.record(started=9.0, finished=11.0, status=200)  # started in the warm-up: counts
    counted.record(started=12.0, finished=12.5, status=200)
    counted.record(started=8.0, finished=9.5, status=200)  # ended in the warm-up
    counted.record(started=19.0, finished=21.0, status=200)  # ended after the window

    assert counted.answers == 2
    assert counted.latencies == [2.0, 0.5]


def test_errors_are_split_by_kind():
    counted = window()

    counted.record(started=11.0, finished=11.1, status=503)
    counted.record(started=11.0, finished=12.0, status=0, error="socket")
    counted.record(started=11.0, finished=13.0, status=0, error="timeout")

    result = counted.result(duration=10.0, lead=0.0, connections_peak=3)

    assert (result.non_2xx, result.socket_errors, result.timeouts, result.errors) == (1, 1, 1, 3)
    assert result.requests == 1  # the 503 is an answer; the failures are not
    assert result.connections_peak == 3


def test_the_result_gives_rate_percentiles_and_first_bytes():
    counted = window()
    for index in range(100):
        started = 10.0 + index * 0.05
        counted.record(started, started + 1.0 + index / 1000, 200, first_byte=started + 0.01 * (index + 1))

    result = counted.result(duration=10.0, lead=0.0, connections_peak=100)

    assert result.rps == 10.0
    assert result.p50_ms == pytest.approx(1049.0)
    assert result.p99_ms == pytest.approx(1098.0)
    assert result.first_byte_p50_ms == pytest.approx(500.0)
    assert result.first_byte_p99_ms == pytest.approx(990.0)
    assert result.streamed_share is None  # no lead asked for


def test_a_stream_counts_as_relayed_when_its_first_byte_came_early_enough():
    counted = window()
    counted.record(11.0, 12.0, 200, first_byte=11.01)  # first byte 990 ms before the last
    counted.record(11.0, 12.0, 200, first_byte=11.5)  # 500 ms before: just enough
    counted.record(11.0, 12.0, 200, first_byte=11.99)  # buffered: 10 ms before

    result = counted.result(duration=10.0, lead=0.5, connections_peak=3)

    assert result.streamed_share == pytest.approx(2 / 3, abs=1e-4)


def test_an_empty_window_has_no_percentiles():
    result = window().result(duration=10.0, lead=0.5, connections_peak=0)

    assert (result.requests, result.rps, result.p50_ms, result.first_byte_p50_ms) == (0, 0.0, None, None)
    assert result.streamed_share is None
