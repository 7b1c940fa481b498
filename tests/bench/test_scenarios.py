"""The scenarios as data, and the request each target gets."""

import pytest

from bench import scenarios, upstream


def by_name() -> dict[str, scenarios.Scenario]:
    return {scenario.name: scenario for scenario in scenarios.SCENARIOS}


def test_the_scenarios_are_the_issues_list():
    defined = by_name()

    assert list(defined) == ["latency-c1", "c32", "c128", "c32-stream", "slow-256", "streams-2000"]
    assert defined["latency-c1"].concurrency == 1
    assert [defined[name].concurrency for name in ("c32", "c128")] == [32, 128]
    assert not defined["c32"].stream and not defined["c128"].stream
    assert defined["c32-stream"].stream and defined["c32-stream"].concurrency == 32
    assert (defined["slow-256"].concurrency, defined["slow-256"].upstream_delay_ms) == (256, 100)


def test_the_slow_streams_are_2000_spread_over_a_second_and_timed_to_the_first_byte():
    slow = by_name()["streams-2000"]

    assert (slow.concurrency, slow.stream, slow.first_byte) == (2000, True, True)
    assert (upstream.CHUNKS, slow.chunk_interval_ms) == (20, 50)
    assert slow.stream_span_ms == 1000
    assert slow.min_warmup_s > 0


def test_only_the_instant_shape_is_static():
    assert scenarios.UpstreamShape().is_static
    assert not scenarios.UpstreamShape(delay_ms=100).is_static
    assert not scenarios.UpstreamShape(chunk_interval_ms=50).is_static
    assert scenarios.UpstreamShape(0, 50).name == "0ms-every50ms"


def test_scenarios_of_one_shape_share_an_upstream():
    shapes = {scenario.upstream for scenario in scenarios.SCENARIOS}

    assert shapes == {
        scenarios.UpstreamShape(),
        scenarios.UpstreamShape(delay_ms=100),
        scenarios.UpstreamShape(chunk_interval_ms=50),
    }


def test_a_non_streaming_scenario_has_no_span():
    assert by_name()["slow-256"].stream_span_ms == 0


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
    assert b'"include_usage":true' in to_gateway.body


def test_an_unknown_target_is_refused():
    with pytest.raises(ValueError, match="unknown target"):
        scenarios.request_for("nginx", scenarios.SCENARIOS[0], base_url="http://x", upstream_port=1, key="k")


def test_the_gateway_gets_a_model_group_per_upstream_and_mode():
    urls = {
        scenarios.UpstreamShape(): "http://127.0.0.1:9000",
        scenarios.UpstreamShape(delay_ms=100): "http://127.0.0.1:9001",
        scenarios.UpstreamShape(chunk_interval_ms=50): "http://127.0.0.1:9002",
    }

    deployments = scenarios.gateway_deployments(scenarios.SCENARIOS, urls)

    assert deployments == {
        "bench-0ms": "http://127.0.0.1:9000/v1",
        "bench-0ms-stream": "http://127.0.0.1:9000/stream/v1",
        "bench-100ms": "http://127.0.0.1:9001/v1",
        "bench-100ms-stream": "http://127.0.0.1:9001/stream/v1",
        "bench-0ms-every50ms": "http://127.0.0.1:9002/v1",
        "bench-0ms-every50ms-stream": "http://127.0.0.1:9002/stream/v1",
    }
    assert scenarios.DEPLOYMENTS_PER_GROUP == 2  # so that routing chooses


def test_scenarios_select_keeps_the_usual_order():
    chosen = scenarios.scenarios_select(["streams-2000", "c32"])

    assert [scenario.name for scenario in chosen] == ["c32", "streams-2000"]
    assert scenarios.scenarios_select([]) == scenarios.SCENARIOS


def test_scenarios_select_names_what_it_does_not_know():
    with pytest.raises(ValueError, match="unknown scenario c64"):
        scenarios.scenarios_select(["c64"])
