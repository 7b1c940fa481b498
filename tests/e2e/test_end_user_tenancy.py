"""End users (OpenAI's ``user``) belong to a team: one team's key never spends, trips or reads another's.

A live gateway (PostgreSQL and Redis when DATABASE_URL and REDIS_URL say so, else embedded), the
official OpenAI SDK as the client, a fake OpenAI upstream on loopback.
"""

import json
import time
from decimal import Decimal

import httpx
import openai
import pytest
import redis

MESSAGES = [{"role": "user", "content": "Say hello"}]
LONGEST_USER = "u" * 199 + "\U0001f600"  # 200 characters, the last one outside the BMP

SEED = """
from decimal import Decimal
from llm_gateway.end_user_scopes import EndUserScope
from llm_gateway.models import Team
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.end_users import end_user_create
from llm_gateway.services.keys import virtual_key_create
deployment_create(model_name="gpt-4o-mini", provider="openai", model="gpt-4o-mini", api_base={base!r},
                  api_key="sk-upstream")
team_a, team_b = Team.objects.create(team_alias="team-a"), Team.objects.create(team_alias="team-b")
a_scope, b_scope = EndUserScope(team_id=str(team_a.team_id)), EndUserScope(team_id=str(team_b.team_id))
# Team B's customers: one blocked, one whose budget is too small for any request, one to spend on.
end_user_create(user_id="blocked-cust", blocked=True, scope=b_scope)
end_user_create(user_id="broke-cust", max_budget=Decimal("0.000000001"), scope=b_scope)
end_user_create(user_id="cust", max_budget=Decimal("100"), scope=b_scope)
# Team A's own "cust": same id, another customer.
end_user_create(user_id="cust", max_budget=Decimal("100"), scope=a_scope)
_, a_secret = virtual_key_create(key_alias="a-key", team=team_a)
_, b_secret = virtual_key_create(key_alias="b-key", team=team_b)
print(a_secret, b_secret, team_a.team_id, team_b.team_id)
"""

# With REDIS_URL rows wait in the Redis stream for the Celery consumer: drain it as the task would.
SPEND = """
import json
from billing.ledger.consumer import ledger_drain
from billing.tasks import spend_rollup_task
from llm_gateway.models import EndUser
ledger_drain()
spend_rollup_task()
print(json.dumps({{f"{{row.team.team_alias}}/{{row.user_id}}": str(row.spend)
                  for row in EndUser.objects.select_related("team").filter(user_id={user_id!r})}}))
"""

LEDGER_COUNT = """
from billing.ledger.consumer import ledger_drain
from billing.models import LedgerEntry
ledger_drain()
print(LedgerEntry.objects.filter(key_alias={alias!r}).count())
"""


@pytest.fixture(scope="module")
def seeded(gateway, _upstream_server):
    printed = gateway.run_python(SEED.format(base=_upstream_server.url))
    a_secret, b_secret, team_a_id, team_b_id = printed.split()
    return {"a": a_secret, "b": b_secret, "team_a": team_a_id, "team_b": team_b_id}


def _client(gateway, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)


def _ask(gateway, secret: str, user: str):
    return _client(gateway, secret).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, user=user)


def _rows_written(gateway, alias: str, count: int) -> int:
    """Wait until the key has ``count`` ledger rows (the writer flushes in batches); return how many."""
    deadline = time.monotonic() + 20
    while True:
        written = int(gateway.run_python(LEDGER_COUNT.format(alias=alias)))
        if written >= count or time.monotonic() > deadline:
            return written
        time.sleep(0.3)


def test_another_teams_blocked_customer_does_not_block_this_teams_requests(gateway, seeded, upstream):
    answer = _ask(gateway, seeded["a"], "blocked-cust")

    assert answer.choices[0].message.content
    with pytest.raises(openai.AuthenticationError) as refused:
        _ask(gateway, seeded["b"], "blocked-cust")
    assert refused.value.code == "end_user_blocked"


def test_another_teams_customer_budget_neither_refuses_nor_is_spent_by_this_team(gateway, seeded, upstream):
    assert _ask(gateway, seeded["a"], "broke-cust").choices[0].message.content

    # Team B's budget for its customer still holds for team B's own key.
    with pytest.raises(openai.RateLimitError) as refused:
        _ask(gateway, seeded["b"], "broke-cust")
    assert "end user 'broke-cust'" in refused.value.message


def test_spend_lands_on_the_calling_teams_customer_only(gateway, seeded, upstream):
    before = _rows_written(gateway, "a-key", 0)
    for _ in range(3):
        _ask(gateway, seeded["a"], "cust")
    assert _rows_written(gateway, "a-key", before + 3) == before + 3

    spend = json.loads(gateway.run_python(SPEND.format(user_id="cust")))

    assert Decimal(spend["team-a/cust"]) > 0
    assert Decimal(spend["team-b/cust"]) == 0


@pytest.mark.redis
def test_the_limiters_counters_of_one_id_in_two_teams_are_two(gateway, seeded, upstream):
    url = gateway.environment.get("REDIS_URL")
    if not url:
        pytest.skip("the embedded limiter keeps its counters in the process: REDIS_URL is not set")
    _ask(gateway, seeded["a"], "cust")
    _ask(gateway, seeded["b"], "cust")

    client = redis.Redis.from_url(url)
    pattern = f"{gateway.redis_prefix}:{{limits}}:budget:end_user:*"
    keys = sorted(key.decode() for key in client.scan_iter(match=pattern, count=1000))

    prefix = f"{gateway.redis_prefix}:{{limits}}:budget:end_user:"
    scoped = {key.removeprefix(prefix).rsplit(":", 1)[0] for key in keys}
    assert f"team:{seeded['team_a']}:cust" in scoped
    assert f"team:{seeded['team_b']}:cust" in scoped
    assert "cust" not in scoped


def test_the_longest_user_is_served_and_its_row_is_in_the_spend_logs(gateway, seeded, upstream):
    answer = _ask(gateway, seeded["a"], LONGEST_USER)
    assert answer.choices[0].message.content

    deadline = time.monotonic() + 20
    while True:
        logs = httpx.get(
            f"{gateway.url}/spend/logs",
            params={"page_size": 1000},
            headers={"Authorization": f"Bearer {seeded['a']}"},
        )
        assert logs.status_code == 200, logs.text
        rows = [row for row in logs.json() if row["end_user"] == LONGEST_USER]
        if rows or time.monotonic() > deadline:
            break
        _rows_written(gateway, "a-key", 0)  # one drain of the Redis stream into the ledger
        time.sleep(0.3)

    assert len(rows) == 1
    assert (rows[0]["status"], rows[0]["team_id"]) == ("success", seeded["team_a"])
