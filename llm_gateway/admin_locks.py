"""Limits a gateway admin set on a key, which the key's team admins may tighten but not lift.

A gateway admin (the master key, a superuser, a staff user with Django's model permissions) who
blocks a key or sets one of ``LOCKABLE_FIELDS`` to a restriction locks that field: its name goes to
the key's ``admin_locked`` list. A team admin may then still tighten it (lower a limit, block the
key) but not lift it (raise or clear a limit, change the budget period, unblock). A gateway admin
who clears the restriction (a null limit, an unblock) unlocks the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied

LOCKABLE_FIELDS = (
    "blocked",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
)


class AdminLockError(PermissionDenied):
    """A team admin tried to lift a restriction a gateway admin set (403, naming the fields)."""

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = sorted(fields)
        self.param = self.fields[0]
        super().__init__(
            f"A gateway admin set {', '.join(self.fields)} on this key: a team admin may tighten "
            "it (lower a limit, block the key) but not raise, clear or unblock it."
        )


def _restricts(name: str, value: Any) -> bool:
    """Return True if ``value`` restricts the key (a limit, a budget period, a block)."""
    if name == "blocked":
        return bool(value)
    return value not in (None, "")


def _lifts(name: str, current: Any, new: Any) -> bool:
    """Return True if changing ``name`` from ``current`` to ``new`` loosens the restriction."""
    if name == "blocked":
        return bool(current) and not new
    if name == "budget_duration":
        return new != current
    if new is None:
        return current is not None
    return current is not None and new > current


def admin_locks_changed(obj: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return the lockable ``fields`` whose value differs from ``obj``'s."""
    return {
        name: value
        for name, value in fields.items()
        if name in LOCKABLE_FIELDS and getattr(obj, name, None) != value
    }


def admin_locks_lifted(obj: Any, fields: Mapping[str, Any]) -> list[str]:
    """Return the locked fields of ``obj`` that writing ``fields`` would lift, sorted."""
    locked = set(getattr(obj, "admin_locked", None) or ())
    return sorted(
        name
        for name, value in admin_locks_changed(obj, fields).items()
        if name in locked and _lifts(name, getattr(obj, name), value)
    )


def admin_locks_check(obj: Any, fields: Mapping[str, Any]) -> None:
    """Raise AdminLockError if a team admin writing ``fields`` on ``obj`` would lift a lock."""
    lifted = admin_locks_lifted(obj, fields)
    if lifted:
        raise AdminLockError(lifted)


def admin_locks_after(obj: Any, fields: Mapping[str, Any], *, created: bool = False) -> list[str]:
    """Return ``obj``'s locks after a gateway admin writes ``fields`` (every given field when created)."""
    locked = set(getattr(obj, "admin_locked", None) or ())
    written = {name: fields[name] for name in LOCKABLE_FIELDS if name in fields} if created else None
    for name, value in (written if written is not None else admin_locks_changed(obj, fields)).items():
        if _restricts(name, value):
            locked.add(name)
        else:
            locked.discard(name)
    return sorted(locked)
