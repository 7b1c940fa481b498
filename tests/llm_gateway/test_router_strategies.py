"""Each routing strategy's defining behaviour, and the router settings they are chosen by."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest
from django.test import AsyncClient

from llm_gateway.lookups import DeploymentSnapshot
from llm_gateway.router.settings import RouterSettings, RouterSettingsError
from llm_gateway.router.stats import RouterStats
from llm_gateway.router.strategies import (
    PickContext,
    cost_based,
    latency_based,
    least_busy,
    simple_shuffle,
    usage_based,
)
from providers.exceptions import InternalServerError, RateLimitError, Timeout
from providers.registry import PROVIDERS
from providers.upstream import ResolvedDeployment
from tests.fakes.openai_responses import chat_completion
from tests.fakes.upstream import Reply
from tests.llm_gateway.router_harness import (
    chat,
    deployment_on,
    key_create,
    requests_to,
    router_settings_set,
    router_state_reset,
)


def _deployment(model_id: str, *, weight: float = 1.0, rpm: int | None = None, tpm: int | None = None):
    return DeploymentSnapshot(
        model_id=model_id,
        model_name="gpt",
        mode="chat",
        weight=weight,
        order=1,
        rpm=rpm,
        tpm=tpm,
        spec=PROVIDERS["openai"],
        upstream=ResolvedDeployment(provider="openai", model=model_id),
        default_params={},
    )


def _picks(strategy, candidates, context: PickContext, count: int) -> Counter:
    return Counter(strategy(candidates, context).model_id for _ in range(count))


def test_simple_shuffle_follows_the_weights():
    candidates = [_deployment("heavy", weight=3), _deployment("light", weight=1)]
    context = PickContext(stats=RouterStats(), rng=random.Random(7).random)

    picks = _picks(simple_shuffle, candidates, context, 8000)

    assert picks["heavy"] / 8000 == pytest.approx(0.75, abs=0.02)


def test_simple_shuffle_without_weights_follows_rpm_capacity():
    candidates = [_deployment("big", rpm=900), _deployment("small", rpm=100)]
    context = PickContext(stats=RouterStats(), rng=random.Random(11).random)

    picks = _picks(simple_shuffle, candidates, context, 8000)

    assert picks["big"] / 8000 == pytest.approx(0.9, abs=0.02)


def test_simple_shuffle_spreads_equal_deployments_evenly():
    candidates = [_deployment(name) for name in "abcd"]
    context = PickContext(stats=RouterStats(), rng=random.Random(3).random)

    picks = _picks(simple_shuffle, candidates, context, 8000)

    assert all(count / 8000 == pytest.approx(0.25, abs=0.02) for count in picks.values())


def test_least_busy_picks_the_idle_one():
    stats = RouterStats()
    for _ in range(3):
        stats.started("busy")
    stats.started("quiet")
    candidates = [_deployment("busy"), _deployment("quiet"), _deployment("idle")]

    picks = _picks(least_busy, candidates, PickContext(stats=stats), 50)

    assert picks == Counter({"idle": 50})
    stats.finished("busy", seconds=0.1)
    stats.finished("busy", seconds=0.1)
    stats.finished("busy", seconds=0.1)
    stats.started("idle")
    stats.started("idle")
    assert least_busy(candidates, PickContext(stats=stats)).model_id == "busy"


def test_latency_based_prefers_the_faster_and_measures_the_unknown_first():
    stats = RouterStats()
    candidates = [_deployment("slow"), _deployment("fast"), _deployment("new")]
    for _ in range(5):
        stats.started("slow")
        stats.finished("slow", seconds=0.8)
        stats.started("fast")
        stats.finished("fast", seconds=0.1)

    assert latency_based(candidates, PickContext(stats=stats)).model_id == "new"
    assert latency_based(candidates[:2], PickContext(stats=stats)).model_id == "fast"


def test_latency_based_routes_streams_by_time_to_first_token():
    stats = RouterStats()
    stats.started("a")
    stats.finished("a", seconds=0.5, first_token_seconds=0.40)
    stats.started("b")
    stats.finished("b", seconds=2.0, first_token_seconds=0.05)
    candidates = [_deployment("a"), _deployment("b")]

    assert latency_based(candidates, PickContext(stats=stats, stream=False)).model_id == "a"
    assert latency_based(candidates, PickContext(stats=stats, stream=True)).model_id == "b"


def test_latency_is_measured_again_after_it_goes_stale():
    clock = [0.0]
    stats = RouterStats(clock=lambda: clock[0])
    stats.started("slow")
    stats.finished("slow", seconds=0.9)
    stats.started("fast")
    stats.finished("fast", seconds=0.1)
    clock[0] = 10_000.0  # both samples are old now: both are unknown, and tried again

    assert stats.latency("slow", stream=False) is None


def test_usage_based_picks_the_most_headroom_this_minute():
    wall = [120.0]
    stats = RouterStats(wall=lambda: wall[0])
    candidates = [_deployment("small", rpm=10), _deployment("large", rpm=1000)]
    for _ in range(5):
        stats.started("large")
    # large used 5 of 1000 (99.5% left), small none of 10 (100% left): small first.
    assert usage_based(candidates, PickContext(stats=stats)).model_id == "small"
    for _ in range(2):
        stats.started("small")
    assert usage_based(candidates, PickContext(stats=stats)).model_id == "large"
    wall[0] = 180.0  # a new minute: counters start again
    assert stats.of("small").requests == 0


def test_cost_based_picks_the_cheapest_and_puts_unpriced_last():
    candidates = [_deployment("pricey"), _deployment("cheap"), _deployment("unknown")]
    prices = {"pricey": Decimal("0.00003"), "cheap": Decimal("0.000001")}

    assert cost_based(candidates, PickContext(stats=RouterStats(), prices=prices)).model_id == "cheap"
    assert cost_based(candidates[::2], PickContext(stats=RouterStats(), prices=prices)).model_id == "pricey"


class TestSettings:
    def test_defaults_are_litellms(self):
        settings = RouterSettings.parse({})
        assert (settings.routing_strategy, settings.num_retries, settings.allowed_fails) == (
            "simple-shuffle",
            0,
            3,
        )
        assert settings.cooldown_time == 5.0

    def test_fallbacks_in_litellms_list_shape(self):
        settings = RouterSettings.parse(
            {
                "fallbacks": [{"gpt-4": ["gpt-3.5"]}, {"claude": ["gpt-4"]}],
                "default_fallbacks": ["cheap"],
                "context_window_fallbacks": [{"gpt-4": ["gpt-4-32k"]}],
            }
        )
        assert settings.fallbacks == {"gpt-4": ("gpt-3.5",), "claude": ("gpt-4",)}
        assert settings.fallbacks_for("other", InternalServerError("x")) == ("cheap",)

    def test_retry_policy_per_error_class_and_group(self):
        settings = RouterSettings.parse(
            {
                "num_retries": 2,
                "retry_policy": {"RateLimitErrorRetries": 5, "TimeoutErrorRetries": 0},
                "model_group_retry_policy": {"gpt": {"RateLimitErrorRetries": 1}},
            }
        )
        assert settings.retries_for("other", RateLimitError("x")) == 5
        assert settings.retries_for("gpt", RateLimitError("x")) == 1
        assert settings.retries_for("other", Timeout("x")) == 0
        assert settings.retries_for("other", InternalServerError("x")) == 2

    def test_strategy_per_group(self):
        group_strategies = {"gpt": "least-busy"}
        settings = RouterSettings.parse(
            {"routing_strategy": "usage-based-routing-v2", "model_group_routing_strategy": group_strategies}
        )
        assert settings.strategy_for("gpt") == "least-busy"
        assert settings.strategy_for("claude") == "usage-based-routing"

    @pytest.mark.parametrize(
        ("raw", "names"),
        [
            ({"routing_strategy": "fastest"}, "routing_strategy"),
            ({"num_retries": -1}, "num_retries"),
            ({"fallbacks": "gpt"}, "fallbacks"),
            ({"retry_policy": {"NopeRetries": 1}}, "NopeRetries"),
            ({"cooldown_time": "soon"}, "cooldown_time"),
        ],
    )
    def test_wrong_shapes_are_named(self, raw, names):
        with pytest.raises(RouterSettingsError, match=names):
            RouterSettings.parse(raw)


@pytest.mark.django_db(transaction=True)
async def test_latency_based_routing_moves_traffic_to_the_faster_deployment(upstream):
    router_state_reset()
    await deployment_on(upstream, "slow")
    await deployment_on(upstream, "fast")
    await router_settings_set(routing_strategy="latency-based-routing")
    upstream.override("^/slow/", _slow)
    _, secret = await key_create(key_alias="latency")
    client = AsyncClient()

    for _ in range(20):
        assert (await chat(client, secret)).status_code == 200

    # Both were measured once; from then on, the fast one takes the traffic.
    assert len(requests_to(upstream, "slow")) == 1
    assert len(requests_to(upstream, "fast")) == 19
    router_state_reset()


def _slow(_) -> Reply:
    return Reply(json=chat_completion("model-slow"), delay=0.3)
