"""The one place the library reads provider credentials from the environment.

Adapters never read the environment: the call engine resolves a deployment here first. The gateway
(Django) passes credentials explicitly and does not go through this module's environment look-up,
except for ``os.environ/NAME`` references in its configuration, resolved by ``env_reference``.
"""

from __future__ import annotations

import os

from providers.registry import ProviderSpec

ENV_REFERENCE_PREFIX = "os.environ/"


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


def env_reference(value: str | None) -> str | None:
    """Return the value of ``os.environ/NAME`` references (LiteLLM's config syntax), else ``value``."""
    if value and value.startswith(ENV_REFERENCE_PREFIX):
        return os.environ.get(value[len(ENV_REFERENCE_PREFIX) :])
    return value
