"""Turn a stream's chunks into one response, and one response back into chunks.

Used to store a streamed answer in the response cache and to replay a cached answer to a caller who
streams. ``stream_chunk_builder`` keeps LiteLLM's name for the same job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from providers.types import wrap_response


def chunks_to_response(chunks: Iterable[Mapping[str, Any]], usage: Mapping[str, Any] | None = None) -> dict:
    """Return the chat.completion (or text_completion) that a list of chunk dicts adds up to."""
    chunks = list(chunks)
    if not chunks:
        raise ValueError("no chunks to build a response from")
    first = chunks[0]
    is_chat = first.get("object", "chat.completion.chunk") == "chat.completion.chunk"
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices", ()):
            merged = choices.setdefault(
                choice.get("index", 0), {"content": [], "tool_calls": {}, "finish": None}
            )
            merged["finish"] = choice.get("finish_reason") or merged["finish"]
            if not is_chat:
                merged["content"].append(choice.get("text") or "")
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                merged["content"].append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = merged["tool_calls"].setdefault(
                    call.get("index", 0),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
    response: dict[str, Any] = {
        "id": first.get("id", ""),
        "object": "chat.completion" if is_chat else "text_completion",
        "created": first.get("created", 0),
        "model": first.get("model", ""),
        "choices": [_choice(index, merged, is_chat) for index, merged in sorted(choices.items())],
    }
    if usage:
        response["usage"] = dict(usage)
    return response


def _choice(index: int, merged: dict[str, Any], is_chat: bool) -> dict[str, Any]:
    text = "".join(merged["content"])
    if not is_chat:
        return {"index": index, "text": text, "finish_reason": merged["finish"], "logprobs": None}
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if merged["tool_calls"]:
        message["tool_calls"] = [call for _, call in sorted(merged["tool_calls"].items())]
    return {"index": index, "message": message, "finish_reason": merged["finish"], "logprobs": None}


def response_to_chunks(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the chunks that replay a response as a stream (one content chunk per choice)."""
    is_chat = response.get("object", "chat.completion") == "chat.completion"
    head = {key: response[key] for key in ("id", "created", "model") if key in response}
    head["object"] = "chat.completion.chunk" if is_chat else "text_completion"
    chunks = []
    for choice in response.get("choices", ()):
        index = choice.get("index", 0)
        if not is_chat:
            chunks.append(
                {
                    **head,
                    "choices": [
                        {
                            "index": index,
                            "text": choice.get("text", ""),
                            "finish_reason": choice.get("finish_reason"),
                        }
                    ],
                }
            )
            continue
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {**call, "index": position} for position, call in enumerate(message["tool_calls"])
            ]
        chunks.append({**head, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
        chunks.append(
            {**head, "choices": [{"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}]}
        )
    return chunks


def stream_chunk_builder(chunks: Iterable[Any]) -> Any:
    """Return the response object a list of chunk objects (or dicts) adds up to."""
    dicts = [chunk.model_dump() if hasattr(chunk, "model_dump") else dict(chunk) for chunk in chunks]
    usage = next((chunk["usage"] for chunk in reversed(dicts) if chunk.get("usage")), None)
    response = chunks_to_response([chunk for chunk in dicts if chunk.get("choices")], usage)
    return wrap_response("chat" if response["object"] == "chat.completion" else "text_completion", response)
