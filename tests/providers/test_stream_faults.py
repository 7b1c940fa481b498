"""Faults inside a stream: what the upstream sent before the fault arrives, then a typed error.

The fake upstream writes each stream's bytes in one write, so the client reads the good events and
the bad one together, as it would from a provider that flushes them at once.
"""

import pytest

from providers.api import acompletion, completion
from providers.exceptions import APIError, BadGatewayError, InternalServerError
from tests.fakes.anthropic_responses import MODEL, event
from tests.fakes.openai_responses import chat_chunk
from tests.fakes.upstream import Reply, sse_json

MESSAGES = [{"role": "user", "content": "Say hello"}]
WORDS = ["Hello", " there", " friend", " again"]

CALLS = {
    "openai": {"model": "openai/gpt-4o-mini", "api_key": "sk-test-openai"},
    "azure": {"model": "azure/my-gpt4o", "api_key": "azure-key", "api_version": "2024-06-01"},
    "anthropic": {"model": f"anthropic/{MODEL}", "api_key": "sk-ant-test"},
}
PROVIDER_MODELS = {"openai": "gpt-4o-mini", "azure": "my-gpt4o", "anthropic": MODEL}


def _frames(events: list[str | tuple[str, str]]) -> bytes:
    frames = b""
    for item in events:
        name, data = item if isinstance(item, tuple) else (None, item)
        frames += (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()
    return frames


def _good_events(provider: str) -> list[str | tuple[str, str]]:
    """Return the events of a stream's first words, in the provider's own format."""
    if provider == "anthropic":
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        }
        events = [("message_start", sse_json({"type": "message_start", "message": message}))]
        events.append(event("content_block_start", index=0, content_block={"type": "text", "text": ""}))
        events += [
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": word})
            for word in WORDS
        ]
        return events
    return [sse_json(chat_chunk("gpt-4o-mini", {"content": word})) for word in WORDS]


def _bad_event(provider: str, data: str) -> str | tuple[str, str]:
    return ("content_block_delta", data) if provider == "anthropic" else data


def _call(upstream, provider: str) -> dict:
    return {**CALLS[provider], "api_base": upstream.url}


def _text(chunks) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


@pytest.mark.parametrize("provider", ["openai", "azure", "anthropic"])
@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", "null", '"text"'])
def test_a_malformed_event_raises_a_bad_gateway_error_after_the_earlier_chunks(upstream, provider, bad):
    upstream.enqueue(Reply(raw_sse=_frames([*_good_events(provider), _bad_event(provider, bad)])))
    chunks = []

    with pytest.raises(BadGatewayError) as raised:
        for chunk in completion(messages=MESSAGES, stream=True, **_call(upstream, provider)):
            chunks.append(chunk)

    assert _text(chunks) == "".join(WORDS)
    assert (raised.value.provider, raised.value.model) == (provider, PROVIDER_MODELS[provider])
    assert "malformed stream event" in raised.value.message
    assert raised.value.to_openai_error()["error"]["type"] == "api_error"


@pytest.mark.parametrize("provider", ["openai", "azure", "anthropic"])
async def test_a_malformed_event_read_with_earlier_chunks_delivers_them_first_asynchronously(
    upstream, provider
):
    upstream.enqueue(Reply(raw_sse=_frames([*_good_events(provider), _bad_event(provider, "{not json")])))
    chunks = []

    stream = await acompletion(messages=MESSAGES, stream=True, **_call(upstream, provider))
    with pytest.raises(BadGatewayError) as raised:
        async for chunk in stream:
            chunks.append(chunk)

    assert _text(chunks) == "".join(WORDS)
    assert (raised.value.provider, raised.value.model) == (provider, PROVIDER_MODELS[provider])


def test_an_event_that_is_not_utf8_is_decoded_with_replacement_characters(upstream):
    bad_word = b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    bad_word += b'"choices":[{"index":0,"delta":{"content":"caf\xe9"},"finish_reason":null}]}'
    raw = _frames(_good_events("openai")) + b"data: " + bad_word + b"\n\ndata: [DONE]\n\n"
    upstream.enqueue(Reply(raw_sse=raw))

    chunks = list(completion(messages=MESSAGES, stream=True, **_call(upstream, "openai")))

    assert _text(chunks) == "".join(WORDS) + "caf\ufffd"


async def test_chunks_read_together_with_an_error_event_reach_the_caller_before_the_error(upstream):
    error = sse_json({"error": {"message": "The server had an error", "type": "server_error"}})
    upstream.enqueue(Reply(raw_sse=_frames([*_good_events("openai"), error])))
    chunks = []

    stream = await acompletion(messages=MESSAGES, stream=True, **_call(upstream, "openai"))
    with pytest.raises(InternalServerError) as raised:
        async for chunk in stream:
            chunks.append(chunk)

    assert _text(chunks) == "".join(WORDS)
    assert isinstance(raised.value, APIError) and "The server had an error" in raised.value.message


async def test_an_anthropic_error_event_read_with_earlier_deltas_delivers_them_first(upstream):
    error = (
        "error",
        sse_json({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
    upstream.enqueue(Reply(raw_sse=_frames([*_good_events("anthropic"), error])))
    chunks = []

    stream = await acompletion(messages=MESSAGES, stream=True, **_call(upstream, "anthropic"))
    with pytest.raises(APIError) as raised:
        async for chunk in stream:
            chunks.append(chunk)

    assert _text(chunks) == "".join(WORDS)
    assert "Overloaded" in raised.value.message
