"""Default answers of a fake OpenAI-compatible upstream, shaped exactly like OpenAI's.

Reference: https://platform.openai.com/docs/api-reference (chat object, chunk object, embeddings,
images, models). Azure serves the same bodies under /openai/deployments/{name}/...
"""

from __future__ import annotations

import base64
import struct

from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply, sse_json

CONTENT = "Hello from the fake upstream"
USAGE = {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17}


def chat_completion(model: str, content: str = CONTENT, **extra) -> dict:
    return {
        "id": "chatcmpl-fake123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": dict(USAGE),
        **extra,
    }


def chat_chunk(model: str, delta: dict, finish_reason: str | None = None, **extra) -> dict:
    return {
        "id": "chatcmpl-fake123",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        **extra,
    }


def chat_stream_events(model: str, words: list[str], include_usage: bool) -> list[str]:
    events = [sse_json(chat_chunk(model, {"role": "assistant", "content": ""}))]
    events += [sse_json(chat_chunk(model, {"content": word})) for word in words]
    events.append(sse_json(chat_chunk(model, {}, "stop")))
    if include_usage:
        events.append(sse_json({**chat_chunk(model, {}), "choices": [], "usage": dict(USAGE)}))
    events.append("[DONE]")
    return events


def _chat(request: RecordedRequest) -> Reply:
    body = request.json
    model = body.get("model", "deployment")
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        words = ["Hello", " from", " the", " fake", " upstream"]
        return Reply(sse=chat_stream_events(model, words, include_usage))
    return Reply(json=chat_completion(model))


def _text_completion(request: RecordedRequest) -> Reply:
    body = request.json
    return Reply(
        json={
            "id": "cmpl-fake123",
            "object": "text_completion",
            "created": 1_700_000_000,
            "model": body.get("model", "deployment"),
            "choices": [{"index": 0, "text": " world", "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
        }
    )


def embedding_vector(index: int, dimensions: int) -> list[float]:
    return [round(0.001 * (index + 1) * (position + 1), 6) for position in range(dimensions)]


def _embeddings(request: RecordedRequest) -> Reply:
    body = request.json
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dimensions = body.get("dimensions", 4)
    data = []
    for index in range(len(inputs)):
        vector = embedding_vector(index, dimensions)
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        else:
            data.append({"object": "embedding", "index": index, "embedding": vector})
    return Reply(
        json={
            "object": "list",
            "data": data,
            "model": body.get("model", "deployment"),
            "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)},
        }
    )


def _images(request: RecordedRequest) -> Reply:
    body = request.json
    n = body.get("n", 1)
    if body.get("response_format") == "b64_json":
        item = {"b64_json": base64.b64encode(b"fake-png").decode(), "revised_prompt": body["prompt"]}
    else:
        item = {"url": "https://images.example/fake.png", "revised_prompt": body["prompt"]}
    return Reply(json={"created": 1_700_000_000, "data": [dict(item) for _ in range(n)]})


def model_list(*model_ids: str) -> dict:
    return {
        "object": "list",
        "data": [
            {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
            for model_id in model_ids
        ],
    }


def _models(request: RecordedRequest) -> Reply:
    return Reply(json=model_list("gpt-4o", "dall-e-3", "text-embedding-3-small"))


def install_openai_routes(upstream: FakeUpstream) -> None:
    """Answer OpenAI (and Azure) paths like the real service would."""
    upstream.route(r"/chat/completions$", _chat)
    upstream.route(r"/completions$", _text_completion)
    upstream.route(r"/embeddings$", _embeddings)
    upstream.route(r"/images/generations$", _images)
    upstream.route(r"/models$", _models)


def openai_error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None):
    """Return a Reply carrying OpenAI's error body."""
    return Reply(
        status=status, json={"error": {"message": message, "type": type_, "param": param, "code": code}}
    )
