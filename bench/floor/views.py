"""Forward a request's body to the upstream and hand back its answer, as little as possible in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

# What the gateway sends upstream too: a JSON body and a bearer key.
UPSTREAM_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-upstream-bench"}

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def session_get() -> aiohttp.ClientSession:
    """Return this event loop's shared session, pooled without a cap like the gateway's."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = _sessions[loop] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300), skip_auto_headers=("User-Agent",)
        )
    return session


async def sessions_close() -> None:
    """Close this event loop's session (at shutdown)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


async def _relay(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
        response.release()
    finally:
        response.close()


@csrf_exempt
async def forward(request: HttpRequest, port: int, rest: str) -> HttpResponse:
    """POST the body to 127.0.0.1:<port>/<rest>; relay chunk by chunk under stream/."""
    response = await session_get().post(
        f"http://127.0.0.1:{port}/{rest}", data=request.body, headers=UPSTREAM_HEADERS
    )
    content_type = response.headers.get("Content-Type", "application/json")
    if rest.startswith("stream/"):
        return StreamingHttpResponse(_relay(response), status=response.status, content_type=content_type)
    try:
        body = await response.read()
    finally:
        response.release()
    return HttpResponse(body, status=response.status, content_type=content_type)
