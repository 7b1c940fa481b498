"""Build the bundled price table ``providers/data/model_prices.json`` from the shared reference table.

Usage: ``python scripts/build_price_table.py [SOURCE]`` (default ``../shared/data/model_prices.json``,
relative to the repository root).

The output keeps the models the provider layer can price (chat, completion, embedding and image
generation entries that carry a price) and only the fields listed in ``FIELDS``. Prices are written as
exact decimal strings so that the runtime builds ``Decimal`` values without going through binary floats.
One model per line, keys sorted, so a price update reads as a small diff.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "model_prices.json"
OUTPUT = REPO_ROOT / "providers" / "data" / "model_prices.json"

SOURCE_NAME = "LiteLLM model_prices_and_context_window.json (shared reference copy)"
CAPTURED_ON = "2026-11-26"  # From /work/shared/data/README.md.

MODES = {"chat", "completion", "embedding", "image_generation"}

PRICE_FIELDS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
    "output_cost_per_image",
    "input_cost_per_image",
    # Azure's DALL-E 3 and gpt-image-1 sizes are priced only per pixel; without these they would be free.
    "input_cost_per_pixel",
    "output_cost_per_pixel",
    # gpt-image models bill image tokens when the response reports usage.
    "input_cost_per_image_token",
    "output_cost_per_image_token",
)
OTHER_FIELDS = (
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "max_tokens",
    "supports_function_calling",
    "supports_vision",
    "supports_prompt_caching",
    "supports_reasoning",
    "deprecation_date",
)
FIELDS = ("provider", *PRICE_FIELDS, *OTHER_FIELDS)


def decimal_string(value: float | int) -> str:
    """Return a price as an exact decimal string in plain notation (``1.5e-07`` -> ``"0.00000015"``)."""
    # repr() is the shortest string that round-trips the float, i.e. the number the table's author typed.
    return format(Decimal(repr(value)).normalize(), "f")


def convert_entry(entry: dict) -> dict | None:
    """Return one source entry in the bundled format, or None if we cannot price it."""
    if entry.get("mode") not in MODES:
        return None
    if not any(field in entry for field in PRICE_FIELDS):
        return None
    converted: dict = {"provider": entry["litellm_provider"]}
    for field in PRICE_FIELDS:
        if field in entry:
            converted[field] = decimal_string(entry[field])
    for field in OTHER_FIELDS:
        if field in entry:
            converted[field] = entry[field]
    return converted


def build(source: dict) -> dict[str, dict]:
    """Return the bundled models keyed by model name, sorted."""
    models = {}
    for name, entry in source.items():
        if name == "sample_spec" or not isinstance(entry, dict):
            continue
        converted = convert_entry(entry)
        if converted is not None:
            models[name] = converted
    return dict(sorted(models.items()))


def render(models: dict[str, dict]) -> str:
    """Return the table as JSON text: ``_meta`` first, then one model per line."""
    meta = {"source": SOURCE_NAME, "captured_on": CAPTURED_ON, "fields": list(FIELDS), "models": len(models)}
    lines = [f'"_meta": {json.dumps(meta, sort_keys=True)}']
    lines += [
        f"{json.dumps(name)}: {json.dumps(entry, sort_keys=True, separators=(',', ':'))}"
        for name, entry in models.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str]) -> int:
    source_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    source = json.loads(source_path.read_text(encoding="utf-8"))
    models = build(source)
    OUTPUT.write_text(render(models), encoding="utf-8")
    print(f"wrote {len(models)} models to {OUTPUT} ({OUTPUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
