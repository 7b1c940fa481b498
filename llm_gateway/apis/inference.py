"""The OpenAI-compatible endpoints: chat, completions, embeddings, images, models.

Plain async views on the hot path: the body is parsed once with orjson, the caller and
the deployment come from in-process snapshots, the upstream call goes through the provider engine's
pooled aiohttp client, and responses are built from bytes. Streams are forwarded chunk by chunk as
they arrive; when the client goes away, Django cancels the response and the upstream request is
closed with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from llm_gateway.admission import prompt_tokens_estimate
from llm_gateway.apis.errors import error_response
from llm_gateway.apis.request_fields import model_check, request_fields_check, upstream_params
from llm_gateway.authentication import Caller, caller_authenticate
from llm_gateway.lookups import DeploymentSnapshot
from llm_gateway.metering import BASIS, Meter, meter_finish, meter_finish_later, meter_start
from llm_gateway.response_cache import CacheLookup, cache_lookup, request_controls
from llm_gateway.router.core import Route, models_visible, route_headers, route_start
from providers import engine
from providers.chunks import chunks_to_response, response_to_chunks
from providers.exceptions import APIError, BadRequestError, NotFoundError
from providers.streaming import StreamTap, include_usage_requested
from providers.tokens import token_counter
from providers.upstream import Operation, ResolvedDeployment

JSON = "application/json"
STREAMING_OPERATIONS = frozenset({"chat", "text_completion"})


def _parse_body(request: HttpRequest, operation: Operation) -> dict[str, Any]:
    """Return the request's JSON object, its fields checked (``request_fields``) before any admission."""
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"The request body is not valid JSON: {error}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.", code="invalid_json")
    request_fields_check(operation, body)
    return body


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


@dataclass
class _Answer:
    """A successful attempt: its meter and request body, and the payload or the opened stream."""

    meter: Meter
    body: dict[str, Any]
    since: float
    payload: dict[str, Any] | None = None
    source: engine.AsyncChunkSource | None = None
    first_batch: list[dict[str, Any]] | None = None  # the chunks of the upstream's first read
    first_token_ms: int | None = None


@dataclass
class _Attempts:
    """Calls one deployment for the router: meters the attempt and, for streams, waits for chunk 1.

    A failed attempt gives its budget hold back at once; the last one is kept to write the ledger
    row if every attempt fails.
    """

    caller: Caller
    model_requested: str
    operation: Operation
    body: dict[str, Any]
    stream: bool
    failed: Meter | None = None

    async def __call__(self, deployment: DeploymentSnapshot, upstream: ResolvedDeployment) -> _Answer:
        call_body = upstream_params(deployment.default_params, self.body)  # drops gateway-only fields
        call_body = dict(engine.request_body_for(deployment.spec, call_body))
        meter = await meter_start(
            caller=self.caller,
            deployment=deployment,
            model_requested=self.model_requested,
            operation=self.operation,
            body=call_body,
        )
        since = meter.upstream_started()
        try:
            if not self.stream:
                payload = await engine.acall(self.operation, call_body, upstream, deployment.spec)
                meter.upstream_finished(since)
                return _Answer(meter, call_body, since, payload=payload)
            source = await engine.aopen_stream(
                self.operation, _upstream_body(call_body, stream=True), upstream, deployment.spec
            )
            try:
                # Until chunk 1 is here nothing reached the client: a failure can still be retried.
                first = await anext(source.batches(), None)
            except BaseException:
                source.close()
                raise
            first_token_ms = int((time.monotonic() - meter.started) * 1000) if first is not None else None
            return _Answer(
                meter, call_body, since, source=source, first_batch=first, first_token_ms=first_token_ms
            )
        except asyncio.CancelledError:
            # The client left (or the server is stopping) while the upstream worked on the request:
            # the provider charges for it all the same, so it is billed, in a task of its own.
            meter.upstream_finished(since)
            meter_finish_later(meter, usage=None, cancelled=True)
            raise
        except BaseException:
            meter.upstream_finished(since)
            await meter.release()
            self.failed = meter
            raise


async def _serve(request: HttpRequest, operation: Operation, model: str | None = None) -> HttpResponse:
    if request.method != "POST":
        return error_response(
            BadRequestError(f"Use POST for {request.path}.", code="method_not_allowed"), 405
        )
    route = attempts = None
    try:
        caller = await caller_authenticate(request)
        body = _parse_body(request, operation)
        model = model_check(model or body.get("model"))
        stream = bool(body.get("stream")) and operation in STREAMING_OPERATIONS
        route = await route_start(caller, model, operation, body, len(request.body), stream)
        lookup = None
        if route.settings.cache.enabled:
            controls = request_controls(request, body, caller.key)
            lookup = cache_lookup(
                route.settings.cache, operation, route.group, body, controls, key=caller.key
            )
        cached = await lookup.get() if lookup is not None else None
        if cached is not None:
            return await _cached_answer(cached, route, model, operation, body, stream)
        attempts = _Attempts(caller, model, operation, body, stream)
        answer, deployment = await route.run(attempts)
    except APIError as error:
        headers = route_headers(route) if route is not None else {}
        if attempts is not None and attempts.failed is not None:
            attempts.failed.attempted(route.retries, route.fallbacks)
            headers = await meter_finish(attempts.failed, usage=None, error=error)
        return error_response(error, headers=headers)
    meter = answer.meter
    meter.attempted(route.retries, route.fallbacks)
    if answer.source is not None:
        tap = StreamTap(
            operation, deployment.upstream.model, answer.body, include_usage_requested(answer.body), None
        )
        return StreamingHttpResponse(
            _sse(answer, tap, route, deployment, lookup),
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **meter.headers},
        )
    payload = answer.payload
    usage, basis = _usage_of(operation, payload, answer.body, deployment.upstream.model)
    images = len(payload.get("data") or ()) if operation == "image_generation" else 0
    headers = await meter_finish(meter, usage=usage, basis=basis, images=images, response=payload)
    route.finished(deployment, tokens=int(usage.get("total_tokens") or 0))
    if lookup is not None:
        await lookup.put(payload, deployment.model_id)
    return HttpResponse(orjson.dumps(payload), content_type=JSON, headers=headers)


async def _cached_answer(
    cached: dict[str, Any], route: Route, model: str, operation: Operation, body: dict[str, Any], stream: bool
) -> HttpResponse:
    """Answer from the cache: free, no deployment called; replayed as a stream when the caller streams."""
    payload = cached["response"]
    meter = await meter_start(
        caller=route.caller,
        deployment=route.deployment_of(cached.get("model_id")),
        model_requested=model,
        operation=operation,
        body=body,
        cache_hit=True,
    )
    meter.attempted(0, 0)
    usage = payload.get("usage") or {}
    if stream:
        return StreamingHttpResponse(
            _replay(payload, meter, include_usage_requested(body)),
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **meter.headers},
        )
    headers = await meter_finish(meter, usage=usage, response=payload)
    return HttpResponse(orjson.dumps(payload), content_type=JSON, headers=headers)


async def _replay(payload: dict[str, Any], meter: Meter, include_usage: bool) -> AsyncIterator[bytes]:
    chunks = response_to_chunks(payload)
    usage = payload.get("usage")
    replayed = False
    try:
        for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        replayed = True
    finally:
        # A client that leaves mid-replay still gets its (free) row, marked cancelled.
        if not replayed:
            meter_finish_later(meter, usage=usage, time_to_first_token_ms=0, cancelled=True)
    await meter_finish(meter, usage=usage, time_to_first_token_ms=0)
    if include_usage and usage and chunks:
        closing = {key: chunks[-1][key] for key in ("id", "object", "created", "model") if key in chunks[-1]}
        yield b"data: " + orjson.dumps({**closing, "choices": [], "usage": usage}) + b"\n\n"
    yield b"data: [DONE]\n\n"


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


def _events(chunks: list[dict[str, Any]], tap: StreamTap) -> bytes:
    for chunk in chunks:
        tap.see(chunk)
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)


async def _sse(
    answer: _Answer, tap: StreamTap, route: Route, deployment: DeploymentSnapshot, lookup: CacheLookup | None
) -> AsyncIterator[bytes]:
    """Yield the stream as OpenAI's server-sent events, ending with ``data: [DONE]``.

    The ledger row is written before ``[DONE]``, so a client that saw the end of its stream was
    billed; a stream cut short (client gone, upstream failure) is billed for what was generated,
    marked ``partial``.
    """
    meter, source = answer.meter, answer.source
    first_token_ms = answer.first_token_ms
    metered = False
    error: APIError | None = None
    try:
        if answer.first_batch is not None:
            yield _events(answer.first_batch, tap)
            # What one upstream read brought goes out in one write: per-event writes cost the
            # server about 7 us each (profiled with py-spy), and spaced-out events are still sent at once.
            async for batch in source.batches():
                yield _events(batch, tap)
        meter.upstream_finished(answer.since)
        closing = tap.finish(source.state.usage)
        basis = BASIS.PROVIDER_REPORTED if tap.reported_usage else BASIS.ESTIMATED
        metered = True
        await meter.finish(usage=tap.usage, basis=basis, time_to_first_token_ms=first_token_ms)
        if lookup is not None:
            await lookup.put(chunks_to_response(tap.chunks, tap.usage), deployment.model_id)
        if closing is not None:
            yield b"data: " + orjson.dumps(closing) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except APIError as failure:
        error = failure
        # Headers are gone: report the failure in-band, the way OpenAI does mid-stream.
        yield b"data: " + orjson.dumps(failure.to_openai_error()) + b"\n\n"
    finally:
        source.close()
        route.finished(
            deployment,
            first_token_seconds=None if first_token_ms is None else first_token_ms / 1000,
            tokens=int((tap.usage or {}).get("total_tokens") or 0),
        )
        if not metered:
            tap.finish(None)
            # In a task of its own: the response task may be being cancelled. Without an upstream
            # error, the stream was cut short by the client leaving (or the server stopping).
            meter_finish_later(
                meter,
                usage=_partial_usage(tap.usage or {}, source.state.usage),
                basis=BASIS.PARTIAL,
                error=error,
                time_to_first_token_ms=first_token_ms,
                cancelled=error is None,
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
