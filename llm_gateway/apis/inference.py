"""The OpenAI-compatible endpoints: chat, completions, embeddings, images, models.

Plain async views on the hot path (DESIGN §3): the body is parsed once with orjson, the caller and
the deployment come from in-process snapshots, the upstream call goes through the provider engine's
pooled aiohttp client, and responses are built from bytes. Streams are forwarded chunk by chunk as
they arrive; when the client goes away, Django cancels the response and the upstream request is
closed with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from llm_gateway.admission import prompt_tokens_estimate
from llm_gateway.apis.errors import error_response
from llm_gateway.authentication import caller_authenticate
from llm_gateway.metering import BASIS, Meter, meter_start
from llm_gateway.routing import deployment_route, models_visible
from providers import engine
from providers.exceptions import APIError, BadRequestError, NotFoundError
from providers.streaming import StreamTap, include_usage_requested
from providers.tokens import token_counter
from providers.upstream import Operation

JSON = "application/json"
# The field each operation cannot do without, besides the model.
REQUIRED_FIELD: dict[str, str] = {
    "chat": "messages",
    "text_completion": "prompt",
    "embedding": "input",
    "image_generation": "prompt",
}
STREAMING_OPERATIONS = frozenset({"chat", "text_completion"})


def _parse_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"The request body is not valid JSON: {error}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.", code="invalid_json")
    return body


def _require(body: dict[str, Any], field: str) -> None:
    if body.get(field) in (None, "", []):
        raise BadRequestError(
            f"Missing required parameter: '{field}'.", param=field, code="missing_required_parameter"
        )


def _upstream_body(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    """Return the body to send upstream: streams always ask for usage, which billing needs.

    Adapters that cannot take ``stream_options`` ignore it (Anthropic reports usage anyway); the
    caller only sees a usage chunk if it asked for one.
    """
    if not stream:
        return body
    return {**body, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}


def _usage_of(
    operation: Operation, payload: dict[str, Any], body: dict[str, Any], model: str
) -> tuple[dict[str, Any], str]:
    """Return a response's usage and its billing basis, counting tokens when the upstream gave none."""
    usage = payload.get("usage")
    if isinstance(usage, dict) and ("prompt_tokens" in usage or "total_tokens" in usage):
        return usage, BASIS.PROVIDER_REPORTED
    if operation == "image_generation":
        return {}, BASIS.PROVIDER_REPORTED
    prompt = prompt_tokens_estimate(operation, model, body)
    texts = [
        choice.get("text") or (choice.get("message") or {}).get("content") or ""
        for choice in payload.get("choices") or ()
    ]
    completion = token_counter(model=model, text=texts) if any(texts) else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }, BASIS.ESTIMATED


async def _serve(request: HttpRequest, operation: Operation, model: str | None = None) -> HttpResponse:
    if request.method != "POST":
        return error_response(
            BadRequestError(f"Use POST for {request.path}.", code="method_not_allowed"), 405
        )
    meter = None
    try:
        caller = await caller_authenticate(request)
        body = _parse_body(request)
        model = model or body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequestError(
                "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
            )
        _require(body, REQUIRED_FIELD[operation])
        deployment = await deployment_route(caller, model)
        call_body = {**deployment.default_params, **body}
        call_body.pop("model", None)
        call_body = dict(engine.request_body_for(deployment.spec, call_body))
        meter = await meter_start(
            caller=caller, deployment=deployment, model_requested=model, operation=operation, body=call_body
        )
        stream = bool(call_body.get("stream")) and operation in STREAMING_OPERATIONS
        since = meter.upstream_started()
        if stream:
            source = await engine.aopen_stream(
                operation, _upstream_body(call_body, stream=True), deployment.upstream, deployment.spec
            )
            tap = StreamTap(
                operation, deployment.upstream.model, call_body, include_usage_requested(call_body), None
            )
            return StreamingHttpResponse(
                _sse(source, tap, meter, since),
                content_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **meter.headers},
            )
        payload = await engine.acall(operation, call_body, deployment.upstream, deployment.spec)
        meter.upstream_finished(since)
    except APIError as error:
        headers = await meter.finish(usage=None, error=error) if meter is not None else None
        return error_response(error, headers=headers)
    usage, basis = _usage_of(operation, payload, call_body, deployment.upstream.model)
    images = len(payload.get("data") or ()) if operation == "image_generation" else 0
    headers = await meter.finish(usage=usage, basis=basis, images=images, response=payload)
    return HttpResponse(orjson.dumps(payload), content_type=JSON, headers=headers)


def _partial_usage(counted: dict[str, Any], reported: dict[str, Any] | None) -> dict[str, Any]:
    """Return the usage of a stream cut short: what the provider reported so far, else our count.

    Providers that report the prompt up front (Anthropic's message_start) keep their prompt and cache
    buckets; the completion is the larger of their running count and ours.
    """
    if not reported:
        return counted
    completion = max(int(reported.get("completion_tokens") or 0), int(counted.get("completion_tokens") or 0))
    prompt = int(reported.get("prompt_tokens") or counted.get("prompt_tokens") or 0)
    return {
        **reported,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


# Metering of streams cut short runs in its own task: the response task may be being cancelled.
_finishing: set[asyncio.Task] = set()


def _finish_in_background(meter: Meter, **outcome: Any) -> None:
    task = asyncio.get_running_loop().create_task(meter.finish(**outcome))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


async def _sse(
    source: engine.AsyncChunkSource, tap: StreamTap, meter: Meter, since: float
) -> AsyncIterator[bytes]:
    """Yield the stream as OpenAI's server-sent events, ending with ``data: [DONE]``.

    The ledger row is written before ``[DONE]``, so a client that saw the end of its stream was
    billed; a stream cut short (client gone, upstream failure) is billed for what was generated,
    marked ``partial``.
    """
    first_token_ms = None
    metered = False
    error: APIError | None = None
    try:
        async for chunk in source:
            if first_token_ms is None:
                first_token_ms = int((time.monotonic() - meter.started) * 1000)
            tap.see(chunk)
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        meter.upstream_finished(since)
        closing = tap.finish(source.state.usage)
        basis = BASIS.PROVIDER_REPORTED if tap.reported_usage else BASIS.ESTIMATED
        metered = True
        await meter.finish(usage=tap.usage, basis=basis, time_to_first_token_ms=first_token_ms)
        if closing is not None:
            yield b"data: " + orjson.dumps(closing) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except APIError as failure:
        error = failure
        # Headers are gone: report the failure in-band, the way OpenAI does mid-stream.
        yield b"data: " + orjson.dumps(failure.to_openai_error()) + b"\n\n"
    finally:
        source.close()
        if not metered:
            tap.finish(None)
            _finish_in_background(
                meter,
                usage=_partial_usage(tap.usage or {}, source.state.usage),
                basis=BASIS.PARTIAL,
                error=error,
                time_to_first_token_ms=first_token_ms,
            )


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    """POST /v1/chat/completions."""
    return await _serve(request, "chat")


@csrf_exempt
async def completions(request: HttpRequest) -> HttpResponse:
    """POST /v1/completions (legacy text completions)."""
    return await _serve(request, "text_completion")


@csrf_exempt
async def embeddings(request: HttpRequest) -> HttpResponse:
    """POST /v1/embeddings."""
    return await _serve(request, "embedding")


@csrf_exempt
async def image_generations(request: HttpRequest) -> HttpResponse:
    """POST /v1/images/generations."""
    return await _serve(request, "image_generation")


@csrf_exempt
async def azure_chat_completions(request: HttpRequest, model: str) -> HttpResponse:
    """POST /openai/deployments/{model}/chat/completions (Azure SDKs)."""
    return await _serve(request, "chat", model)


@csrf_exempt
async def azure_completions(request: HttpRequest, model: str) -> HttpResponse:
    """POST /openai/deployments/{model}/completions (Azure SDKs)."""
    return await _serve(request, "text_completion", model)


@csrf_exempt
async def azure_embeddings(request: HttpRequest, model: str) -> HttpResponse:
    """POST /openai/deployments/{model}/embeddings (Azure SDKs)."""
    return await _serve(request, "embedding", model)


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "llm-gateway"}


async def models_list(request: HttpRequest) -> HttpResponse:
    """GET /v1/models: the model groups the caller's key may use."""
    try:
        caller = await caller_authenticate(request)
        names = await models_visible(caller)
    except APIError as error:
        return error_response(error)
    return HttpResponse(
        orjson.dumps({"object": "list", "data": [_model_object(name) for name in names]}), content_type=JSON
    )


async def model_retrieve(request: HttpRequest, model: str) -> HttpResponse:
    """GET /v1/models/{model}: one model group, if the caller's key may use it."""
    try:
        caller = await caller_authenticate(request)
        if model not in await models_visible(caller):
            raise NotFoundError(
                f"The model '{model}' does not exist or this key may not use it.",
                param="model",
                code="model_not_found",
            )
    except APIError as error:
        return error_response(error)
    return HttpResponse(orjson.dumps(_model_object(model)), content_type=JSON)
