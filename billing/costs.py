"""What a request's usage costs at a price quote: token buckets, costs, worst-case holds.

Usage is OpenAI's: cache reads (``prompt_tokens_details.cached_tokens``) and cache writes
(``cache_creation_input_tokens``) are part of ``prompt_tokens``, reasoning tokens
(``completion_tokens_details.reasoning_tokens``) part of ``completion_tokens``. The arithmetic is
``providers.pricing``'s; ``tests/billing/test_cost.py`` holds the two to the same result. Where the
quote comes from is ``billing.pricing``'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
INPUT = "input_cost_per_token"
OUTPUT = "output_cost_per_token"
CACHE_READ = "cache_read_input_token_cost"
CACHE_WRITE = "cache_creation_input_token_cost"
REASONING = "output_cost_per_reasoning_token"
PER_IMAGE = "output_cost_per_image"
# The most output tokens one image can cost: gpt-image-1 at high quality, 1024x1536 or 1536x1024
# (https://platform.openai.com/docs/guides/image-generation#cost-and-latency). Budget holds only.
MAX_TOKENS_PER_IMAGE = 6240


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """The prices to charge one request at, and the ledger's record of where they came from.

    ``prices`` holds the non-null prices by field name (``input_cost_per_token``...), ``snapshot``
    the same as strings plus ``source`` (``admin`` or ``bundled`` for a Price row, with its
    ``price_id``; ``model_info``, ``price_table`` or ``unpriced`` otherwise). Quotes are shared
    between requests: treat both mappings as read-only.
    """

    prices: Mapping[str, Decimal]
    snapshot: dict[str, str]

    @property
    def source(self) -> str:
        return self.snapshot["source"]


def _plain(value: Decimal) -> str:
    """Return a price the way a person writes it: 0.00000015, not 1.50000000000000E-7."""
    return f"{value.normalize():f}"


def quote_make(prices: Mapping[str, Decimal], **origin: str) -> PriceQuote:
    """Return a quote of ``prices`` whose snapshot names its ``origin`` (``source=...`` and more)."""
    return PriceQuote(
        prices=dict(prices), snapshot={**{name: _plain(value) for name, value in prices.items()}, **origin}
    )


UNPRICED = quote_make({INPUT: ZERO, OUTPUT: ZERO}, source="unpriced")


def _count(usage: Any, *path: str) -> int:
    for name in path:
        # dict first: usage is one nearly always, and the Mapping check costs more than the look-up.
        usage = usage.get(name) if isinstance(usage, dict | Mapping) else None
    if type(usage) is int:
        return max(usage, 0)
    if isinstance(usage, bool):
        return 0
    try:
        return max(int(usage or 0), 0)
    except (TypeError, ValueError):
        return 0  # a malformed count from an upstream must not fail the request


def usage_buckets(usage: Mapping[str, Any]) -> dict[str, int]:
    """Return the ledger's token buckets of an OpenAI usage dict (images API usage included).

    Keys are the ledger's fields: ``prompt_tokens``, ``completion_tokens``, ``cached_tokens`` and
    ``cache_creation_tokens`` (both part of the prompt), ``reasoning_tokens`` (part of the completion).
    """
    return {
        "prompt_tokens": _count(usage, "prompt_tokens") or _count(usage, "input_tokens"),
        "completion_tokens": _count(usage, "completion_tokens") or _count(usage, "output_tokens"),
        "cached_tokens": _count(usage, "prompt_tokens_details", "cached_tokens"),
        "cache_creation_tokens": _count(usage, "cache_creation_input_tokens")
        or _count(usage, "prompt_tokens_details", "cache_creation_tokens"),
        "reasoning_tokens": _count(usage, "completion_tokens_details", "reasoning_tokens"),
    }


def tokens_cost(
    prices: Mapping[str, Decimal],
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    cache_creation_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Decimal:
    """Return the cost of token counts: ``providers.pricing.cost_per_token``'s formula on given prices.

    Cache reads and writes cost the cache prices, or the input price when there is none; reasoning
    tokens the reasoning price, or the output price.
    """
    input_price = prices.get(INPUT, ZERO)
    output_price = prices.get(OUTPUT, ZERO)
    # Clamp: a usage block whose parts exceed its total must not produce a negative charge.
    uncached = max(prompt_tokens - cached_tokens - cache_creation_tokens, 0)
    visible_output = max(completion_tokens - reasoning_tokens, 0)
    return (
        uncached * input_price
        + cached_tokens * prices.get(CACHE_READ, input_price)
        + cache_creation_tokens * prices.get(CACHE_WRITE, input_price)
        + visible_output * output_price
        + reasoning_tokens * prices.get(REASONING, output_price)
    )


def _per_image(prices: Mapping[str, Decimal]) -> Decimal | None:
    # As providers.pricing.image_cost: the table prices some models' images as input_cost_per_image.
    return prices.get(PER_IMAGE, prices.get("input_cost_per_image"))


def _image_cost(prices: Mapping[str, Decimal], usage: Mapping[str, Any], images: int) -> Decimal:
    if "output_cost_per_image_token" in prices and isinstance(usage, Mapping) and "output_tokens" in usage:
        # gpt-image models bill their tokens: text and image input, image output.
        image_input = _count(usage, "input_tokens_details", "image_tokens")
        text_input = max(_count(usage, "input_tokens") - image_input, 0)
        return (
            text_input * prices.get(INPUT, ZERO)
            + image_input * prices.get("input_cost_per_image_token", ZERO)
            + _count(usage, "output_tokens") * prices["output_cost_per_image_token"]
        )
    per_image = _per_image(prices)
    if per_image is not None:
        return images * per_image
    return tokens_cost(prices, **usage_buckets(usage))  # an image model priced per token


def cost_of(quote: PriceQuote, usage: Mapping[str, Any], operation: str, images: int = 0) -> Decimal:
    """Return the exact cost in dollars of one request's usage at ``quote``'s prices.

    Chat and text completions: uncached prompt tokens at the input price, cache reads and writes at
    theirs, visible output at the output price, reasoning at the reasoning price. Embeddings: prompt
    tokens at the input price. Image generation: ``images`` at the per-image price, or the image
    tokens of a token-billed model (gpt-image).
    """
    if operation == "image_generation":
        return _image_cost(quote.prices, usage, images)
    buckets = usage_buckets(usage)
    if operation == "embedding":
        return buckets["prompt_tokens"] * quote.prices.get(INPUT, ZERO)
    return tokens_cost(quote.prices, **buckets)


def worst_case_cost(
    quote: PriceQuote, prompt_tokens: int, max_output_tokens: int, *, images: int = 0
) -> Decimal:
    """Return the most a request can cost, the budget hold taken before the upstream call.

    Every prompt token at the input price (or the cache-write price when it is higher: a prompt can be
    written to the cache whole), every output token at the higher of the output and reasoning prices,
    and each image at the per-image price (a token-billed image model: at its largest image's tokens).
    """
    prices = quote.prices
    input_price = prices.get(INPUT, ZERO)
    prompt_price = max(input_price, prices.get(CACHE_WRITE, ZERO))
    output_price = max(prices.get(OUTPUT, ZERO), prices.get(REASONING, ZERO))
    cost = prompt_tokens * prompt_price + max_output_tokens * output_price
    if images:
        per_image = _per_image(prices) or ZERO
        if "output_cost_per_image_token" in prices:
            per_image = max(per_image, MAX_TOKENS_PER_IMAGE * prices["output_cost_per_image_token"])
        cost += images * per_image
    return cost
