"""Names for the ids that ledger and rollup rows carry: teams, keys and users by plain ids.

Ids whose row was deleted keep a readable label.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model

from llm_gateway.models import Team, VirtualKey

NO_TEAM, NO_KEY, NO_USER, NO_VALUE = "(no team)", "(no key)", "(no user)", "(none)"


def team_labels(team_ids: Iterable[str]) -> dict[str, str]:
    """Return team id -> alias; teams that no longer exist keep their id, no team is "(no team)"."""
    ids = set(team_ids)
    known = {uuid_text(team_id): team_id for team_id in ids if uuid_text(team_id)}
    aliases = dict(Team.objects.filter(team_id__in=list(known)).values_list("team_id", "team_alias"))
    labels = {team_id: f"{team_id} (deleted)" for team_id in ids}
    labels |= {known[str(team_id)]: alias for team_id, alias in aliases.items()}
    labels.pop("", None)
    return labels | ({"": NO_TEAM} if "" in ids else {})


def key_labels(tokens: Iterable[str]) -> dict[str, str]:
    """Return key token -> alias (or display prefix); deleted keys show their token."""
    ids = set(tokens)
    known = {uuid_text(token): token for token in ids if uuid_text(token)}
    labels = {token: f"{token[:8]}… (deleted)" for token in ids}
    for key in VirtualKey.objects.filter(token__in=list(known)).only("token", "key_alias", "key_prefix"):
        labels[known[str(key.token)]] = str(key)
    labels.pop("", None)
    return labels | ({"": NO_KEY} if "" in ids else {})


def key_aliases(tokens: Iterable[str]) -> dict[str, str]:
    """Return key token -> alias, for the keys that still exist and have one."""
    known = [text for text in map(uuid_text, set(tokens)) if text]
    keys = VirtualKey.objects.filter(token__in=known).exclude(key_alias="").values_list("token", "key_alias")
    return {str(token): alias for token, alias in keys}


def user_labels(user_ids: Iterable[str]) -> dict[str, str]:
    """Return the ledger's user id -> username; deleted users show their id, no user "(no user)"."""
    ids = set(user_ids)
    labels = {user_id: f"user {user_id} (deleted)" for user_id in ids} | usernames(ids)
    labels.pop("", None)
    return labels | ({"": NO_USER} if "" in ids else {})


def usernames(user_ids: Iterable[str]) -> dict[str, str]:
    """Return the ledger's user id -> username, for the users that still exist.

    The ledger names a key's owner by the user's primary key (as the request path records it);
    this and ``user_ledger_id`` are the only places that know.
    """
    ids = {user_id for user_id in user_ids if user_id.isdigit()}
    users = get_user_model().objects.filter(pk__in=[int(user_id) for user_id in ids])
    return {str(pk): name for pk, name in users.values_list("pk", "username")}


def user_ledger_id(*, username: str) -> str | None:
    """Return the id the ledger stores for the user named ``username`` (their primary key), or None."""
    pk = get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
    return None if pk is None else str(pk)


def same_labels(values: Iterable[str]) -> dict[str, str]:
    """Return each value as its own label (model groups, providers), an empty one as "(none)"."""
    return {value: value or NO_VALUE for value in values}


def uuid_text(value: Any) -> str | None:
    """Return ``value`` as a canonical UUID string (how the ledger stores ids), or None."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None
