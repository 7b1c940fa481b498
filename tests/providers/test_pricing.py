"""Prices are asserted exactly, computed by hand from the bundled table (captured 2026-11-26)."""

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from providers.exceptions import BadRequestError, NotFoundError
from providers.pricing import completion_cost, context_window, cost_per_token, model_info
from providers.types import wrap_response

SHARED_TABLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "model_prices.json"


def chat_payload(model, usage):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": usage,
    }


def image_payload(count):
    return {"created": 1700000000, "data": [{"url": f"https://example.test/{i}.png"} for i in range(count)]}


def test_it_prices_cached_prompt_tokens_at_the_cache_read_rate():
    # gpt-4o-mini: input 0.00000015, cache read 0.000000075, output 0.0000006.
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 200},
    }
    cost = completion_cost(chat_payload("gpt-4o-mini", usage))
    # 800 * 0.00000015 + 200 * 0.000000075 + 500 * 0.0000006
    assert cost == Decimal("0.00012") + Decimal("0.000015") + Decimal("0.0003")
    assert cost == Decimal("0.000435")
    assert isinstance(cost, Decimal)


def test_it_prices_anthropic_cache_writes_and_reads_separately():
    # claude-sonnet-4-5: input 0.000003, cache write 0.00000375, cache read 0.0000003, output 0.000015.
    usage = {
        "prompt_tokens": 3000,
        "completion_tokens": 400,
        "prompt_tokens_details": {"cached_tokens": 1000},
        "cache_creation_input_tokens": 1500,
    }
    response = wrap_response("chat", chat_payload("claude-sonnet-4-5", usage), {"provider": "anthropic"})
    # 500 uncached * 0.000003 + 1000 * 0.0000003 + 1500 * 0.00000375 + 400 * 0.000015
    # = 0.0015 + 0.0003 + 0.005625 + 0.006
    assert completion_cost(response) == Decimal("0.013425")


def test_it_prices_embeddings_by_prompt_tokens():
    payload = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 1000, "total_tokens": 1000},
    }
    # 1000 * 0.00000002
    assert completion_cost(wrap_response("embedding", payload)) == Decimal("0.00002")


def test_it_prices_a_text_completion():
    usage = {"prompt_tokens": 100, "completion_tokens": 50}
    # gpt-3.5-turbo-instruct: 100 * 0.0000015 + 50 * 0.000002
    assert completion_cost(model="gpt-3.5-turbo-instruct", usage=usage) == Decimal("0.00025")


def test_it_bills_reasoning_tokens_at_the_output_rate_when_the_model_has_no_reasoning_price():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 2000,
        "completion_tokens_details": {"reasoning_tokens": 1500},
    }
    # o3-mini: 1000 * 0.0000011 + 2000 * 0.0000044 (reasoning is part of completion_tokens)
    assert completion_cost(model="o3-mini", usage=usage) == Decimal("0.0099")


def test_it_bills_reasoning_tokens_at_the_reasoning_rate_when_the_model_has_one():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 1000,
        "completion_tokens_details": {"reasoning_tokens": 600},
    }
    # dashscope/qwen-turbo: 1000 * 0.00000005 + 400 * 0.0000002 + 600 * 0.0000005
    assert completion_cost(model="dashscope/qwen-turbo", usage=usage) == Decimal("0.00043")


def test_it_prices_dall_e_3_hd_tall_images_per_pixel():
    # azure/hd/1024-x-1792/dall-e-3: input_cost_per_pixel 0.0000000719343; 1024 * 1792 = 1835008 pixels.
    cost = completion_cost(image_payload(1), model="azure/dall-e-3", size="1024x1792", quality="hd")
    assert cost == 1835008 * Decimal("0.0000000719343")
    assert cost == Decimal("0.1320000159744")


def test_it_defaults_dall_e_3_to_standard_quality_at_1024_square():
    # azure/standard/1024-x-1024/dall-e-3: 1048576 pixels * 0.0000000419617
    cost = completion_cost(image_payload(1), model="dall-e-3", provider="azure")
    assert cost == Decimal("0.0440000315392")


def test_it_prices_gpt_image_1_per_image_by_quality_and_size():
    # low/1024-x-1024/gpt-image-1: 0.011 per image, two images in the response.
    response = wrap_response("image_generation", image_payload(2))
    assert completion_cost(response, model="gpt-image-1", quality="low", size="1024x1024") == Decimal("0.022")
    # high/1536-x-1024/gpt-image-1: 0.25 per image.
    assert completion_cost(response, model="gpt-image-1", quality="high", size="1536x1024") == Decimal("0.50")


def test_it_prices_gpt_image_1_at_medium_quality_when_none_is_given():
    cost = completion_cost(model="gpt-image-1", operation="image_generation", n=3)
    assert cost == 3 * Decimal("0.042")


def test_it_bills_image_tokens_when_the_image_response_reports_usage():
    payload = image_payload(1) | {
        "usage": {
            "input_tokens": 50,
            "output_tokens": 4160,
            "total_tokens": 4210,
            "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
        }
    }
    # gpt-image-1: 40 * 0.000005 + 10 * 0.00001 (input image) + 4160 * 0.00004 (output image)
    cost = completion_cost(payload, model="gpt-image-1", quality="high")
    assert cost == Decimal("0.0002") + Decimal("0.0001") + Decimal("0.1664")


def test_it_resolves_sized_image_keys_behind_a_provider_prefix():
    # fal_ai/medium/1024-x-1024/openai/gpt-image-2: 0.053 per image (the bare entry costs 0.145).
    cost = completion_cost(model="fal_ai/openai/gpt-image-2", operation="image_generation")
    assert cost == Decimal("0.053")


def test_custom_pricing_overrides_the_table():
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 0}}
    custom = {"input_cost_per_token": "0.000001", "output_cost_per_token": 0.000002}
    cost = completion_cost(model="gpt-4o-mini", usage=usage, custom_pricing=custom)
    assert cost == Decimal("0.001") + Decimal("0.0002")


def test_custom_pricing_from_hidden_params_prices_an_unknown_model():
    usage = {"prompt_tokens": 10, "completion_tokens": 20}
    hidden = {
        "provider": "openai_compatible",
        "custom_pricing": {"input_cost_per_token": 0.5, "output_cost_per_token": 1},
    }
    response = wrap_response("chat", chat_payload("my-private-model", usage), hidden)
    assert completion_cost(response) == Decimal("25.0")


def test_custom_cache_read_price_defaults_to_the_custom_input_price_for_an_unknown_model():
    usage = {"prompt_tokens": 10, "completion_tokens": 0, "prompt_tokens_details": {"cached_tokens": 4}}
    custom = {"input_cost_per_token": "0.1", "output_cost_per_token": "0.2"}
    assert completion_cost(model="my-private-model", usage=usage, custom_pricing=custom) == Decimal("1.0")


def test_an_unknown_model_without_custom_pricing_raises_not_found():
    with pytest.raises(NotFoundError) as caught:
        completion_cost(model="no-such-model-anywhere", usage={"prompt_tokens": 1, "completion_tokens": 1})
    assert "no-such-model-anywhere" in str(caught.value)
    assert "custom_pricing" in str(caught.value)
    assert caught.value.model == "no-such-model-anywhere"


def test_an_unknown_image_model_raises_not_found():
    with pytest.raises(NotFoundError):
        completion_cost(image_payload(1), model="no-such-image-model")


def test_a_malformed_image_size_is_a_bad_request():
    with pytest.raises(BadRequestError):
        completion_cost(image_payload(1), model="dall-e-3", provider="azure", size="huge")


def test_pricing_without_a_model_is_a_bad_request():
    with pytest.raises(BadRequestError):
        completion_cost(image_payload(1))


def test_cost_per_token_splits_prompt_and_completion_cost():
    assert cost_per_token("gpt-4o-mini", 1000, 500) == (Decimal("0.00015"), Decimal("0.0003"))


def test_it_looks_up_provider_prefixed_models():
    assert model_info("openai/gpt-4o-mini")["key"] == "gpt-4o-mini"
    assert model_info("gpt-4o", provider="azure")["key"] == "azure/gpt-4o"
    assert model_info("azure/gpt-4o", provider="azure")["key"] == "azure/gpt-4o"
    assert model_info("azure/gpt-4o")["input_cost_per_token"] == Decimal("0.0000025")
    assert model_info("claude-sonnet-4-5", provider="anthropic")["provider"] == "anthropic"


def test_it_does_not_strip_a_prefix_that_is_not_a_provider():
    assert model_info("not-a-provider/gpt-4o-mini") is None


def test_it_prices_a_provider_prefixed_model_like_the_bare_one():
    usage = {"prompt_tokens": 1000, "completion_tokens": 500}
    assert completion_cost(model="openai/gpt-4o-mini", usage=usage) == Decimal("0.00045")
    # azure/gpt-4o: 1000 * 0.0000025 + 500 * 0.00001
    assert completion_cost(model="gpt-4o", provider="azure", usage=usage) == Decimal("0.0075")


def test_model_info_returns_a_copy():
    model_info("gpt-4o-mini")["input_cost_per_token"] = Decimal(1)
    assert model_info("gpt-4o-mini")["input_cost_per_token"] == Decimal("0.00000015")


def test_context_window_prefers_max_input_tokens():
    assert context_window("gpt-4o-mini") == 128000
    assert context_window("openai/gpt-4o-mini") == 128000
    assert context_window("no-such-model-anywhere") is None


def test_the_bundled_table_stores_prices_as_exact_decimal_strings():
    raw = json.loads(resources.files("providers").joinpath("data", "model_prices.json").read_text())
    assert raw["_meta"]["captured_on"] == "2026-11-26"
    assert raw["gpt-4o-mini"]["input_cost_per_token"] == "0.00000015"
    for entry in (entry for name, entry in raw.items() if name != "_meta"):
        for field in raw["_meta"]["fields"]:
            if field.endswith("_cost") or "_cost_per_" in field:
                assert field not in entry or isinstance(entry[field], str)


@pytest.mark.skipif(not SHARED_TABLE.exists(), reason="the shared reference table is not on this machine")
def test_the_bundled_table_holds_every_priced_model_of_the_shared_table():
    shared = json.loads(SHARED_TABLE.read_text())
    price_keys = (
        "input_cost_per_token",
        "output_cost_per_token",
        "output_cost_per_image",
        "input_cost_per_image",
    )
    expected = {
        name: entry
        for name, entry in shared.items()
        if name != "sample_spec"
        and entry.get("mode") in {"chat", "completion", "embedding", "image_generation"}
        and any(key in entry for key in price_keys)
    }
    assert len(expected) > 3000
    for name, entry in expected.items():
        info = model_info(name)
        assert info is not None and info["key"] == name, name
        assert info["provider"] == entry["litellm_provider"]
        for key in price_keys:
            if key in entry:
                assert info[key] == Decimal(repr(entry[key])), (name, key)
