"""Which model groups a key may call: its own allow-list and its team's, and aliases within them.

An empty list allows every model group, and so does ``"*"``. A key's list narrows its team's, never
widens it: both must allow the group. A key without a team and with an empty list may call every
group (the gateway admin who made it chose so).

Aliases (a key's ``aliases``, a team's ``model_aliases``, ``router_settings.model_group_alias``) only
rename a group: access is decided on the group a request resolves to. An alias is also refused when
written if its target lies outside the lists of whoever owns it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping


def model_allowed(allowed: Collection[str], group: str) -> bool:
    """Return True if the allow-list ``allowed`` lets its owner call the model group ``group``."""
    return not allowed or group in allowed or "*" in allowed


def aliases_outside(aliases: Mapping[str, str], *allow_lists: Collection[str]) -> list[str]:
    """Return the aliases whose target some of ``allow_lists`` does not allow, sorted."""
    return sorted(
        alias
        for alias, target in aliases.items()
        if not all(model_allowed(allowed, target) for allowed in allow_lists)
    )


def aliases_outside_message(aliases: Mapping[str, str], outside: list[str], owner: str) -> str:
    """Return the refusal of aliases pointing at model groups ``owner`` may not use."""
    pairs = ", ".join(f"{alias} -> {aliases[alias]}" for alias in outside)
    return f"These aliases point at model groups {owner} may not use: {pairs}."
