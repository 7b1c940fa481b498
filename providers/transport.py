"""The one module that does network I/O: pooled HTTP clients, timeouts and event-stream reading.

Sync calls share one ``httpx.Client``; async calls share one ``aiohttp.ClientSession`` per event
loop (an aiohttp session is bound to the loop it was created on). aiohttp is used directly on the
async path because httpx's async pool collapses under hundreds of concurrent requests and costs
about 3x aiohttp's CPU per request, measured on a minimal pass-through.

Transport failures become ``Timeout`` or ``APIConnectionError``; HTTP error statuses are returned to
the caller, which asks the provider's adapter to map the body.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

import aiohttp
import httpx

from providers.exceptions import APIConnectionError, Timeout
from providers.sse import SSEDecoder
from providers.upstream import ResolvedDeployment, SSEEvent, UpstreamRequest


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _timeout_error(deployment: ResolvedDeployment, error: BaseException) -> Timeout:
    return Timeout(
        f"Request timed out after {deployment.timeout:g}s ({type(error).__name__})",
        provider=deployment.provider,
        model=deployment.model,
    )


def _connection_error(deployment: ResolvedDeployment, error: BaseException) -> APIConnectionError:
    detail = str(error) or type(error).__name__
    return APIConnectionError(
        f"Connection to the upstream failed: {detail}", provider=deployment.provider, model=deployment.model
    )


_sync_client: httpx.Client | None = None
_sync_lock = threading.Lock()


def _client() -> httpx.Client:
    global _sync_client
    if _sync_client is None:
        with _sync_lock:
            if _sync_client is None:
                _sync_client = httpx.Client(
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
                    follow_redirects=False,
                )
    return _sync_client


def send(request: UpstreamRequest, deployment: ResolvedDeployment) -> UpstreamResponse:
    """Send a request and return the whole response."""
    try:
        response = _client().request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body,
            timeout=deployment.timeout,
        )
    except httpx.TimeoutException as error:
        raise _timeout_error(deployment, error) from error
    except httpx.TransportError as error:
        raise _connection_error(deployment, error) from error
    return UpstreamResponse(response.status_code, response.headers, response.content)


class EventStream:
    """An open streaming response: read its body on error, or iterate its events."""

    def __init__(self, response: httpx.Response, deployment: ResolvedDeployment) -> None:
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self._response = response
        self._deployment = deployment

    def read(self) -> bytes:
        try:
            return self._response.read()
        except httpx.HTTPError as error:
            raise _connection_error(self._deployment, error) from error
        finally:
            self._response.close()

    def events(self) -> Iterator[SSEEvent]:
        decoder = SSEDecoder()
        try:
            for chunk in self._response.iter_bytes():
                yield from decoder.feed(chunk)
            yield from decoder.flush()
        except httpx.TimeoutException as error:
            raise _timeout_error(self._deployment, error) from error
        except httpx.TransportError as error:
            raise _connection_error(self._deployment, error) from error
        finally:
            self._response.close()

    def close(self) -> None:
        self._response.close()


def open_stream(request: UpstreamRequest, deployment: ResolvedDeployment) -> EventStream:
    """Send a request whose answer is an event stream; return once the status line has arrived."""
    client = _client()
    built = client.build_request(
        request.method, request.url, headers=request.headers, content=request.body, timeout=deployment.timeout
    )
    try:
        return EventStream(client.send(built, stream=True), deployment)
    except httpx.TimeoutException as error:
        raise _timeout_error(deployment, error) from error
    except httpx.TransportError as error:
        raise _connection_error(deployment, error) from error


_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def _session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        _forget_closed_loops()
        session = aiohttp.ClientSession(
            # limit=0: no pool cap; a gateway holds thousands of concurrent streams per process.
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            skip_auto_headers=("User-Agent",),
            # No cookie jar: one session serves every caller, and a cookie an upstream set for one
            # request must not ride along on another's (it also spares a jar look-up per request).
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        _sessions[loop] = session
    return session


def _forget_closed_loops() -> None:
    """Drop sessions of loops that have ended (each ``asyncio.run`` makes a new loop).

    Their sockets died with their loop; nothing can be awaited on a closed loop, so the session is
    only detached from its connector, which the garbage collector then frees.
    """
    for loop in [loop for loop in _sessions if loop.is_closed()]:
        _sessions.pop(loop).detach()


async def aclose() -> None:
    """Close the current event loop's session (call at application shutdown)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


def _client_timeout(deployment: ResolvedDeployment, stream: bool) -> aiohttp.ClientTimeout:
    return _timeout_for(deployment.timeout, stream)


@functools.lru_cache(maxsize=256)
def _timeout_for(seconds: float, stream: bool) -> aiohttp.ClientTimeout:
    if stream:
        # A stream may run longer than the timeout; what must not happen is a silence that long.
        return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
    return aiohttp.ClientTimeout(total=seconds)


async def asend(request: UpstreamRequest, deployment: ResolvedDeployment) -> UpstreamResponse:
    """Send a request and return the whole response (async)."""
    try:
        async with _session().request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=_client_timeout(deployment, stream=False),
        ) as response:
            body = await response.read()
            return UpstreamResponse(response.status, response.headers, body)
    except TimeoutError as error:
        raise _timeout_error(deployment, error) from error
    except aiohttp.ClientError as error:
        raise _connection_error(deployment, error) from error


class AsyncEventStream:
    """An open streaming response (async): read its body on error, or iterate its events."""

    def __init__(self, response: aiohttp.ClientResponse, deployment: ResolvedDeployment) -> None:
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._response = response
        self._deployment = deployment

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _connection_error(self._deployment, error) from error
        finally:
            self._response.release()

    async def events(self) -> AsyncIterator[SSEEvent]:
        async for batch in self.event_batches():
            for event in batch:
                yield event

    async def event_batches(self) -> AsyncIterator[list[SSEEvent]]:
        """Yield the events as they arrive, a list per read: one async step per read, not per event."""
        decoder = SSEDecoder()
        try:
            async for chunk in self._response.content.iter_any():
                batch = decoder.feed(chunk)
                if batch:
                    yield batch
            batch = decoder.flush()
            if batch:
                yield batch
            self._response.release()  # read to the end: the connection goes back to the pool
        except TimeoutError as error:
            raise _timeout_error(self._deployment, error) from error
        except aiohttp.ClientError as error:
            raise _connection_error(self._deployment, error) from error
        finally:
            self.close()

    def close(self) -> None:
        """Release the connection; closing mid-stream drops it, which cancels the upstream request."""
        if not self._response.closed:
            self._response.close()


async def aopen_stream(request: UpstreamRequest, deployment: ResolvedDeployment) -> AsyncEventStream:
    """Send a request whose answer is an event stream; return once the status line has arrived."""
    try:
        response = await _session().request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=_client_timeout(deployment, stream=True),
        )
    except TimeoutError as error:
        raise _timeout_error(deployment, error) from error
    except aiohttp.ClientError as error:
        raise _connection_error(deployment, error) from error
    return AsyncEventStream(response, deployment)
