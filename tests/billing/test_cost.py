"""What usage costs at a quote's prices, to the exact Decimal, hand-computed from the bundled table."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import pricing
from billing.costs import PriceQuote, cost_of, quote_make, usage_buckets, worst_case_cost
from billing.pricing import price_for
from providers.pricing import completion_cost
from tests.llm_gateway.factories import deployment_make

pytestmark = pytest.mark.django_db

AT = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_price_book():
    pricing.book.clear()
    yield
    pricing.book.clear()


def quote(model: str, provider: str = "openai", deployment_id: str = "") -> PriceQuote:
    return price_for(model, provider, deployment_id, AT)


def test_gpt_4o_mini_with_cached_prompt_tokens():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "total_tokens": 1200,
        "prompt_tokens_details": {"cached_tokens": 400},
    }
    # 600 x $0.15/M + 400 x $0.075/M (cache read) + 200 x $0.60/M
    expected = Decimal("0.00009") + Decimal("0.00003") + Decimal("0.00012")

    assert cost_of(quote("gpt-4o-mini"), usage, "chat") == expected == Decimal("0.00024")


def test_an_anthropic_model_with_cache_writes_and_reads():
    # Our Anthropic translation counts cache reads and writes inside prompt_tokens.
    usage = {
        "prompt_tokens": 10_000,
        "completion_tokens": 500,
        "prompt_tokens_details": {"cached_tokens": 6000},
        "cache_creation_input_tokens": 3000,
    }
    # claude-sonnet-4-5: 1000 x $3/M + 6000 x $0.30/M + 3000 x $3.75/M + 500 x $15/M
    expected = Decimal("0.003") + Decimal("0.0018") + Decimal("0.01125") + Decimal("0.0075")

    assert cost_of(quote("claude-sonnet-4-5", "anthropic"), usage, "chat") == expected == Decimal("0.02355")


def test_an_o_series_model_with_reasoning_tokens():
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 500,
        "completion_tokens_details": {"reasoning_tokens": 300},
    }
    # o3-mini has no reasoning price: reasoning is output. 100 x $1.10/M + (200 + 300) x $4.40/M
    assert cost_of(quote("o3-mini"), usage, "chat") == Decimal("0.00011") + Decimal("0.0022")


def test_reasoning_tokens_at_their_own_price():
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 500,
        "completion_tokens_details": {"reasoning_tokens": 300},
    }
    # dashscope/qwen-turbo: 100 x $0.05/M + 200 x $0.20/M (output) + 300 x $0.50/M (reasoning)
    expected = Decimal("0.000005") + Decimal("0.00004") + Decimal("0.00015")

    assert cost_of(quote("qwen-turbo", "dashscope"), usage, "chat") == expected


def test_an_embedding():
    usage = {"prompt_tokens": 1234, "total_tokens": 1234}

    # 1234 x $0.02/M
    assert cost_of(quote("text-embedding-3-small"), usage, "embedding") == Decimal("0.00002468")


def test_an_image_model_priced_per_image():
    flux = quote("flux-pro-1.1", "black_forest_labs")

    assert cost_of(flux, {}, "image_generation", images=3) == Decimal("0.12")


def test_an_image_priced_per_pixel_at_the_size_of_its_price():
    dalle = quote("hd/1024-x-1024/dall-e-3", "azure")

    # 1024 x 1024 pixels x $0.0000000839233
    assert cost_of(dalle, {}, "image_generation", images=2) == 2 * 1024 * 1024 * Decimal("0.0000000839233")


def test_a_token_billed_image_model():
    usage = {
        "input_tokens": 50,
        "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
        "output_tokens": 4160,
        "total_tokens": 4210,
    }
    # gpt-image-1: 40 x $5/M (text) + 10 x $10/M (image in) + 4160 x $40/M (image out)
    expected = Decimal("0.0002") + Decimal("0.0001") + Decimal("0.1664")

    assert cost_of(quote("gpt-image-1"), usage, "image_generation", images=1) == expected


def test_a_custom_deployment_price():
    deployment_make(
        model_id="dep-1",
        model="house-llm",
        model_info={"input_cost_per_token": 0.000001, "output_cost_per_token": "0.000003"},
    )
    usage = {"prompt_tokens": 1000, "completion_tokens": 500}

    # 1000 x $1/M + 500 x $3/M
    assert cost_of(quote("house-llm", deployment_id="dep-1"), usage, "chat") == Decimal("0.0025")


@pytest.mark.parametrize(
    ("model", "provider", "usage"),
    [
        (
            "gpt-4o-mini",
            "openai",
            {"prompt_tokens": 1000, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 512}},
        ),
        (
            "claude-haiku-4-5",
            "anthropic",
            {
                "prompt_tokens": 9000,
                "completion_tokens": 41,
                "prompt_tokens_details": {"cached_tokens": 2048},
                "cache_creation_input_tokens": 4096,
            },
        ),
        (
            "o4-mini",
            "openai",
            {
                "prompt_tokens": 77,
                "completion_tokens": 900,
                "completion_tokens_details": {"reasoning_tokens": 640},
            },
        ),
        (
            "gemini-2.5-flash",
            "vertex_ai",
            {
                "prompt_tokens": 3,
                "completion_tokens": 11,
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
        ),
    ],
)
def test_it_charges_what_the_provider_library_charges(model, provider, usage):
    assert cost_of(quote(model, provider), usage, "chat") == completion_cost(
        model=model, provider=provider, usage=usage
    )


def test_an_unpriced_model_costs_nothing():
    usage = {"prompt_tokens": 1000, "completion_tokens": 1000}

    assert cost_of(quote("no-such-model-xyz"), usage, "chat") == 0
    assert cost_of(quote("no-such-model-xyz"), usage, "image_generation", images=2) == 0


def test_parts_larger_than_their_total_never_charge_negative():
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 50},
        "completion_tokens_details": {"reasoning_tokens": 9},
    }
    prices = quote_make(
        {"input_cost_per_token": Decimal("0.000001"), "output_cost_per_token": Decimal("0.000002")},
        source="admin",
    )

    # 50 cached x $1/M + 9 reasoning x $2/M, nothing for the negative remainders.
    assert cost_of(prices, usage, "chat") == Decimal("0.000068")


def test_usage_buckets_are_the_ledger_fields():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 300,
        "total_tokens": 1300,
        "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
        "cache_creation_input_tokens": 100,
        "completion_tokens_details": {"reasoning_tokens": 250},
    }

    assert usage_buckets(usage) == {
        "prompt_tokens": 1000,
        "completion_tokens": 300,
        "cached_tokens": 200,
        "cache_creation_tokens": 100,
        "reasoning_tokens": 250,
    }


def test_usage_buckets_read_images_usage_and_survive_nonsense():
    assert usage_buckets({"input_tokens": 50, "output_tokens": 4160}) == {
        "prompt_tokens": 50,
        "completion_tokens": 4160,
        "cached_tokens": 0,
        "cache_creation_tokens": 0,
        "reasoning_tokens": 0,
    }
    nonsense = {
        "prompt_tokens": "many",
        "completion_tokens": -5,
        "prompt_tokens_details": None,
        "completion_tokens_details": {"reasoning_tokens": None},
    }
    assert set(usage_buckets(nonsense).values()) == {0}
    assert set(usage_buckets({}).values()) == {0}


def test_the_worst_case_prices_every_prompt_token_as_input_and_the_whole_output_cap():
    # gpt-4o-mini: 1000 x $0.15/M + 500 x $0.60/M, whatever the cache will read.
    assert worst_case_cost(quote("gpt-4o-mini"), 1000, 500) == Decimal("0.00045")


def test_the_worst_case_covers_a_prompt_written_whole_to_the_cache():
    # claude-sonnet-4-5 writes cost $3.75/M against $3/M for input: 1000 x $3.75/M + 100 x $15/M.
    assert worst_case_cost(quote("claude-sonnet-4-5", "anthropic"), 1000, 100) == Decimal("0.00525")


def test_the_worst_case_takes_the_dearer_of_output_and_reasoning():
    # dashscope/qwen-turbo reasons at $0.50/M against $0.20/M output: 10 x $0.05/M + 100 x $0.50/M.
    assert worst_case_cost(quote("qwen-turbo", "dashscope"), 10, 100) == Decimal("0.0000505")


def test_the_worst_case_of_images():
    assert worst_case_cost(quote("flux-pro-1.1", "black_forest_labs"), 0, 0, images=2) == Decimal("0.08")
    # gpt-image-1: 20 prompt tokens x $5/M + 2 images x 6240 tokens x $40/M (its largest image).
    assert worst_case_cost(quote("gpt-image-1"), 20, 0, images=2) == Decimal("0.0001") + Decimal("0.4992")
