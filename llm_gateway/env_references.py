"""Which environment variables a deployment may read through ``os.environ/NAME`` references.

A deployment's settings travel to its upstream (``api_key``, ``extra_headers``, ``api_base``...), so a
reference to any variable would hand the gateway's own secrets to whatever URL the deployment names.
A deployment may read only the providers' own variables (``OPENAI_API_KEY``, ``AZURE_API_BASE``...),
names starting with one of ``GATEWAY_ENV_REFERENCE_PREFIXES`` (default ``LLM_``) and the names in
``GATEWAY_ENV_REFERENCE_NAMES``; never the gateway's own configuration, whatever those settings say.

The rule is applied where references are written (config import, admin, management API) and again
where they are resolved, when a deployment is loaded to be called: a row written some other way is
not called, and the variable is not read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llm_gateway.conf import gateway_setting
from providers.credentials import env_reference_names
from providers.registry import PROVIDER_ENV_NAMES

# The gateway's own configuration (see gateway_project/settings.py): secrets and server addresses.
NEVER_REFERENCED_PREFIXES = ("GATEWAY_", "DJANGO_", "CELERY_", "DATABASE_", "REDIS_", "EMAIL_")
NEVER_REFERENCED_NAMES = frozenset({"DATABASE_URL", "REDIS_URL", "SECRET_KEY"})


def env_reference_forbidden(name: str) -> bool:
    """Return True if ``name`` is one of the gateway's own variables, which no setting can allow."""
    return name in NEVER_REFERENCED_NAMES or name.startswith(NEVER_REFERENCED_PREFIXES)


def env_reference_allowed(name: str) -> bool:
    """Return True if a deployment may read the environment variable ``name``."""
    if env_reference_forbidden(name):
        return False
    return (
        name in PROVIDER_ENV_NAMES
        or name in gateway_setting("ENV_REFERENCE_NAMES")
        or name.startswith(tuple(gateway_setting("ENV_REFERENCE_PREFIXES")))
    )


def env_references_refused(value: Any) -> list[str]:
    """Return the variables ``value`` references (at any depth) that a deployment may not read."""
    return sorted({name for name in env_reference_names(value) if not env_reference_allowed(name)})


def env_reference_refusal(names: Iterable[str]) -> str:
    """Return the message refusing references to ``names``."""
    prefixes = ", ".join(gateway_setting("ENV_REFERENCE_PREFIXES")) or "none"
    return (
        f"A deployment may not read the environment variable(s) {', '.join(names)}: only the providers' "
        f"own variables (OPENAI_API_KEY, ...), names starting with {prefixes} "
        "(GATEWAY_ENV_REFERENCE_PREFIXES) and names listed in GATEWAY_ENV_REFERENCE_NAMES."
    )
