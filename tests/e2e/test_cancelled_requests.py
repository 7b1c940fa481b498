"""A client that leaves before its answer is billed all the same: the upstream was called and charges us.

The ledger row is written by a task of its own (the request's task is cancelled), billed on the prompt's
tokens (or the images asked for) when the upstream reported nothing, and marked ``cancelled`` (HTTP 499).
"""

import json
import time
from decimal import Decimal

import httpx
import pytest

from providers.price_table import model_info
from providers.tokens import token_counter
from tests.fakes.openai_responses import chat_chunk
from tests.fakes.upstream import Reply, sse_json

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]

SEED = """
from decimal import Decimal
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
from llm_gateway.models import Team
base = {base!r}
deployment_create(model_name="gpt-4o-mini", provider="openai", model="gpt-4o-mini", api_base=base,
                  api_key="sk-upstream")
deployment_create(model_name="image", provider="openai", model="1024-x-1024/gpt-image-1.5", api_base=base,
                  api_key="sk-upstream", mode="image_generation")
team = Team.objects.create(team_alias="leaving-team")
# A budget, so requests are held and settled against the key's spend.
key, secret = virtual_key_create(key_alias="leaver", team=team, max_budget=Decimal("100"))
print(key.token, secret)
"""

# With REDIS_URL rows wait in the Redis stream for the Celery consumer: drain it as the task would.
# Rows are this module's key's own (by token): the stream may hold other runs' rows too.
LEDGER = """
import json
from billing.ledger.consumer import ledger_drain
ledger_drain()
from billing.models import LedgerEntry
rows = LedgerEntry.objects.filter(key_token={token!r}).order_by("created_at")
print(json.dumps([{{
    "request_id": r.request_id, "cost": str(r.cost), "prompt": r.prompt_tokens,
    "completion": r.completion_tokens, "images": r.images, "basis": r.billing_basis,
    "status": r.status, "http_status": r.http_status, "operation": r.operation,
}} for r in rows]))
"""


@pytest.fixture(scope="module")
def seeded(gateway, _upstream_server) -> tuple[str, str]:
    """Return the key's token and secret."""
    token, secret = gateway.run_python(SEED.format(base=_upstream_server.url)).split()
    return token, secret


@pytest.fixture(scope="module")
def secret(seeded) -> str:
    return seeded[1]


@pytest.fixture
def rows(gateway, seeded):
    """Return a reader of the key's ledger rows, waiting until ``count`` were written (writers batch)."""

    def read(count: int) -> list[dict]:
        deadline = time.monotonic() + 20
        while True:
            found = json.loads(gateway.run_python(LEDGER.format(token=seeded[0])))
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.3)

    return read


def _leave_early(gateway, secret: str, path: str, body: dict) -> None:
    """Send a request and go away before its answer (the upstream is scripted to be slower)."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway.url}{path}", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=1.0
        )


def test_an_abandoned_request_is_billed_on_its_prompt_and_marked_cancelled(gateway, secret, upstream, rows):
    upstream.enqueue(Reply(delay=3.0))
    before = len(rows(0))

    _leave_early(gateway, secret, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES})

    row = rows(before + 1)[-1]
    assert len(upstream.requests) == 1  # the upstream was called: it charges for the prompt
    prompt = token_counter(model="gpt-4o-mini", messages=MESSAGES)
    assert (row["status"], row["http_status"], row["basis"]) == ("cancelled", 499, "estimated")
    assert (row["prompt"], row["completion"]) == (prompt, 0)
    assert Decimal(row["cost"]) == prompt * model_info("gpt-4o-mini", "openai")["input_cost_per_token"]


def test_the_abandoned_request_is_settled_into_the_key_spend(gateway, secret, upstream, rows):
    before = rows(0)
    spent_before = sum(Decimal(row["cost"]) for row in before)
    upstream.enqueue(Reply(delay=3.0))
    _leave_early(gateway, secret, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES})
    cancelled = rows(len(before) + 1)[-1]

    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )

    assert response.status_code == 200
    own = Decimal(response.headers["x-litellm-response-cost"])
    assert Decimal(response.headers["x-litellm-key-spend"]) == spent_before + Decimal(cancelled["cost"]) + own


def test_a_stream_abandoned_before_its_first_chunk_is_billed_as_cancelled(gateway, secret, upstream, rows):
    late = sse_json(chat_chunk("gpt-4o-mini", {"content": "late"}))
    upstream.enqueue(Reply(delay=3.0, sse=[late, "[DONE]"]))
    before = len(rows(0))

    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    _leave_early(gateway, secret, "/v1/chat/completions", body)

    row = rows(before + 1)[-1]
    assert (row["status"], row["http_status"]) == ("cancelled", 499)
    assert row["prompt"] == token_counter(model="gpt-4o-mini", messages=MESSAGES)
    assert Decimal(row["cost"]) > 0


def test_a_stream_the_client_cuts_short_is_partial_and_cancelled(gateway, secret, upstream, rows):
    events = [sse_json(chat_chunk("gpt-4o-mini", {"content": f" word{number}"})) for number in range(40)]
    upstream.enqueue(Reply(sse=[*events, "[DONE]"], event_delay=0.05))
    before = len(rows(0))

    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
    ) as response:
        lines = response.iter_lines()
        next(line for line in lines if line.startswith("data:"))

    row = rows(before + 1)[-1]
    assert (row["status"], row["basis"]) == ("cancelled", "partial")
    assert 0 < row["completion"] < 80


def test_an_abandoned_image_request_is_billed_for_the_images_asked_for(gateway, secret, upstream, rows):
    upstream.enqueue(Reply(delay=3.0))
    before = len(rows(0))

    _leave_early(
        gateway,
        secret,
        "/v1/images/generations",
        {"model": "image", "prompt": "a lighthouse", "n": 2},
    )

    row = rows(before + 1)[-1]
    assert (row["operation"], row["status"], row["images"]) == ("image_generation", "cancelled", 2)
    per_image = model_info("1024-x-1024/gpt-image-1.5", "openai")["input_cost_per_image"]
    assert Decimal(row["cost"]) == 2 * per_image
