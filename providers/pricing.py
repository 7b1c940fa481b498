"""Price a call: tokens and images in, exact ``Decimal`` US dollars out.

Prices come from the bundled table (``providers.price_table``) unless the caller passes
``custom_pricing`` (a deployment's price override), whose keys win over the table's. Usage is read in
OpenAI's format, where cache reads (``prompt_tokens_details.cached_tokens``) and Anthropic cache writes
(``cache_creation_input_tokens``) are part of ``prompt_tokens``, and reasoning tokens
(``completion_tokens_details.reasoning_tokens``) are part of ``completion_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from providers.exceptions import BadRequestError, NotFoundError
from providers.price_table import PRICE_FIELDS, context_window, model_info, provider_names

__all__ = ["completion_cost", "context_window", "cost_per_token", "image_cost", "model_info"]

ZERO = Decimal(0)
DEFAULT_IMAGE_SIZE = "1024x1024"
# Tried in order when the caller names no quality: the table's size-only entry, DALL-E 3's default
# ("standard"), then gpt-image's middle tier ("medium", our estimate for OpenAI's "auto").
DEFAULT_IMAGE_QUALITIES = (None, "standard", "medium")


def _field(source: Any, name: str) -> Any:
    """Return ``name`` from a dict or an attribute of a response object (None when absent)."""
    if source is None:
        return None
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _count(source: Any, *path: str) -> int:
    for name in path:
        source = _field(source, name)
    return int(source or 0)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequestError(f"custom price {value!r} is not a number")
    # repr() of a float is the shortest exact spelling of what the caller typed; Decimal(float) is not.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _custom_prices(custom_pricing: Mapping[str, Any] | None) -> dict[str, Decimal]:
    if not custom_pricing:
        return {}
    return {
        name: _decimal(value)
        for name, value in custom_pricing.items()
        if name in PRICE_FIELDS and value is not None
    }


def _not_priced(model: str, provider: str | None, what: str) -> NotFoundError:
    return NotFoundError(
        f"no {what} for model {model!r} in the bundled price table; pass custom_pricing="
        "{'input_cost_per_token': ..., 'output_cost_per_token': ...} (or a per-image price) to price it",
        provider=provider,
        model=model,
    )


def _prices(model: str, provider: str | None, custom_pricing: Mapping[str, Any] | None) -> dict[str, Any]:
    custom = _custom_prices(custom_pricing)
    entry = model_info(model, provider)
    if entry is None and not custom:
        raise _not_priced(model, provider, "price")
    return {**(entry or {}), **custom}


def cost_per_token(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    provider: str | None = None,
    *,
    cached_tokens: int = 0,
    cache_creation_tokens: int = 0,
    reasoning_tokens: int = 0,
    custom_pricing: Mapping[str, Any] | None = None,
) -> tuple[Decimal, Decimal]:
    """Return the (prompt, completion) cost in dollars of a call's token counts.

    ``cached_tokens`` and ``cache_creation_tokens`` are the part of ``prompt_tokens`` read from and
    written to the prompt cache; they cost the cache prices, or the input price when the model has
    none. ``reasoning_tokens`` are the part of ``completion_tokens`` spent reasoning; they cost the
    reasoning price, or the output price. Raise ``NotFoundError`` if the model has no token price.
    """
    prices = _prices(model, provider, custom_pricing)
    if "input_cost_per_token" not in prices and "output_cost_per_token" not in prices:
        raise _not_priced(model, provider, "per-token price")
    input_price = prices.get("input_cost_per_token", ZERO)
    output_price = prices.get("output_cost_per_token", ZERO)
    cache_read_price = prices.get("cache_read_input_token_cost", input_price)
    cache_write_price = prices.get("cache_creation_input_token_cost", input_price)
    reasoning_price = prices.get("output_cost_per_reasoning_token", output_price)

    # Clamp: a usage block whose parts exceed its total must not produce a negative charge.
    uncached = max(prompt_tokens - cached_tokens - cache_creation_tokens, 0)
    visible_output = max(completion_tokens - reasoning_tokens, 0)
    prompt_cost = uncached * input_price + cached_tokens * cache_read_price
    prompt_cost += cache_creation_tokens * cache_write_price
    output_cost = visible_output * output_price + reasoning_tokens * reasoning_price
    return prompt_cost, output_cost


def _split_provider(model: str, provider: str | None) -> tuple[str, str | None]:
    # Sized image keys put the provider first ("azure/hd/1024-x-1792/dall-e-3"), so take it off the model.
    prefix, _, rest = model.partition("/")
    if rest and (prefix == provider or (provider is None and prefix in provider_names())):
        return rest, prefix
    return model, provider


def _image_dimensions(size: str | None) -> tuple[int, int]:
    width, _, height = (size if size and size != "auto" else DEFAULT_IMAGE_SIZE).lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise BadRequestError(f"image size {size!r} is not WIDTHxHEIGHT", param="size")
    return int(width), int(height)


def _image_entry(model: str, provider: str | None, size: str | None, quality: str | None) -> dict | None:
    """Return the table entry for one image of this size and quality, falling back to the bare model."""
    bare, provider = _split_provider(model, provider)
    width, height = _image_dimensions(size)
    size_key = f"{width}-x-{height}"
    qualities = (quality,) if quality and quality != "auto" else DEFAULT_IMAGE_QUALITIES
    for tier in qualities:
        key = f"{tier}/{size_key}/{bare}" if tier else f"{size_key}/{bare}"
        entry = model_info(key, provider)
        if entry is not None:
            return entry
    return model_info(bare, provider)


def _image_token_cost(prices: Mapping[str, Any], usage: Any) -> Decimal:
    # gpt-image usage: input_tokens (text + image) and output_tokens, all billed per token.
    image_in = _count(usage, "input_tokens_details", "image_tokens")
    text_in = max(_count(usage, "input_tokens") - image_in, 0)
    return (
        text_in * prices.get("input_cost_per_token", ZERO)
        + image_in * prices.get("input_cost_per_image_token", ZERO)
        + _count(usage, "output_tokens") * prices["output_cost_per_image_token"]
    )


def image_cost(
    model: str,
    *,
    provider: str | None = None,
    images: int = 1,
    size: str | None = None,
    quality: str | None = None,
    usage: Any = None,
    custom_pricing: Mapping[str, Any] | None = None,
) -> Decimal:
    """Return the cost in dollars of generating ``images`` images.

    When ``usage`` reports image tokens (gpt-image models) and the model has image-token prices, bill
    the tokens, as the provider does. Otherwise price each image by the table entry for its quality
    and size (``hd/1024-x-1792/dall-e-3``), per image or per pixel.
    """
    custom = _custom_prices(custom_pricing)
    if _field(usage, "output_tokens") is not None:
        token_prices = {**(model_info(model, provider) or {}), **custom}
        if "output_cost_per_image_token" in token_prices:
            return _image_token_cost(token_prices, usage)
    prices = {**(_image_entry(model, provider, size, quality) or {}), **custom}
    per_image = prices.get("output_cost_per_image", prices.get("input_cost_per_image"))
    if per_image is None and ("input_cost_per_pixel" in prices or "output_cost_per_pixel" in prices):
        width, height = _image_dimensions(size)
        pixel_price = prices.get("input_cost_per_pixel", ZERO) + prices.get("output_cost_per_pixel", ZERO)
        per_image = width * height * pixel_price
    if per_image is None:
        raise _not_priced(model, provider, "image price")
    return images * per_image


def _is_image_response(response: Any) -> bool:
    return isinstance(_field(response, "data"), list) and _field(response, "created") is not None


def completion_cost(
    completion_response: Any = None,
    *,
    model: str | None = None,
    provider: str | None = None,
    usage: Any = None,
    operation: str | None = None,
    custom_pricing: Mapping[str, Any] | None = None,
    n: int | None = None,
    size: str | None = None,
    quality: str | None = None,
) -> Decimal:
    """Return the exact cost in dollars of one call.

    Price a response object from ``providers.types`` (its ``_hidden_params`` may name the
    ``provider`` and carry ``custom_pricing``), an OpenAI-format response dict, or an explicit
    ``model`` with ``usage``. Arguments win over what the response carries. Image generations
    (``operation="image_generation"``, or a response with ``data`` and ``created``) are priced per
    image from ``n``/``size``/``quality``. Raise ``NotFoundError`` if the model has no price and no
    ``custom_pricing`` is given.
    """
    hidden = getattr(completion_response, "_hidden_params", None) or {}
    provider = provider or hidden.get("provider")
    custom_pricing = custom_pricing or hidden.get("custom_pricing")
    model = model or _field(completion_response, "model") or hidden.get("model")
    if not model:
        raise BadRequestError("cannot price a call without a model: pass model=...")
    if usage is None:
        usage = _field(completion_response, "usage")

    if operation == "image_generation" or (operation is None and _is_image_response(completion_response)):
        data = _field(completion_response, "data")
        images = len(data) if isinstance(data, list) else (n or 1)
        return image_cost(
            model,
            provider=provider,
            images=images,
            size=size,
            quality=quality,
            usage=usage,
            custom_pricing=custom_pricing,
        )

    prompt_cost, output_cost = cost_per_token(
        model,
        _count(usage, "prompt_tokens"),
        _count(usage, "completion_tokens"),
        provider,
        cached_tokens=_count(usage, "prompt_tokens_details", "cached_tokens"),
        cache_creation_tokens=_count(usage, "cache_creation_input_tokens"),
        reasoning_tokens=_count(usage, "completion_tokens_details", "reasoning_tokens"),
        custom_pricing=custom_pricing,
    )
    return prompt_cost + output_cost
