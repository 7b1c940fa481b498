"""Anthropic message -> OpenAI ``chat.completion``; Anthropic stream events -> ``chat.completion.chunk``s.

References: https://docs.anthropic.com/en/api/messages (the message object),
https://docs.anthropic.com/en/api/messages-streaming (events and delta types).

Anthropic gives no creation time: responses leave ``created`` out and chunks carry ``state.created``
(0 unless set); the call engine fills in the time, since an adapter may not read the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from providers.adapters.anthropic.errors import stream_error
from providers.upstream import Operation, ResolvedDeployment, SSEEvent, StreamState

# stop_reason -> OpenAI finish_reason.
# https://docs.anthropic.com/en/docs/build-with-claude/handling-stop-reasons
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server-tool loop paused; the turn is over for this request
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str | None:
    """Return OpenAI's finish_reason for a stop_reason (an unknown one counts as a normal stop)."""
    return FINISH_REASONS.get(stop_reason, "stop") if stop_reason else None


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Return Anthropic usage in OpenAI's form.

    Anthropic counts cache reads and writes apart from ``input_tokens``; OpenAI's ``prompt_tokens``
    includes cached tokens, so all three are summed. The two cache counts are kept as extra fields
    because billing prices cache writes and reads differently.
    https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#tracking-cache-performance
    """
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_creation = usage.get("cache_creation_input_tokens") or 0
    prompt_tokens = (usage.get("input_tokens") or 0) + cache_read + cache_creation
    completion_tokens = usage.get("output_tokens") or 0
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cache_read},
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
    }


def _tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    function = {"name": block["name"], "arguments": arguments}
    return {"id": block["id"], "type": "function", "function": function}


def parse_response(operation: Operation, payload: Any, deployment: ResolvedDeployment) -> dict[str, Any]:
    """Return an Anthropic message as an OpenAI ``chat.completion`` (without ``created``)."""
    blocks = payload.get("content") or []
    texts = [block["text"] for block in blocks if block.get("type") == "text"]
    thinking = [block["thinking"] for block in blocks if block.get("type") == "thinking"]
    tool_calls = [_tool_call(block) for block in blocks if block.get("type") == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    return {
        "id": payload.get("id") or "",
        "object": "chat.completion",
        "model": payload.get("model") or deployment.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(payload.get("stop_reason")),
            }
        ],
        "usage": openai_usage(payload.get("usage") or {}),
    }


def _chunk(state: StreamState, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": state.id,
        "object": "chat.completion.chunk",
        "created": state.created,
        "model": state.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _update_usage(state: StreamState, usage: Mapping[str, Any] | None) -> None:
    # message_delta counts are cumulative, and may repeat input counts: the latest value wins.
    raw = state.extra.setdefault("anthropic_usage", {})
    raw.update({key: value for key, value in (usage or {}).items() if isinstance(value, int)})
    state.usage = openai_usage(raw)


def _message_start(state: StreamState, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    message = payload.get("message") or {}
    state.id = message.get("id") or state.id
    state.model = message.get("model") or state.model or state.deployment.model
    _update_usage(state, message.get("usage"))
    return [_chunk(state, {"role": "assistant", "content": ""})]


def _tool_calls(state: StreamState) -> dict[int, int]:
    """Return the OpenAI tool-call index of each tool_use block, by block index."""
    return state.extra.setdefault("tool_calls", {})


def _tool_call_delta(state: StreamState, block_index: int, **fields: Any) -> dict[str, Any]:
    return _chunk(state, {"tool_calls": [{"index": _tool_calls(state)[block_index], **fields}]})


def _content_block_start(state: StreamState, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    block, block_index = payload.get("content_block") or {}, payload.get("index", 0)
    if block.get("type") == "text" and block.get("text"):
        return [_chunk(state, {"content": block["text"]})]
    if block.get("type") != "tool_use":
        return []
    tool_calls = _tool_calls(state)
    tool_calls[block_index] = len(tool_calls)
    function = {"name": block["name"], "arguments": ""}
    return [_tool_call_delta(state, block_index, id=block["id"], type="function", function=function)]


def _content_block_delta(state: StreamState, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    delta, block_index = payload.get("delta") or {}, payload.get("index", 0)
    delta_type = delta.get("type")
    if delta_type == "text_delta":
        return [_chunk(state, {"content": delta["text"]})]
    if delta_type == "thinking_delta":
        return [_chunk(state, {"reasoning_content": delta["thinking"]})]
    if delta_type == "input_json_delta" and delta.get("partial_json"):
        state.extra.setdefault("tool_calls_with_arguments", set()).add(block_index)
        return [_tool_call_delta(state, block_index, function={"arguments": delta["partial_json"]})]
    return []  # signature_delta, citations_delta, empty input_json_delta: nothing for OpenAI


def _content_block_stop(state: StreamState, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    block_index = payload.get("index", 0)
    with_arguments = state.extra.get("tool_calls_with_arguments", ())
    if block_index in _tool_calls(state) and block_index not in with_arguments:
        # A tool without parameters streams no input: OpenAI callers expect arguments to parse.
        return [_tool_call_delta(state, block_index, function={"arguments": "{}"})]
    return []


def _message_delta(state: StreamState, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    _update_usage(state, payload.get("usage"))
    stop_reason = (payload.get("delta") or {}).get("stop_reason")
    return [_chunk(state, {}, finish_reason(stop_reason))] if stop_reason else []


def _message_stop(state: StreamState, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    state.finished = True
    return []


EventHandler = Callable[[StreamState, Mapping[str, Any]], list[dict[str, Any]]]

# Stream event -> its translation; other events (ping, and any added later) give no chunk.
# https://docs.anthropic.com/en/api/messages-streaming#event-types
EVENTS: dict[str, EventHandler] = {
    "message_start": _message_start,
    "content_block_start": _content_block_start,
    "content_block_delta": _content_block_delta,
    "content_block_stop": _content_block_stop,
    "message_delta": _message_delta,
    "message_stop": _message_stop,
}


def parse_stream_event(operation: Operation, state: StreamState, event: SSEEvent) -> list[dict[str, Any]]:
    """Return the OpenAI chunks one Anthropic stream event stands for; raise on an ``error`` event."""
    payload = orjson.loads(event.data) if event.data else {}
    name = event.event or payload.get("type")
    if name == "error":
        raise stream_error(payload, event.data, state.deployment)
    handler = EVENTS.get(name or "")
    return handler(state, payload) if handler else []
