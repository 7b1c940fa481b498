"""The one place the library reads provider credentials from the environment.

Adapters never read the environment: the call engine resolves a deployment here first. The gateway
(Django) passes credentials explicitly and does not go through this module's environment look-up,
except for ``os.environ/NAME`` references in its configuration, resolved by ``env_reference`` with
the gateway's rule of which variables a deployment may read (``allowed``).

A library caller (``completion(api_key="os.environ/NAME")``) passes no rule: the code calling the
library already runs in the process and reads its environment anyway, so any variable resolves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from providers.registry import ProviderSpec

ENV_REFERENCE_PREFIX = "os.environ/"

# Whether a configuration may read the environment variable of this name.
EnvReferenceRule = Callable[[str], bool]


class EnvReferenceError(ValueError):
    """A configuration references an environment variable its rule does not allow; never read."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The environment variable {name} may not be referenced here.")
        self.name = name


def _first_set(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def credentials_from_environment(spec: ProviderSpec) -> dict[str, str | None]:
    """Return the api key, base and version the environment holds for a provider."""
    return {
        "api_key": _first_set(spec.api_key_env),
        "api_base": _first_set(spec.api_base_env),
        "api_version": _first_set(spec.api_version_env),
    }


def env_reference_name(value: Any) -> str | None:
    """Return NAME when ``value`` is an ``os.environ/NAME`` reference, else None."""
    if isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX):
        return value[len(ENV_REFERENCE_PREFIX) :]
    return None


def env_reference_names(value: Any) -> Iterator[str]:
    """Yield the variable names ``value`` references, in nested mappings and lists too."""
    pending = [value]  # a stack, not recursion: any depth of nesting a JSON parser accepts
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        else:
            name = env_reference_name(item)
            if name is not None:
                yield name


def env_reference(value: str | None, *, allowed: EnvReferenceRule | None = None) -> str | None:
    """Return the value of an ``os.environ/NAME`` reference (LiteLLM's config syntax), else ``value``.

    With ``allowed``, a name it refuses raises EnvReferenceError before the variable is read.
    """
    name = env_reference_name(value)
    if name is None:
        return value
    if allowed is not None and not allowed(name):
        raise EnvReferenceError(name)
    return os.environ.get(name)
