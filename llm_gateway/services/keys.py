"""Write virtual keys: create, update, regenerate, block.

``by_team_admin`` says who writes: a team admin may not lift what a gateway admin set
(llm_gateway.admin_locks); a gateway admin's writes record what they set. Operators' own tools
(the admin as a superuser, the master key, manage.py) write as gateway admins, the default.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from llm_gateway.admin_locks import admin_locks_after, admin_locks_check
from llm_gateway.crypto import (
    custom_secret_problem,
    virtual_key_display,
    virtual_key_hash,
    virtual_key_secret_generate,
)
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


def _custom_secret_check(secret: str) -> None:
    problem = custom_secret_problem(secret)
    if problem is not None:
        raise ValidationError({"key": problem})


@transaction.atomic
def virtual_key_create(
    *, secret: str | None = None, by_team_admin: bool = False, **fields: Any
) -> tuple[VirtualKey, str]:
    """Create a key and return it with its secret, which is shown this once and never stored."""
    fields_check(fields, allowed=KEY_FIELDS, entity="key")
    if secret:
        _custom_secret_check(secret)
    secret = secret or virtual_key_secret_generate()
    key = VirtualKey(key_hash=virtual_key_hash(secret), key_prefix=virtual_key_display(secret), **fields)
    if not by_team_admin:
        key.admin_locked = admin_locks_after(key, fields, created=True)
    key.full_clean(exclude=["key_hash", "key_prefix"])
    key.save()
    return key, secret


@transaction.atomic
def virtual_key_update(*, key: VirtualKey, by_team_admin: bool = False, **fields: Any) -> VirtualKey:
    """Change a key's settings (never its secret).

    A team admin may not lift what a gateway admin set (AdminLockError, a 403).
    """
    fields_check(fields, allowed=KEY_FIELDS, entity="key")
    if by_team_admin:
        admin_locks_check(key, fields)
    else:
        key.admin_locked = admin_locks_after(key, fields)
    for name, value in fields.items():
        setattr(key, name, value)
    key.full_clean(exclude=["key_hash", "key_prefix"])
    key.save()
    return key


@transaction.atomic
def virtual_key_regenerate(*, key: VirtualKey, secret: str | None = None) -> str:
    """Give a key a new secret (the old one stops working at once) and return it."""
    if secret:
        _custom_secret_check(secret)
    secret = secret or virtual_key_secret_generate()
    key.key_hash = virtual_key_hash(secret)
    key.key_prefix = virtual_key_display(secret)
    key.save(update_fields=["key_hash", "key_prefix", "updated_at"])
    return secret


def virtual_key_block(*, key: VirtualKey, blocked: bool = True, by_team_admin: bool = False) -> VirtualKey:
    """Block (or unblock) a key: a blocked key is refused with 401.

    A team admin may not unblock a key a gateway admin blocked (AdminLockError, a 403).
    """
    if by_team_admin:
        admin_locks_check(key, {"blocked": blocked})
    else:
        key.admin_locked = admin_locks_after(key, {"blocked": blocked})
    key.blocked = blocked
    key.save(update_fields=["blocked", "admin_locked", "updated_at"])
    return key


@transaction.atomic
def virtual_key_delete(*, keys: Iterable[VirtualKey]) -> list[str]:
    """Delete keys (they stop working at once); return their token ids."""
    deleted = []
    for key in keys:
        deleted.append(str(key.token))
        key.delete()
    return sorted(deleted)
