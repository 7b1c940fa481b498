"""Write users: the Django accounts of the humans, with their team memberships and their budgets.

LiteLLM's ``user_id`` is our ``username``; its ``proxy_admin`` role is a superuser (with admin access),
``internal_user`` a plain account. A user's budget and limits (``UserBudget``) apply to every key they
own, on top of each key's and team's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from llm_gateway.budget_durations import next_reset
from llm_gateway.lookups import config_changed
from llm_gateway.models import Membership, Team, UserBudget, VirtualKey
from llm_gateway.services.fields import BUDGET_SETTINGS, fields_check
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.services.teams import membership_add

# Fields a caller may set on a user's budget (LiteLLM's /user/new names).
USER_BUDGET_FIELDS = BUDGET_SETTINGS
# The allow-list of a user's first key when no models were given: LiteLLM's name for "no models of
# its own". It names no model group, so the key may call nothing until models are given.
NO_DEFAULT_MODELS = "no-default-models"


def _password_set(user: AbstractBaseUser, password: str) -> None:
    """Set a password that passes the AUTH_PASSWORD_VALIDATORS (as the admin's forms require)."""
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from None
    user.set_password(password)


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str = "",
    password: str | None = None,
    is_admin: bool = False,
    teams: Sequence[Team] = (),
    key_create: bool = False,
    key_models: Sequence[str] = (),
    **budget_fields: Any,
) -> tuple[AbstractBaseUser, VirtualKey | None, str | None]:
    """Create a user with their budget (``budget_fields``: USER_BUDGET_FIELDS), a member of ``teams``.

    With ``key_create``, also create a key they own, allowed ``key_models`` only (none when empty:
    an empty allow-list would allow every model). Return the user, the key and its secret (shown
    this once), or None twice when no key was made. Without a password the account cannot log in to
    the admin; it still owns keys and memberships. The budget row is made even without limits, so
    the user's spend is tracked from the start, as LiteLLM tracks every user's.
    """
    fields_check(budget_fields, allowed=USER_BUDGET_FIELDS, entity="user budget")
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise ValidationError({"username": f"A user {username!r} already exists."})
    user = user_model(username=username, email=email, is_superuser=is_admin, is_staff=is_admin)
    if password:
        _password_set(user, password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    user_budget_set(user=user, **budget_fields)
    for team in teams:
        membership_add(team=team, user=user, role=Membership.Role.MEMBER)
    if not key_create:
        return user, None, None
    key, secret = virtual_key_create(user=user, models=list(key_models) or [NO_DEFAULT_MODELS])
    return user, key, secret


@transaction.atomic
def user_update(
    *,
    user: AbstractBaseUser,
    email: str | None = None,
    password: str | None = None,
    is_admin: bool | None = None,
    **budget_fields: Any,
) -> AbstractBaseUser:
    """Change a user's email, password or admin role (None leaves each) and the budget fields given."""
    fields_check(budget_fields, allowed=USER_BUDGET_FIELDS, entity="user budget")
    if email is not None:
        user.email = email
    if password:
        _password_set(user, password)
    if is_admin is not None:
        user.is_superuser = user.is_staff = is_admin
    user.full_clean()
    user.save()
    if budget_fields:
        user_budget_set(user=user, **budget_fields)
    return user


@transaction.atomic
def user_budget_set(*, user: AbstractBaseUser, **fields: Any) -> UserBudget:
    """Create or change a user's budget and limits (USER_BUDGET_FIELDS); absent fields stay as they are.

    Setting or changing ``budget_duration`` starts a budget period now, as for teams and end users.
    """
    fields_check(fields, allowed=USER_BUDGET_FIELDS, entity="user budget")
    budget = UserBudget.objects.select_for_update().filter(user=user).first()
    created = budget is None
    if budget is None:
        budget = UserBudget()
    budget.user = user  # also caches it as user.budget, so what is returned next shows this row
    duration_changed = "budget_duration" in fields and fields["budget_duration"] != budget.budget_duration
    for name, value in fields.items():
        setattr(budget, name, value)
    if duration_changed:
        budget.budget_reset_at = next_reset(budget.budget_duration, timezone.now())
    budget.full_clean()
    budget.save(force_insert=created)
    return budget


@transaction.atomic
def user_delete(*, users: Iterable[AbstractBaseUser]) -> list[str]:
    """Delete users with their memberships (their keys stay, without an owner); return the usernames."""
    deleted = []
    for user in users:
        deleted.append(user.get_username())
        user.delete()
    # Owned keys lose their owner through a bulk UPDATE, which sends no signal: invalidate here.
    transaction.on_commit(config_changed)
    return deleted
