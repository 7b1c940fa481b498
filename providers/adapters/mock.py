"""The built-in mock provider: answers locally, without a network, for demos and tests.

``mock/<anything>`` answers every operation. ``mock_response`` sets the answer: a string (the reply
text), or an exception instance or class (raised, as a real provider's failure would be).
``mock_timeout=True`` waits for the call's timeout and then raises ``Timeout``. ``mock_delay`` (seconds,
at most ``MAX_DELAY``) delays the answer. Any other model can be mocked by passing ``mock_response`` to
a call. The model list (``respond_models``) names the deployment's model. Images answer ``n`` from 1 to
``MAX_IMAGES``, as OpenAI's images API does.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.exceptions import APIError, BadRequestError, Timeout
from providers.tokens import token_counter
from providers.upstream import Operation, ResolvedDeployment

DEFAULT_RESPONSE = "This is a mock response from the LLM Gateway."

EMBEDDING_DIMENSIONS = 8
DEFAULT_TOKENIZER_MODEL = "gpt-4o"  # mock usage is counted as an OpenAI model would count it
MAX_DELAY = 60.0  # seconds: a longer mock_delay waits this long
MAX_IMAGES = 10


@dataclass(slots=True)
class MockReply:
    payload: dict[str, Any] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None
    error: APIError | None = None
    delay: float = 0.0


def _tokens(text: str) -> int:
    return token_counter(model=DEFAULT_TOKENIZER_MODEL, text=text)


def _prompt_text(operation: Operation, body: Mapping[str, Any]) -> str:
    value = body.get("prompt") if operation != "embedding" else body.get("input")
    return " ".join(map(str, value)) if isinstance(value, list) else str(value or "")


def _usage(prompt_tokens: int, completion: str) -> dict[str, int]:
    completion_tokens = _tokens(completion)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _error(mocked: Any, deployment: ResolvedDeployment) -> APIError | None:
    if isinstance(mocked, APIError):
        return mocked
    if isinstance(mocked, type) and issubclass(mocked, APIError):
        return mocked("Mocked failure", provider=deployment.provider, model=deployment.model)
    return None


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((byte - 128) / 128, 6) for byte in digest[:EMBEDDING_DIMENSIONS]]


def _delay(body: Mapping[str, Any]) -> float:
    delay = body.get("mock_delay") or 0
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:  # NaN too
        raise BadRequestError(
            "Invalid 'mock_delay': expected a number of seconds, 0 or more.",
            param="mock_delay",
            code="invalid_value",
        )
    return min(float(delay), MAX_DELAY)


def _images(body: Mapping[str, Any]) -> int:
    n = body.get("n") or 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise BadRequestError(
            f"Invalid 'n': expected an integer from 1 to {MAX_IMAGES}.", param="n", code="invalid_value"
        )
    return n


def respond(operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment) -> MockReply:
    """Return the mock answer (or failure) for a call."""
    mocked = body.get("mock_response")
    delay = _delay(body)
    if body.get("mock_timeout"):
        timeout = Timeout(
            f"Mock timeout after {deployment.timeout:g}s",
            provider=deployment.provider,
            model=deployment.model,
        )
        return MockReply(error=timeout, delay=deployment.timeout)
    error = _error(mocked, deployment)
    if error is not None:
        return MockReply(error=error, delay=delay)
    text = DEFAULT_RESPONSE if mocked is None else str(mocked)
    reply = _BUILDERS[operation](body, deployment, text)
    reply.delay = delay
    return reply


def respond_models(deployment: ResolvedDeployment) -> dict[str, Any]:
    """Return the model list: the one model the deployment names."""
    model = {"id": deployment.model, "object": "model", "created": 0, "owned_by": "mock"}
    return {"object": "list", "data": [model]}


def _chat(body: Mapping[str, Any], deployment: ResolvedDeployment, text: str) -> MockReply:
    messages = list(body.get("messages") or ())
    usage = _usage(
        token_counter(model=DEFAULT_TOKENIZER_MODEL, messages=messages, tools=body.get("tools")), text
    )
    head = {"id": "chatcmpl-mock", "model": deployment.model}
    payload = {
        **head,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    }
    words = text.split(" ")
    pieces = [word if index == 0 else " " + word for index, word in enumerate(words)]
    chunk = {**head, "object": "chat.completion.chunk"}
    chunks = [
        {
            **chunk,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
    ]
    chunks += [
        {**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        for piece in pieces
    ]
    chunks.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return MockReply(payload=payload, chunks=chunks, usage=usage)


def _text_completion(body: Mapping[str, Any], deployment: ResolvedDeployment, text: str) -> MockReply:
    usage = _usage(_tokens(_prompt_text("text_completion", body)), text)
    head = {"id": "cmpl-mock", "object": "text_completion", "model": deployment.model}
    payload = {**head, "choices": [{"index": 0, "text": text, "finish_reason": "stop"}], "usage": usage}
    chunks = [
        {**head, "choices": [{"index": 0, "text": text, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]},
    ]
    return MockReply(payload=payload, chunks=chunks, usage=usage)


def _embedding(body: Mapping[str, Any], deployment: ResolvedDeployment, text: str) -> MockReply:
    inputs = body.get("input")
    # One input: a string or an array of token ids. Several: an array of strings or of token arrays.
    if not isinstance(inputs, list) or (inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    data = []
    for index, item in enumerate(inputs):
        vector = _vector(str(item))
        if body.get("encoding_format") == "base64":
            encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        else:
            encoded = vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    prompt_tokens = _tokens(_prompt_text("embedding", body))
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return MockReply(payload={"object": "list", "data": data, "model": deployment.model, "usage": usage})


def _image(body: Mapping[str, Any], deployment: ResolvedDeployment, text: str) -> MockReply:
    if body.get("response_format") == "b64_json":
        item = {"b64_json": base64.b64encode(text.encode()).decode()}
    else:
        item = {"url": "https://example.com/mock-image.png"}
    data = [dict(item, revised_prompt=body.get("prompt")) for _ in range(_images(body))]
    return MockReply(payload={"created": 0, "data": data})


_BUILDERS = {
    "chat": _chat,
    "text_completion": _text_completion,
    "embedding": _embedding,
    "image_generation": _image,
}
