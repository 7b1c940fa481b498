"""The one engine that applies an adapter's declared parameter table (``PARAMS``).

A table maps each OpenAI request parameter to what the provider takes:

- ``"name"``: send the value under that name (the same name for a plain copy);
- ``Param("name", convert)``: send ``convert(value)`` under that name;
- ``UNSUPPORTED``: the provider cannot take it: raise ``UnsupportedParamsError``, or drop it when the
  deployment (or call) sets ``drop_params``;
- ``IGNORED``: accepted and handled elsewhere (for example by the call engine), never sent.

Parameters the table does not name are passed through untouched, so provider-specific options
(``top_k``, ``thinking``, ...) reach the provider without the gateway having to know them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from providers.exceptions import UnsupportedParamsError


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    convert: Callable[[Any], Any]


UNSUPPORTED = object()
IGNORED = object()

ParamSpec = str | Param | object


def translate_params(
    params: Mapping[str, Any],
    table: Mapping[str, ParamSpec],
    *,
    provider: str,
    model: str,
    drop_params: bool,
) -> dict[str, Any]:
    """Return ``params`` rewritten for a provider by its declared table."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        spec = table.get(key, key)
        if spec is IGNORED:
            continue
        if spec is UNSUPPORTED:
            if drop_params:
                continue
            raise UnsupportedParamsError(
                f"{provider} does not support parameter '{key}'. "
                "Remove it, or set drop_params=True to drop unsupported parameters.",
                provider=provider,
                model=model,
                param=key,
                code="unsupported_parameter",
            )
        if isinstance(spec, Param):
            out[spec.name] = spec.convert(value)
        else:
            out[spec] = value  # type: ignore[index]  # spec is a str here: the provider's name
    return out
