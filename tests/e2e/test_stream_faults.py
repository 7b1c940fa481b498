"""Faults inside an upstream stream, end to end: the client gets what was generated, then an error event.

The fake upstream writes the good events and the faulty one in one write, so the gateway reads them
together. Every such stream is billed once, as an error, on the ``partial`` basis, for what it generated.
"""

import json
import time

import httpx
import openai
import pytest

from providers.tokens import token_counter
from tests.fakes.anthropic_responses import anthropic_stream_events
from tests.fakes.openai_responses import chat_chunk
from tests.fakes.upstream import Reply, sse_json

MESSAGES = [{"role": "user", "content": "Say hello"}]
WORDS = ["Hello", " there", " friend", " again"]

DEPLOYMENTS = [
    {"model_name": "gpt-4o-mini", "provider": "openai", "model": "gpt-4o-mini"},
    {"model_name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"},
]

SEED = """
import json
from llm_gateway.models import Team
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create
for fields in json.loads({deployments!r}):
    deployment_create(api_base={base!r}, api_key="sk-upstream", **fields)
team = Team.objects.create(team_alias="stream-faults-team")
key, secret = virtual_key_create(key_alias="stream-faults", team=team)
print(secret)
"""

ROW = """
import json
from billing.ledger.consumer import ledger_drain
ledger_drain()  # with REDIS_URL, rows wait in the Redis stream for the consumer; a no-op embedded
from billing.models import LedgerEntry
print(json.dumps([{{
    "prompt": r.prompt_tokens, "completion": r.completion_tokens, "basis": r.billing_basis,
    "status": r.status, "error_type": r.error_type,
}} for r in LedgerEntry.objects.filter(request_id={request_id!r})]))
"""


@pytest.fixture(scope="module")
def secret(gateway, _upstream_server) -> str:
    return gateway.run_python(SEED.format(base=_upstream_server.url, deployments=json.dumps(DEPLOYMENTS)))


def _frames(events: list[str | tuple[str, str]]) -> bytes:
    frames = b""
    for item in events:
        name, data = item if isinstance(item, tuple) else (None, item)
        frames += (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()
    return frames


def _openai_words() -> list[str]:
    events = [sse_json(chat_chunk("gpt-4o-mini", {"role": "assistant", "content": ""}))]
    return events + [sse_json(chat_chunk("gpt-4o-mini", {"content": word})) for word in WORDS]


def _stream(gateway, secret: str, model: str) -> tuple[str, list[str]]:
    """Stream a chat to its end; return the call id and the data of every event the client saw."""
    body = {"model": model, "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
        return response.headers["x-litellm-call-id"], events


def _row(gateway, request_id: str) -> dict:
    """Return the call's one ledger row once written (the writer flushes in batches)."""
    deadline = time.monotonic() + 20
    while True:
        rows = json.loads(gateway.run_python(ROW.format(request_id=request_id)))
        if rows or time.monotonic() > deadline:
            assert len(rows) == 1, rows
            return rows[0]
        time.sleep(0.3)


def _text(events: list[str]) -> str:
    chunks = [json.loads(data) for data in events]
    return "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"])


@pytest.mark.parametrize(
    "fault",
    ["{not json", sse_json({"error": {"message": "The server had an error", "type": "server_error"}})],
    ids=["malformed-event", "error-event"],
)
@pytest.mark.parametrize("first_read_apart", [False, True], ids=["one-read", "role-chunk-read-first"])
def test_the_chunks_before_a_fault_in_the_same_read_are_delivered_and_billed(
    gateway, secret, upstream, fault, first_read_apart
):
    role, *words = _openai_words()
    if first_read_apart:
        # The role chunk is read alone (the spacing makes a separate read likely, nothing depends on it).
        upstream.enqueue(Reply(sse=[role], event_delay=0.2, raw_sse=_frames([*words, fault])))
    else:
        upstream.enqueue(Reply(raw_sse=_frames([role, *words, fault])))

    request_id, seen = _stream(gateway, secret, "gpt-4o-mini")

    assert _text(seen[:-1]) == "".join(WORDS)
    assert json.loads(seen[-1])["error"]["message"]
    assert "[DONE]" not in seen
    assert len(upstream.requests) == 1  # chunks reached the client: the gateway did not try again
    row = _row(gateway, request_id)
    completion = token_counter(model="gpt-4o-mini", text="".join(WORDS))
    assert (row["status"], row["basis"]) == ("error", "partial")
    assert row["prompt"] == token_counter(model="gpt-4o-mini", messages=MESSAGES)
    assert row["completion"] == completion > 0


def test_a_malformed_anthropic_event_ends_the_stream_with_an_error_event(gateway, secret, upstream):
    # message_start, content_block_start, ping and the text deltas; then a delta that is not JSON.
    events = [
        item for item in anthropic_stream_events("claude-sonnet-4-5") if item[0] != "content_block_stop"
    ]
    events = events[: events.index(next(item for item in events if item[0] == "message_delta"))]
    upstream.enqueue(Reply(raw_sse=_frames([*events, ("content_block_delta", "{not json")])))

    request_id, seen = _stream(gateway, secret, "claude")

    assert _text(seen[:-1])
    error = json.loads(seen[-1])["error"]
    assert "malformed stream event" in error["message"]
    row = _row(gateway, request_id)
    assert (row["status"], row["basis"]) == ("error", "partial")
    assert row["completion"] > 0


def test_the_openai_sdk_gets_the_earlier_chunks_then_an_api_error(gateway, secret, upstream):
    upstream.enqueue(Reply(raw_sse=_frames([*_openai_words(), "{not json"])))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)
    text = []

    with pytest.raises(openai.APIError, match="malformed stream event"):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            text.append(chunk.choices[0].delta.content or "")

    assert "".join(text) == "".join(WORDS)
