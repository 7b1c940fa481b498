"""Run one call against one resolved deployment: adapter in, transport out, adapter back.

This is a single attempt; retries and fallbacks wrap it (``providers.resilience``). Results are plain
OpenAI-format dicts, so the gateway can use them without the library's response objects.
Adapters that answer locally (the mock provider) expose ``respond(operation, body, deployment)`` and
``respond_models(deployment)`` instead of going over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import orjson

from providers import transport
from providers.exceptions import APIError, BadGatewayError
from providers.registry import ProviderSpec
from providers.upstream import Operation, ResolvedDeployment, SSEEvent, StreamState

MOCK_OPTIONS = frozenset({"mock_response", "mock_timeout", "mock_delay"})


def request_body_for(spec: ProviderSpec, body: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the body without the mock provider's options, unless the mock provider is the one called."""
    if spec.name == "mock" or not MOCK_OPTIONS.intersection(body):
        return body
    return {key: value for key, value in body.items() if key not in MOCK_OPTIONS}


def _decode(raw: bytes, deployment: ResolvedDeployment) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        preview = raw[:200].decode("utf-8", "replace")
        raise BadGatewayError(
            f"The upstream returned a body that is not valid JSON: {preview!r}",
            provider=deployment.provider,
            model=deployment.model,
        ) from None


def _upstream_error(
    spec: ProviderSpec, status: int, raw: bytes, headers: Mapping[str, str], deployment: ResolvedDeployment
) -> APIError:
    try:
        payload = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        payload = None
    error = spec.adapter.map_error(status, payload, raw.decode("utf-8", "replace"), headers, deployment)
    return error.redact(deployment.api_key)


def _stamp(operation: Operation, payload: dict[str, Any]) -> dict[str, Any]:
    # Some providers send no creation time (Anthropic): adapters can't read the clock, so we do.
    if operation != "embedding" and not payload.get("created"):
        payload["created"] = int(time.time())
    return payload


def call(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> dict[str, Any]:
    """Return the OpenAI-format response of one upstream call."""
    adapter = spec.adapter
    if hasattr(adapter, "respond"):
        reply = spec.adapter.respond(operation, body, deployment)
        time.sleep(reply.delay)
        if reply.error is not None:
            raise reply.error
        return _stamp(operation, reply.payload)
    request = adapter.build_request(operation, body, deployment, spec)
    response = transport.send(request, deployment)
    if response.status >= 400:
        raise _upstream_error(spec, response.status, response.body, response.headers, deployment)
    return _stamp(
        operation, adapter.parse_response(operation, _decode(response.body, deployment), deployment)
    )


async def acall(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> dict[str, Any]:
    """Return the OpenAI-format response of one upstream call (async)."""
    adapter = spec.adapter
    if hasattr(adapter, "respond"):
        reply = adapter.respond(operation, body, deployment)
        await asyncio.sleep(reply.delay)
        if reply.error is not None:
            raise reply.error
        return _stamp(operation, reply.payload)
    request = adapter.build_request(operation, body, deployment, spec)
    response = await transport.asend(request, deployment)
    if response.status >= 400:
        raise _upstream_error(spec, response.status, response.body, response.headers, deployment)
    return _stamp(
        operation, adapter.parse_response(operation, _decode(response.body, deployment), deployment)
    )


async def alist_models(deployment: ResolvedDeployment, spec: ProviderSpec) -> dict[str, Any]:
    """Return the models the deployment's credential may use, in OpenAI's list shape (async).

    The cheapest authenticated call a provider offers: it proves the base URL and the key work
    without generating anything, so a health check of an image deployment costs nothing.
    """
    adapter = spec.adapter
    if hasattr(adapter, "respond"):
        return adapter.respond_models(deployment)
    request = adapter.build_models_request(deployment, spec)
    response = await transport.asend(request, deployment)
    if response.status >= 400:
        raise _upstream_error(spec, response.status, response.body, response.headers, deployment)
    return adapter.parse_models_response(_decode(response.body, deployment), deployment)


class ChunkSource:
    """The OpenAI-format chunks of one opened stream, and the state the adapter kept (usage)."""

    def __init__(self, chunks: Iterator[dict[str, Any]], state: StreamState, close=None) -> None:
        self.state = state
        self._chunks = chunks
        self._close = close

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._chunks

    def close(self) -> None:
        if self._close is not None:
            self._close()


class AsyncChunkSource:
    """The OpenAI-format chunks of one opened async stream, and the adapter's state.

    Iterate it chunk by chunk, or with ``batches()`` a list of chunks per upstream read (what
    arrived together can be forwarded in one write); not both.
    """

    def __init__(self, batches: AsyncIterator[list[dict[str, Any]]], state: StreamState, close=None) -> None:
        self.state = state
        self._batches = batches
        self._chunks: AsyncIterator[dict[str, Any]] | None = None
        self._close = close

    def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        return self._batches

    async def _flattened(self) -> AsyncIterator[dict[str, Any]]:
        async for batch in self._batches:
            for chunk in batch:
                yield chunk

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        if self._chunks is None:
            self._chunks = self._flattened()
        return self._chunks

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _parsed(
    spec: ProviderSpec, operation: Operation, state: StreamState, event: SSEEvent
) -> list[dict[str, Any]]:
    """Return the chunks of one stream event; an event the adapter cannot read is the upstream's fault."""
    try:
        return spec.adapter.parse_stream_event(operation, state, event)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
        # Not JSON (``data: {not json``), or JSON of another shape than the provider documents.
        deployment = state.deployment
        raise BadGatewayError(
            f"The upstream sent a malformed stream event: {event.data[:200]!r}",
            provider=deployment.provider,
            model=deployment.model,
        ) from error


def _stamped(chunks, state: StreamState):
    for chunk in chunks:
        chunk["created"] = chunk.get("created") or state.created
        yield chunk


def open_stream(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> ChunkSource:
    """Open a stream and return its chunks; upstream errors before the first byte raise here."""
    adapter = spec.adapter
    state = StreamState(deployment=deployment, created=int(time.time()))
    if hasattr(adapter, "respond"):
        reply = adapter.respond(operation, body, deployment)
        time.sleep(reply.delay)
        if reply.error is not None:
            raise reply.error
        state.usage = reply.usage
        return ChunkSource(_stamped(iter(reply.chunks), state), state)
    request = adapter.build_request(operation, body, deployment, spec)
    stream = transport.open_stream(request, deployment)
    if stream.status >= 400:
        raise _upstream_error(spec, stream.status, stream.read(), stream.headers, deployment)

    def chunks() -> Iterator[dict[str, Any]]:
        try:
            for event in stream.events():
                for chunk in _parsed(spec, operation, state, event):
                    chunk["created"] = chunk.get("created") or state.created
                    yield chunk
                if state.finished:
                    return
        finally:
            stream.close()

    return ChunkSource(chunks(), state, stream.close)


async def aopen_stream(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> AsyncChunkSource:
    """Open a stream and return its chunks (async); errors before the first byte raise here."""
    adapter = spec.adapter
    state = StreamState(deployment=deployment, created=int(time.time()))
    if hasattr(adapter, "respond"):
        reply = adapter.respond(operation, body, deployment)
        await asyncio.sleep(reply.delay)
        if reply.error is not None:
            raise reply.error
        state.usage = reply.usage

        async def replay() -> AsyncIterator[list[dict[str, Any]]]:
            yield list(_stamped(reply.chunks, state))

        return AsyncChunkSource(replay(), state)
    request = adapter.build_request(operation, body, deployment, spec)
    stream = await transport.aopen_stream(request, deployment)
    if stream.status >= 400:
        raise _upstream_error(spec, stream.status, await stream.read(), stream.headers, deployment)

    async def batches() -> AsyncIterator[list[dict[str, Any]]]:
        try:
            async for events in stream.event_batches():
                batch = []
                try:
                    for event in events:
                        for chunk in _parsed(spec, operation, state, event):
                            chunk["created"] = chunk.get("created") or state.created
                            batch.append(chunk)
                        if state.finished:
                            break
                except APIError:
                    # What came before the failure in the same read was generated: deliver it first.
                    if batch:
                        yield batch
                    raise
                if batch:
                    yield batch
                if state.finished:
                    return
        finally:
            stream.close()

    return AsyncChunkSource(batches(), state, stream.close)
