"""A fake upstream HTTP server on loopback: records every request, replays scripted replies.

Tests script what the next requests get (status, body, headers, delays, SSE events, a dropped
connection, malformed JSON) with ``enqueue``; with nothing scripted, the default handler of the
matching route answers like the real provider would. The server runs aiohttp in its own thread with
its own event loop, so sync and async client code under test both reach it over real TCP.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    # True when the client went away while a streamed reply still had events to send.
    client_disconnected: bool = False

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass
class Reply:
    """What the fake answers. ``sse`` events are strings (data) or ``(event, data)`` pairs."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    sse: list[str | tuple[str, str]] | None = None
    event_delay: float = 0.0
    drop_after: int | None = None
    # Bytes of an event stream sent as they are in one write, after any ``sse`` events: a client reads
    # them together.
    raw_sse: bytes | None = None
    # How many ``sse`` events have been written so far; tests read it to know where a stream is.
    sent: int = 0


Handler = Callable[[RecordedRequest], Reply | None]


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._routes: list[tuple[re.Pattern[str], Handler]] = []
        self._overrides: list[tuple[re.Pattern[str], Handler]] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-upstream")
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, pattern: str, handler: Handler) -> None:
        """Answer requests whose path matches ``pattern`` (a regex) with ``handler`` by default."""
        self._routes.append((re.compile(pattern), handler))

    def override(self, pattern: str, handler: Handler) -> None:
        """Answer matching requests with ``handler`` before any route, until ``reset``.

        Tests give deployments paths of their own (``/a/v1``, ``/b/v1``) and script each one.
        """
        self._overrides.append((re.compile(pattern), handler))

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, before the default handlers."""
        self._script.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self._script.clear()
        self._overrides.clear()

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    def start(self) -> FakeUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A reply delayed past a client's timeout is still sleeping at shutdown: don't wait for it.
        # Handler cancellation stops such a handler as soon as its client goes away.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # port 0: ask the OS which one it chose

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=await request.read(),
        )
        self.requests.append(recorded)
        reply = self._script.popleft() if self._script else self._default(recorded)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.sse is not None or reply.raw_sse is not None:
            return await self._stream(request, reply, recorded)
        body = reply.body if reply.body is not None else orjson.dumps(reply.json)
        headers = {"Content-Type": "application/json", **reply.headers}
        return web.Response(status=reply.status, body=body, headers=headers)

    def _default(self, recorded: RecordedRequest) -> Reply:
        for pattern, handler in (*self._overrides, *self._routes):
            if pattern.search(recorded.path):
                reply = handler(recorded)
                if reply is not None:  # an override may decline, leaving the request to the routes
                    return reply
        return Reply(status=404, json={"error": {"message": f"no fake route for {recorded.path}"}})

    async def _stream(
        self, request: web.Request, reply: Reply, recorded: RecordedRequest
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=reply.status, headers={"Content-Type": "text/event-stream", **reply.headers}
        )
        await response.prepare(request)
        try:
            for count, item in enumerate(reply.sse or ()):
                if reply.drop_after is not None and count >= reply.drop_after:
                    request.transport.close()  # the connection dies mid-stream, as a crashed upstream's would
                    return response
                event, data = item if isinstance(item, tuple) else (None, item)
                frame = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
                await response.write(frame.encode())
                reply.sent = count + 1
                if reply.event_delay:
                    await asyncio.sleep(reply.event_delay)
            if reply.raw_sse is not None:
                await response.write(reply.raw_sse)
            await response.write_eof()
        except ConnectionResetError:  # the client closed the connection: the next write fails
            recorded.client_disconnected = True
        except asyncio.CancelledError:  # the same, seen by aiohttp when handler cancellation is on
            recorded.client_disconnected = True
            raise
        return response


def sse_json(payload: Any) -> str:
    """Return a payload as the text of one SSE ``data:`` field."""
    return orjson.dumps(payload).decode()
