"""Chart.js data for unfold's chart components (``unfold/components/chart/{bar,line}.html``).

unfold draws every ``canvas.chart`` from its ``data-value`` JSON with its own defaults; colours given
as ``var(--color-...)`` follow the admin's theme. Amounts are rounded to micro-dollars: a chart
needs numbers, the tables next to it give the exact figures.
"""

from __future__ import annotations

import json
from decimal import Decimal

from billing.selectors import SpendRow

_MICRO_DOLLAR = Decimal("0.000001")
BAR_COUNT = 10  # bars per chart: the biggest, the rest are in the table


def _dollars(amount: Decimal) -> float:
    return float(amount.quantize(_MICRO_DOLLAR))


def spend_over_time(days: list[SpendRow]) -> str:
    """Return a line chart of spend per day."""
    return json.dumps(
        {
            "labels": [row.label for row in days],
            "datasets": [
                {
                    "label": "Spend (USD)",
                    "data": [_dollars(row.figures.cost) for row in days],
                    "borderColor": "var(--color-primary-600)",
                    "backgroundColor": "var(--color-primary-600)",
                    "displayYAxis": True,
                    "maxTicksXLimit": 10,
                },
            ],
        }
    )


def spend_bars(rows: list[SpendRow]) -> str:
    """Return a bar chart of the spend of the first ``BAR_COUNT`` rows (rows come biggest first)."""
    shown = rows[:BAR_COUNT]
    return json.dumps(
        {
            "labels": [row.label for row in shown],
            "datasets": [
                {
                    "label": "Spend (USD)",
                    "data": [_dollars(row.figures.cost) for row in shown],
                    "backgroundColor": "var(--color-primary-600)",
                    "displayYAxis": True,
                }
            ],
        }
    )
