"""Default answers of a fake Anthropic upstream, shaped exactly like the Messages API's.

References: https://docs.anthropic.com/en/api/messages (the message object),
https://docs.anthropic.com/en/api/messages-streaming (event flow: message_start, then per content block
content_block_start / content_block_delta... / content_block_stop, then message_delta, message_stop;
a ping after the first content_block_start), https://docs.anthropic.com/en/api/errors (error body).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply, sse_json

MODEL = "claude-3-5-haiku-20241022"
MESSAGE_ID = "msg_01FakeAnthropic"
CONTENT = "Hello from the fake upstream"
WORDS = ["Hello", " from", " the", " fake", " upstream"]
USAGE = {
    "input_tokens": 11,
    "output_tokens": 6,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}

StreamEvent = tuple[str, str]


def anthropic_message(
    model: str = MODEL,
    content: list[dict[str, Any]] | None = None,
    *,
    text: str = CONTENT,
    stop_reason: str | None = "end_turn",
    stop_sequence: str | None = None,
    usage: dict[str, int] | None = None,
    id: str = MESSAGE_ID,
) -> dict[str, Any]:
    """Return a Messages API response body (a single text block unless ``content`` is given)."""
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content if content is not None else [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": dict(usage if usage is not None else USAGE),
    }


def text_block(*pieces: str) -> dict[str, Any]:
    """Return a streamed text block: its start and one ``text_delta`` per piece."""
    return {
        "start": {"type": "text", "text": ""},
        "deltas": [{"type": "text_delta", "text": piece} for piece in pieces],
    }


def tool_use_block(id: str, name: str, *json_pieces: str) -> dict[str, Any]:
    """Return a streamed tool_use block: its start and one ``input_json_delta`` per piece of JSON."""
    return {
        "start": {"type": "tool_use", "id": id, "name": name, "input": {}},
        "deltas": [{"type": "input_json_delta", "partial_json": piece} for piece in json_pieces],
    }


def thinking_block(*pieces: str, signature: str = "sig_fake") -> dict[str, Any]:
    """Return a streamed thinking block: ``thinking_delta`` pieces, then its ``signature_delta``."""
    return {
        "start": {"type": "thinking", "thinking": "", "signature": ""},
        "deltas": [{"type": "thinking_delta", "thinking": piece} for piece in pieces]
        + [{"type": "signature_delta", "signature": signature}],
    }


def anthropic_stream_events(
    model: str = MODEL,
    blocks: list[dict[str, Any]] | None = None,
    *,
    stop_reason: str = "end_turn",
    usage: dict[str, int] | None = None,
    id: str = MESSAGE_ID,
) -> list[StreamEvent]:
    """Return the ``(event, data)`` pairs of a whole stream, for ``Reply(sse=...)``.

    ``message_start`` reports the input usage and one output token, as Anthropic does; the final
    ``message_delta`` reports the cumulative output tokens.
    """
    usage = dict(usage if usage is not None else USAGE)
    blocks = blocks if blocks is not None else [text_block(*WORDS)]
    start_usage = {**usage, "output_tokens": 1}
    message = {**anthropic_message(model, [], usage=start_usage, id=id), "stop_reason": None}
    events: list[StreamEvent] = [("message_start", sse_json({"type": "message_start", "message": message}))]
    for index, block in enumerate(blocks):
        events.append(event("content_block_start", index=index, content_block=block["start"]))
        if index == 0:
            events.append(event("ping"))
        events += [event("content_block_delta", index=index, delta=delta) for delta in block["deltas"]]
        events.append(event("content_block_stop", index=index))
    events.append(
        event(
            "message_delta",
            delta={"stop_reason": stop_reason, "stop_sequence": None},
            usage={"output_tokens": usage["output_tokens"]},
        )
    )
    events.append(event("message_stop"))
    return events


def event(name: str, **fields: Any) -> StreamEvent:
    """Return one ``(event, data)`` pair whose data repeats the event name as ``type``."""
    return name, sse_json({"type": name, **fields})


def anthropic_error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"}


def anthropic_error(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    """Return a Reply carrying Anthropic's error body."""
    return Reply(status=status, json=anthropic_error_body(error_type, message), headers=dict(headers or {}))


def anthropic_error_event(error_type: str, message: str) -> StreamEvent:
    """Return the ``error`` event Anthropic may send mid-stream (e.g. ``overloaded_error``)."""
    return "error", sse_json({"type": "error", "error": {"type": error_type, "message": message}})


def _messages(request: RecordedRequest) -> Reply:
    body = request.json
    model = body.get("model", MODEL)
    if body.get("stream"):
        return Reply(sse=anthropic_stream_events(model))
    return Reply(json=anthropic_message(model))


def install_anthropic_routes(upstream: FakeUpstream) -> None:
    """Answer Anthropic's Messages API path like the real service would."""
    upstream.route(r"/v1/messages$", _messages)
