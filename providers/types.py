"""OpenAI's response shapes, as objects with attribute access.

Adapters produce plain OpenAI-format dicts; the library wraps them here for callers. Field names are
OpenAI's verbatim and unknown fields are kept (``extra="allow"``), so ``model_dump()`` gives back the
same JSON the provider (or our translation) produced. Reference:
https://platform.openai.com/docs/api-reference/chat/object
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr


class OpenAIObject(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    _hidden_params: dict[str, Any] = PrivateAttr(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the object as OpenAI's JSON-ready dict (fields that were never set are left out)."""
        return self.model_dump(exclude_unset=True)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("exclude_unset", True)
        return super().model_dump(**kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("exclude_unset", True)
        return super().model_dump_json(**kwargs)

    def __getitem__(self, key: str) -> Any:
        """Allow ``response["choices"]`` for callers used to dicts."""
        return getattr(self, key)

    @property
    def cache_hit(self) -> bool:
        """Return True when this response came from the response cache."""
        return bool(self._hidden_params.get("cache_hit"))


class Function(OpenAIObject):
    name: str | None = None
    arguments: str | None = None


class ToolCall(OpenAIObject):
    id: str | None = None
    type: str | None = "function"
    function: Function
    index: int | None = None


class PromptTokensDetails(OpenAIObject):
    cached_tokens: int | None = None


class CompletionTokensDetails(OpenAIObject):
    reasoning_tokens: int | None = None


class Usage(OpenAIObject):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class Message(OpenAIObject):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class Choice(OpenAIObject):
    index: int = 0
    message: Message
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletion(OpenAIObject):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class Delta(OpenAIObject):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class ToolCallDelta(ToolCall):
    function: Function | None = None  # type: ignore[assignment]  # deltas may carry only arguments


class StreamDelta(Delta):
    tool_calls: list[ToolCallDelta] | None = None  # type: ignore[assignment]  # partial tool calls


class StreamChoice(OpenAIObject):
    index: int = 0
    delta: StreamDelta
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletionChunk(OpenAIObject):
    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    choices: list[StreamChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class TextChoice(OpenAIObject):
    index: int = 0
    text: str = ""
    finish_reason: str | None = None
    logprobs: Any = None


class TextCompletion(OpenAIObject):
    id: str
    object: str = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage | None = None


class Embedding(OpenAIObject):
    object: str = "embedding"
    index: int = 0
    embedding: list[float] | str


class EmbeddingResponse(OpenAIObject):
    object: str = "list"
    data: list[Embedding]
    model: str
    usage: Usage | None = None


class Image(OpenAIObject):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImageResponse(OpenAIObject):
    created: int
    data: list[Image]
    usage: Any = None


RESPONSE_TYPES: dict[str, type[OpenAIObject]] = {
    "chat": ChatCompletion,
    "text_completion": TextCompletion,
    "embedding": EmbeddingResponse,
    "image_generation": ImageResponse,
}
CHUNK_TYPES: dict[str, type[OpenAIObject]] = {
    "chat": ChatCompletionChunk,
    "text_completion": TextCompletion,
}


def wrap_response(operation: str, payload: dict[str, Any], hidden: dict[str, Any] | None = None) -> Any:
    """Return an OpenAI-format dict as the response object for ``operation``."""
    response = RESPONSE_TYPES[operation].model_validate(payload)
    if hidden:
        response._hidden_params.update(hidden)
    return response


def wrap_chunk(operation: str, payload: dict[str, Any]) -> Any:
    """Return one OpenAI-format stream chunk dict as an object."""
    return CHUNK_TYPES[operation].model_validate(payload)
