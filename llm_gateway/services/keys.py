"""Write virtual keys: create, update, regenerate, block."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from llm_gateway.crypto import virtual_key_display, virtual_key_hash, virtual_key_secret_generate
from llm_gateway.models import VirtualKey
from llm_gateway.services.fields import BUDGET_SETTINGS, fields_check

# Fields a caller may set on a key (LiteLLM's /key/generate names).
KEY_FIELDS = (
    frozenset(
        {
            "key_alias",
            "key_type",
            "team",
            "user",
            "models",
            "aliases",
            "budget_reset_at",
            "model_max_budget",
            "allowed_cache_controls",
            "expires",
        }
    )
    | BUDGET_SETTINGS
)


@transaction.atomic
def virtual_key_create(*, secret: str | None = None, **fields: Any) -> tuple[VirtualKey, str]:
    """Create a key and return it with its secret, which is shown this once and never stored."""
    fields_check(fields, allowed=KEY_FIELDS, entity="key")
    secret = secret or virtual_key_secret_generate()
    key = VirtualKey(key_hash=virtual_key_hash(secret), key_prefix=virtual_key_display(secret), **fields)
    key.full_clean(exclude=["key_hash", "key_prefix"])
    key.save()
    return key, secret


@transaction.atomic
def virtual_key_update(*, key: VirtualKey, **fields: Any) -> VirtualKey:
    """Change a key's settings (never its secret)."""
    fields_check(fields, allowed=KEY_FIELDS, entity="key")
    for name, value in fields.items():
        setattr(key, name, value)
    key.full_clean(exclude=["key_hash", "key_prefix"])
    key.save()
    return key


@transaction.atomic
def virtual_key_regenerate(*, key: VirtualKey, secret: str | None = None) -> str:
    """Give a key a new secret (the old one stops working at once) and return it."""
    secret = secret or virtual_key_secret_generate()
    key.key_hash = virtual_key_hash(secret)
    key.key_prefix = virtual_key_display(secret)
    key.save(update_fields=["key_hash", "key_prefix", "updated_at"])
    return secret


def virtual_key_block(*, key: VirtualKey, blocked: bool = True) -> VirtualKey:
    """Block (or unblock) a key: a blocked key is refused with 401."""
    key.blocked = blocked
    key.save(update_fields=["blocked", "updated_at"])
    return key


@transaction.atomic
def virtual_key_delete(*, keys: Iterable[VirtualKey]) -> list[str]:
    """Delete keys (they stop working at once); return their token ids."""
    deleted = []
    for key in keys:
        deleted.append(str(key.token))
        key.delete()
    return sorted(deleted)
