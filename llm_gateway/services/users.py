"""Write users: the Django accounts of the humans, with their team memberships.

LiteLLM's ``user_id`` is our ``username``; its ``proxy_admin`` role is a superuser (with admin access),
``internal_user`` a plain account.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from llm_gateway.lookups import config_changed
from llm_gateway.models import Membership, Team, VirtualKey
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.services.teams import membership_add


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
) -> tuple[AbstractBaseUser, VirtualKey | None, str | None]:
    """Create a user, a member of ``teams``; with ``key_create``, also a key they own.

    Return the user, the key and its secret (shown this once), or None twice when no key was made.
    Without a password the account cannot log in to the admin; it still owns keys and memberships.
    """
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
    for team in teams:
        membership_add(team=team, user=user, role=Membership.Role.MEMBER)
    if not key_create:
        return user, None, None
    key, secret = virtual_key_create(user=user)
    return user, key, secret


@transaction.atomic
def user_update(
    *,
    user: AbstractBaseUser,
    email: str | None = None,
    password: str | None = None,
    is_admin: bool | None = None,
) -> AbstractBaseUser:
    """Change a user's email, password or admin role; None leaves a field as it is."""
    if email is not None:
        user.email = email
    if password:
        _password_set(user, password)
    if is_admin is not None:
        user.is_superuser = user.is_staff = is_admin
    user.full_clean()
    user.save()
    return user


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
