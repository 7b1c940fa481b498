"""Access to the gateway's knobs, the GATEWAY dict in settings."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def gateway_setting(name: str) -> Any:
    """Return the gateway knob `name` from settings.GATEWAY."""
    try:
        return settings.GATEWAY[name]
    except KeyError:
        raise ImproperlyConfigured(f"settings.GATEWAY has no {name!r} entry.") from None
