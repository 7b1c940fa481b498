"""Write end users: a caller's own customers, named by OpenAI's ``user`` field (LiteLLM's customers).

Every write names the scope it acts in (llm_gateway.end_user_scopes): a team's, a key owner's or the
gateway's end users. The same id in another scope is another end user, never touched here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from llm_gateway.budget_durations import next_reset
from llm_gateway.end_user_scopes import GATEWAY_SCOPE, EndUserScope
from llm_gateway.models import EndUser
from llm_gateway.services.fields import fields_check

# Fields a caller may set on an end user (LiteLLM's /customer/new names).
END_USER_FIELDS = frozenset({"alias", "max_budget", "budget_duration", "blocked", "metadata"})


@transaction.atomic
def end_user_create(*, user_id: str, scope: EndUserScope = GATEWAY_SCOPE, **fields: Any) -> EndUser:
    """Create an end user in ``scope`` (the gateway's own by default)."""
    fields_check(fields, allowed=END_USER_FIELDS, entity="end-user")
    if EndUser.objects.filter(**scope.filters, user_id=user_id).exists():
        raise ValidationError({"user_id": f"A customer {user_id!r} already exists."})
    end_user = EndUser(user_id=user_id, **scope.filters, **fields)
    end_user.budget_reset_at = next_reset(end_user.budget_duration, timezone.now())
    end_user.full_clean()
    end_user.save(force_insert=True)
    return end_user


@transaction.atomic
def end_user_update(*, end_user: EndUser, **fields: Any) -> EndUser:
    """Change an end user's alias, budget, blocked flag or metadata (never its id or scope)."""
    fields_check(fields, allowed=END_USER_FIELDS, entity="end-user")
    if "budget_duration" in fields and fields["budget_duration"] != end_user.budget_duration:
        end_user.budget_reset_at = next_reset(fields["budget_duration"], timezone.now())
    for name, value in fields.items():
        setattr(end_user, name, value)
    end_user.full_clean()
    end_user.save()
    return end_user


@transaction.atomic
def end_user_delete(*, end_users: Iterable[EndUser]) -> list[str]:
    """Delete end users; return their ids."""
    deleted = []
    for end_user in end_users:
        deleted.append(end_user.user_id)
        end_user.delete()
    return deleted


@transaction.atomic
def end_user_block(
    *, user_ids: Iterable[str], blocked: bool = True, scope: EndUserScope = GATEWAY_SCOPE
) -> list[EndUser]:
    """Block (or unblock) ``scope``'s end users, creating those not seen yet (a block may come first)."""
    end_users = []
    for user_id in user_ids:
        end_user, _created = EndUser.objects.update_or_create(
            **scope.filters, user_id=user_id, defaults={"blocked": blocked}
        )
        end_users.append(end_user)
    return end_users
