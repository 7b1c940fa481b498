"""The bundled price and context-window table, and model lookup in it.

The table is package data (``providers/data/model_prices.json``), built by
``scripts/build_price_table.py`` from a public price list; its ``_meta`` entry records the source,
the capture date and the fields taken. Prices are stored as decimal strings and loaded as ``Decimal``.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from importlib import resources
from typing import Any

import orjson

PRICE_FIELDS = frozenset(
    {
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
        "output_cost_per_reasoning_token",
        "output_cost_per_image",
        "input_cost_per_image",
        "input_cost_per_pixel",
        "output_cost_per_pixel",
        "input_cost_per_image_token",
        "output_cost_per_image_token",
    }
)


@functools.cache
def _table() -> dict[str, dict[str, Any]]:
    raw = orjson.loads(resources.files("providers").joinpath("data", "model_prices.json").read_bytes())
    raw.pop("_meta", None)
    return {
        name: {field: Decimal(value) if field in PRICE_FIELDS else value for field, value in entry.items()}
        for name, entry in raw.items()
    }


@functools.cache
def provider_names() -> frozenset[str]:
    """Return the provider ids that appear in the table (``openai``, ``azure``, ``bedrock``...)."""
    return frozenset(entry["provider"] for entry in _table().values())


def _find(model: str, provider: str | None) -> tuple[str, dict[str, Any]] | None:
    table = _table()
    candidates = [f"{provider}/{model}", model] if provider else [model]
    prefix, _, rest = model.partition("/")
    # Strip only a known provider prefix: "meta-llama/Llama-3-8b" must not turn into "Llama-3-8b".
    if rest and (prefix == provider or prefix in provider_names()):
        candidates.append(rest)
    for key in candidates:
        if key in table:
            return key, table[key]
    return None


def model_info(model: str, provider: str | None = None) -> dict[str, Any] | None:
    """Return the table entry for a model, with ``Decimal`` prices, or None if the table lacks it.

    Look up ``provider/model``, then ``model``, then ``model`` without a leading provider prefix
    (``openai/gpt-4o-mini`` finds ``gpt-4o-mini``; ``azure/gpt-4o`` is a key of its own). The entry
    is a copy and carries the table ``key`` it was found under.
    """
    found = _find(model, provider)
    if found is None:
        return None
    key, entry = found
    return {**entry, "key": key}


def context_window(model: str, provider: str | None = None) -> int | None:
    """Return the model's input token limit (``max_input_tokens``, else ``max_tokens``), if known."""
    found = _find(model, provider)
    if found is None:
        return None
    entry = found[1]
    return entry.get("max_input_tokens") or entry.get("max_tokens")
