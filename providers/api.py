"""The library's public calls: completion, text_completion, embedding, image_generation (and async).

Each call splits the library's own options (credentials, retries, fallbacks, cache, mocking) from the
OpenAI request body, then tries the model and its fallbacks, each with retries, through the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers import engine
from providers.caching import active_cache, cache_controls, cache_key
from providers.chunks import chunks_to_response, response_to_chunks
from providers.credentials import credentials_from_environment, env_reference
from providers.engine import AsyncChunkSource, ChunkSource
from providers.exceptions import APIError, AuthenticationError, BadRequestError
from providers.registry import PROVIDERS, ProviderSpec, model_resolve
from providers.resilience import FallbackPlan, as_list, awith_retries, with_retries
from providers.streaming import AsyncCompletionStream, CompletionStream
from providers.types import wrap_response
from providers.upstream import DEFAULT_TIMEOUT, Operation, ResolvedDeployment, StreamState

# Options the library itself takes; everything else is the OpenAI request body.
CALL_OPTIONS = frozenset(
    {
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "timeout",
        "request_timeout",
        "extra_headers",
        "headers",
        "drop_params",
        "num_retries",
        "max_retries",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "cache",
        "custom_llm_provider",
        "input_cost_per_token",
        "output_cost_per_token",
    }
)
CACHEABLE: frozenset[Operation] = frozenset({"chat", "text_completion", "embedding"})
STREAMABLE: frozenset[Operation] = frozenset({"chat", "text_completion"})


@dataclass
class Call:
    """One library call: what to ask, and the options that say how."""

    operation: Operation
    model: str
    body: dict[str, Any]
    options: dict[str, Any]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream")) and self.operation in STREAMABLE

    def for_candidate(self, candidate: str | Mapping[str, Any]) -> Call:
        """Return this call aimed at a fallback (a model name, or a dict of per-call options)."""
        if isinstance(candidate, str):
            return Call(self.operation, candidate, self.body, self.options)
        overrides = dict(candidate)
        model = overrides.pop("model", self.model)
        body = {**self.body, **{k: v for k, v in overrides.items() if k not in CALL_OPTIONS}}
        options = {**self.options, **{k: v for k, v in overrides.items() if k in CALL_OPTIONS}}
        return Call(self.operation, model, body, options)


def _make_call(operation: Operation, model: str | None, params: dict[str, Any]) -> Call:
    if not model or not isinstance(model, str):
        raise BadRequestError("'model' is required and must be a string.", param="model")
    options = {key: params.pop(key) for key in list(params) if key in CALL_OPTIONS}
    return Call(operation, model, params, options)


def _resolve(call: Call) -> tuple[ProviderSpec, ResolvedDeployment]:
    options = call.options
    mocked = any(call.body.get(key) is not None for key in engine.MOCK_OPTIONS)
    if mocked:
        spec, model_id = PROVIDERS["mock"], call.model.removeprefix("mock/")
    else:
        spec, model_id = model_resolve(call.model, options.get("custom_llm_provider"))
    if call.operation not in spec.operations:
        raise BadRequestError(
            f"{spec.name} does not support {call.operation.replace('_', ' ')} calls.",
            provider=spec.name,
            model=model_id,
            param="model",
        )
    environment = credentials_from_environment(spec)
    api_key = env_reference(options.get("api_key")) or environment["api_key"]
    if spec.requires_api_key and not api_key:
        names = " or ".join(spec.api_key_env)
        raise AuthenticationError(
            f"No API key for {spec.name}: pass api_key= or set {names}.", provider=spec.name, model=model_id
        )
    timeout = options.get("timeout") or options.get("request_timeout") or DEFAULT_TIMEOUT
    deployment = ResolvedDeployment(
        provider=spec.name,
        model=model_id,
        api_base=env_reference(options.get("api_base") or options.get("base_url"))
        or environment["api_base"]
        or spec.api_base,
        api_key=api_key,
        api_version=options.get("api_version") or environment["api_version"],
        extra_headers={**(options.get("headers") or {}), **(options.get("extra_headers") or {})},
        timeout=float(timeout),
        drop_params=bool(options.get("drop_params")),
    )
    return spec, deployment


def _hidden(call: Call, deployment: ResolvedDeployment, cache_hit: bool) -> dict[str, Any]:
    hidden: dict[str, Any] = {
        "provider": deployment.provider,
        "model": deployment.model,
        "api_base": deployment.api_base,
        "cache_hit": cache_hit,
    }
    pricing = {
        key: call.options[key]
        for key in ("input_cost_per_token", "output_cost_per_token")
        if call.options.get(key) is not None
    }
    if pricing:
        hidden["custom_pricing"] = pricing
    return hidden


def _num_retries(call: Call) -> int:
    value = call.options.get("num_retries", call.options.get("max_retries")) or 0
    if not isinstance(value, int) or value < 0:
        raise BadRequestError("num_retries must be a non-negative integer.", param="num_retries")
    return value


def _plan(call: Call) -> FallbackPlan:
    return FallbackPlan(
        fallbacks=as_list(call.options.get("fallbacks")),
        context_window_fallbacks=as_list(call.options.get("context_window_fallbacks")),
        content_policy_fallbacks=as_list(call.options.get("content_policy_fallbacks")),
    )


class _CacheSlot:
    """Where one call's answer is read from and written to in the active cache, if any."""

    def __init__(self, call: Call) -> None:
        cache = active_cache() if call.operation in CACHEABLE else None
        controls = cache_controls(call.options.get("cache"))
        self.cache = cache
        self.ttl = controls.ttl
        self.read = cache is not None and not controls.no_cache
        self.write = cache is not None and not controls.no_store
        self.key = (
            ""
            if cache is None
            else cache_key(call.operation, call.model, call.body, namespace=controls.namespace)
        )

    def store_stream(self, chunks: list[dict[str, Any]], state: StreamState) -> None:
        if self.write and chunks:
            self.cache.set(self.key, chunks_to_response(chunks, state.usage), self.ttl)


def _replay(payload: dict[str, Any], deployment: ResolvedDeployment) -> tuple[list[dict], StreamState]:
    state = StreamState(deployment=deployment, created=payload.get("created", 0), usage=payload.get("usage"))
    return response_to_chunks(payload), state


def _run(call: Call) -> Any:
    slot = _CacheSlot(call)
    if slot.read and (cached := slot.cache.get(slot.key)) is not None:
        _, deployment = _resolve(call)
        if call.stream:
            chunks, state = _replay(cached, deployment)
            return CompletionStream(ChunkSource(iter(chunks), state), call.operation, call.model, call.body)
        return wrap_response(call.operation, cached, _hidden(call, deployment, cache_hit=True))
    plan = _plan(call)
    for candidate in plan.candidates(call.model):
        attempt = call.for_candidate(candidate)
        try:
            return with_retries(
                lambda attempt=attempt: _attempt(attempt, slot), num_retries=_num_retries(attempt)
            )
        except APIError as error:
            plan.failed(error)
    raise plan.errors[-1]


def _attempt(call: Call, slot: _CacheSlot) -> Any:
    spec, deployment = _resolve(call)
    body = engine.request_body_for(spec, call.body)
    if call.stream:
        source = engine.open_stream(call.operation, body, deployment, spec)
        return CompletionStream(
            source,
            call.operation,
            call.model,
            call.body,
            on_complete=lambda chunks: slot.store_stream(chunks, source.state),
        )
    payload = engine.call(call.operation, body, deployment, spec)
    if slot.write:
        slot.cache.set(slot.key, payload, slot.ttl)
    return wrap_response(call.operation, payload, _hidden(call, deployment, cache_hit=False))


async def _arun(call: Call) -> Any:
    slot = _CacheSlot(call)
    if slot.read and (cached := await slot.cache.aget(slot.key)) is not None:
        _, deployment = _resolve(call)
        if call.stream:
            chunks, state = _replay(cached, deployment)
            return AsyncCompletionStream(
                AsyncChunkSource(_batch_of(chunks), state), call.operation, call.model, call.body
            )
        return wrap_response(call.operation, cached, _hidden(call, deployment, cache_hit=True))
    plan = _plan(call)
    for candidate in plan.candidates(call.model):
        attempt = call.for_candidate(candidate)
        try:
            return await awith_retries(
                lambda attempt=attempt: _aattempt(attempt, slot), num_retries=_num_retries(attempt)
            )
        except APIError as error:
            plan.failed(error)
    raise plan.errors[-1]


async def _batch_of(items: list[dict[str, Any]]):
    yield items


async def _aattempt(call: Call, slot: _CacheSlot) -> Any:
    spec, deployment = _resolve(call)
    body = engine.request_body_for(spec, call.body)
    if call.stream:
        source = await engine.aopen_stream(call.operation, body, deployment, spec)
        return AsyncCompletionStream(
            source,
            call.operation,
            call.model,
            call.body,
            on_complete=lambda chunks: slot.store_stream(chunks, source.state),
        )
    payload = await engine.acall(call.operation, body, deployment, spec)
    if slot.write:
        await slot.cache.aset(slot.key, payload, slot.ttl)
    return wrap_response(call.operation, payload, _hidden(call, deployment, cache_hit=False))


def _chat_call(model: str, messages: Any, params: dict[str, Any]) -> Call:
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list of messages.", param="messages")
    return _make_call("chat", model, {"messages": messages, **params})


def completion(model: str, messages: list[dict[str, Any]], **params: Any) -> Any:
    """Return a chat completion (or, with ``stream=True``, an iterator of chunks) in OpenAI's shape."""
    return _run(_chat_call(model, messages, params))


async def acompletion(model: str, messages: list[dict[str, Any]], **params: Any) -> Any:
    """Return a chat completion (or an async iterator of chunks) in OpenAI's shape."""
    return await _arun(_chat_call(model, messages, params))


def text_completion(model: str, prompt: Any, **params: Any) -> Any:
    """Return a legacy text completion (``/v1/completions``)."""
    return _run(_make_call("text_completion", model, {"prompt": prompt, **params}))


async def atext_completion(model: str, prompt: Any, **params: Any) -> Any:
    """Return a legacy text completion (async)."""
    return await _arun(_make_call("text_completion", model, {"prompt": prompt, **params}))


def _embedding_call(model: str, input: Any, params: dict[str, Any]) -> Call:
    if input is None or input == [] or input == "":
        raise BadRequestError("'input' must be a non-empty string or list.", param="input")
    return _make_call("embedding", model, {"input": input, **params})


def embedding(model: str, input: Any, **params: Any) -> Any:
    """Return embeddings for a string or a list of strings (or token arrays)."""
    return _run(_embedding_call(model, input, params))


async def aembedding(model: str, input: Any, **params: Any) -> Any:
    """Return embeddings (async)."""
    return await _arun(_embedding_call(model, input, params))


def _image_call(prompt: Any, model: str, params: dict[str, Any]) -> Call:
    if not isinstance(prompt, str) or not prompt:
        raise BadRequestError("'prompt' must be a non-empty string.", param="prompt")
    return _make_call("image_generation", model, {"prompt": prompt, **params})


def image_generation(prompt: str, model: str = "dall-e-2", **params: Any) -> Any:
    """Return generated images (URLs or base64) for a prompt."""
    return _run(_image_call(prompt, model, params))


async def aimage_generation(prompt: str, model: str = "dall-e-2", **params: Any) -> Any:
    """Return generated images (async)."""
    return await _arun(_image_call(prompt, model, params))
