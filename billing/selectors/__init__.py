"""Read spend: the daily rollups for dashboards and reports, the ledger for request logs.

Every rollup selector takes an inclusive range of UTC days and ``team_ids``: the teams whose spend
the reader may see, or None for every team (gateway admins, finance). Dashboards and reports read
``SpendRollup`` only, never scanning the ledger. The ledger is read page by page for request logs,
and, bounded by
``LATENCY_SAMPLE_SIZE`` rows, for latency percentiles, which sums cannot give.

Ledger and rollup rows name teams, keys and users by plain ids; the ``*_labels`` selectors turn them
into names, and ids whose row was deleted keep a readable label.

The selectors live in modules by what they read (``rollups``, ``breakdowns``, ``budgets``,
``ledger``, ``labels``); import them from here.
"""

from billing.selectors.breakdowns import (
    SpendOverview,
    spend_by_key,
    spend_by_model,
    spend_by_provider,
    spend_by_team,
    spend_by_user,
    spend_overview,
)
from billing.selectors.budgets import (
    MONEY_PLACES,
    BudgetBurn,
    budget_burn,
    budget_burn_keys,
    budget_burn_teams,
    budget_holds,
)
from billing.selectors.labels import (
    NO_KEY,
    NO_TEAM,
    NO_USER,
    NO_VALUE,
    key_aliases,
    key_labels,
    team_labels,
    user_labels,
    user_ledger_id,
    usernames,
)
from billing.selectors.ledger import (
    LATENCY_SAMPLE_SIZE,
    LatencyPercentiles,
    latency_percentiles,
    ledger_entry_list,
)
from billing.selectors.rollups import (
    ZERO,
    DailyBreakdownRow,
    Ranking,
    ReportRow,
    SpendFigures,
    SpendRow,
    day_bounds,
    key_usage_since,
    rollup_list,
    spend_by_day,
    spend_daily_breakdown,
    spend_report_rows,
    spend_totals,
)

__all__ = [
    "LATENCY_SAMPLE_SIZE",
    "MONEY_PLACES",
    "NO_KEY",
    "NO_TEAM",
    "NO_USER",
    "NO_VALUE",
    "ZERO",
    "BudgetBurn",
    "DailyBreakdownRow",
    "LatencyPercentiles",
    "Ranking",
    "ReportRow",
    "SpendFigures",
    "SpendOverview",
    "SpendRow",
    "budget_burn",
    "budget_burn_keys",
    "budget_burn_teams",
    "budget_holds",
    "day_bounds",
    "key_aliases",
    "key_labels",
    "key_usage_since",
    "latency_percentiles",
    "ledger_entry_list",
    "rollup_list",
    "spend_by_day",
    "spend_by_key",
    "spend_by_model",
    "spend_by_provider",
    "spend_by_team",
    "spend_by_user",
    "spend_daily_breakdown",
    "spend_overview",
    "spend_report_rows",
    "spend_totals",
    "team_labels",
    "user_labels",
    "user_ledger_id",
    "usernames",
]
