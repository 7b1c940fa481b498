"""The spend dashboard in a real browser, as a team admin: their team's figures and nobody else's.

A real gateway process (its own database) is seeded with ledger rows of two teams and their rollups;
headless Chromium logs in as team A's admin and reads the page. The screenshot lands in the test's
temporary folder (``--basetemp`` to keep it).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from llm_gateway.admin.display import usd
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.test_admin_browser import browser_page  # noqa: F401 - a fixture, used by name below
from tests.llm_gateway.factories import PASSWORD


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A gateway that serves its static files (unfold's Chart.js) on PostgreSQL too, as on SQLite."""
    process = GatewayProcess.create(tmp_path_factory.mktemp("gateway"), {"GATEWAY_SERVE_STATIC": "1"})
    process.start()
    yield process
    process.destroy()


SEED = """
import json
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from tests.billing.spend_factories import at, days_ago, ledger_cost, ledger_entry_make, rollups_refresh
from tests.llm_gateway.factories import key_make, team_admin_make, team_make

in_20_days = timezone.now() + timedelta(days=20)
team_a = team_make(team_alias="Team Alpha", max_budget=Decimal("100"), budget_duration="30d",
                   budget_reset_at=in_20_days, spend=Decimal("4.2"))
team_b = team_make(team_alias="Team Bravo", max_budget=Decimal("500"), spend=Decimal("98.7654321"))
team_admin_make(team=team_a, username="alice")
key_a, _ = key_make(team=team_a, key_alias="alpha-prod", max_budget=Decimal("10"), budget_duration="30d")
key_a.budget_reset_at, key_a.spend = in_20_days, Decimal("0.7")
key_a.save()
key_a2, _ = key_make(team=team_a, key_alias="alpha-batch")
key_b, _ = key_make(team=team_b, key_alias="bravo-secret-key", max_budget=Decimal("1000"))
for offset in range(1, 8):
    ledger_entry_make(key=key_a, created_at=at(days_ago(offset)), cost=Decimal("0.0123456789") * offset)
    ledger_entry_make(key=key_a2, created_at=at(days_ago(offset), 15), cost=Decimal("0.5"), model_group="o1")
ledger_entry_make(key=key_a, created_at=at(days_ago(2), 16), cost=Decimal("0.01"), status="error")
ledger_entry_make(key=key_b, created_at=at(days_ago(3)), cost=Decimal("98.7654321"), model_group="sonnet")
rollups_refresh()
print(json.dumps({
    "team_a_cost": str(ledger_cost(team_id=str(team_a.team_id))),
    "team_b_cost": str(ledger_cost(team_id=str(team_b.team_id))),
}))
"""


def test_a_team_admin_sees_their_team_spend_and_nothing_of_another_team(gateway, browser_page, tmp_path):  # noqa: F811 - the fixture
    seeded = json.loads(gateway.run_python(SEED))
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{gateway.url}/admin/billing/spend/")  # not logged in: the admin's login page, then back here
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url("**/admin/billing/spend/")
    page.wait_for_selector("[data-kpi=total-spend]")
    charts_drawn = page.evaluate("Object.keys(Chart.instances).length")
    screenshot = tmp_path / "spend-dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)

    shown_total = page.locator("[data-kpi=total-spend]").inner_text().strip()
    text = page.locator("#content").inner_text()
    assert shown_total == usd(Decimal(seeded["team_a_cost"]))
    assert page.locator("[data-kpi=requests]").inner_text().strip() == "15"
    assert "alpha-prod" in text and "alpha-batch" in text
    assert "Team Bravo" not in page.content()
    assert "bravo-secret-key" not in page.content()
    assert usd(Decimal(seeded["team_b_cost"])) not in text
    assert "sonnet" not in text
    assert page.locator("#id_team option").all_inner_texts() == ["Team Alpha"]
    budgets = page.locator("[data-section=budget_keys]").inner_text()
    assert "alpha-prod" in budgets and "$10.00" in budgets and "$9.30" in budgets  # remaining: 10 - 0.7
    assert charts_drawn == 6  # spend over time, and the bars by team, key, model, provider, user
    assert errors == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
