"""The fields services accept, shared where the models share them."""

from __future__ import annotations

from collections.abc import Iterable

# Budget and rate-limit settings of a key, team or user (BudgetFields, LiteLLM's names).
BUDGET_SETTINGS = frozenset(
    {
        "max_budget",
        "soft_budget",
        "budget_duration",
        "rpm_limit",
        "tpm_limit",
        "max_parallel_requests",
        "blocked",
        "metadata",
    }
)


def fields_check(fields: Iterable[str], *, allowed: frozenset[str], entity: str) -> None:
    """Raise ValueError naming any field a service for ``entity`` does not take."""
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"Unknown {entity} fields: {', '.join(sorted(unknown))}")
