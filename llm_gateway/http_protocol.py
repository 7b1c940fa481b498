"""The HTTP protocol `manage.py serve` and `start` run: uvicorn's httptools protocol with read timeouts.

uvicorn closes a connection that stays idle ``timeout_keep_alive`` seconds after a response, but
bounds nothing before one: a client that connects and sends nothing, or sends part of a request head
or body and stalls, holds its socket (and a slot of ``limit_concurrency``) for as long as it likes.
This protocol gives the request head ``read_timeout`` seconds from the connection (or from the first
byte of the next request on a kept-alive one), then the body ``read_timeout`` seconds more. A request
that misses either gets a JSON 408 in OpenAI's shape and the connection is closed; the view waiting
for that body sees the client disconnect. Past ``limit_concurrency`` the 503 is JSON too.
"""

from __future__ import annotations

import asyncio
import functools

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _error_body(message: str, error_type: str, code: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}})


_TIMEOUT_BODY = _error_body(
    "The request was not received in time: its head or body stalled.",
    "invalid_request_error",
    "request_timeout",
)
_UNAVAILABLE_BODY = _error_body(
    "The server is at its connection limit; retry shortly.", "service_unavailable", "service_unavailable"
)
_TIMEOUT_RESPONSE = b"".join(
    [
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n",
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_TIMEOUT_BODY),
        _TIMEOUT_BODY,
    ]
)


async def service_unavailable(scope, receive, send) -> None:
    """Answer a request past the connection limit: a JSON 503 that closes the connection."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_UNAVAILABLE_BODY)).encode("ascii")),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _UNAVAILABLE_BODY})


class ReadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol: a 408 for a request head or body slower than ``read_timeout``."""

    def __init__(self, *args, read_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self.read_timer: asyncio.TimerHandle | None = None
        # Checked here rather than by uvicorn, so that the 503 is JSON and `limit` connections are
        # served (uvicorn's own check refuses the limit-th).
        self.connection_limit = self.limit_concurrency
        self.limit_concurrency = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._read_timer_start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._read_timer_stop()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._read_timer_start()  # the head of a request on a kept-alive connection

    def on_headers_complete(self) -> None:
        limit = self.connection_limit
        # self.connections counts this connection; self.tasks does not count this request yet.
        over_limit = limit is not None and (len(self.connections) > limit or len(self.tasks) >= limit)
        self.app = service_unavailable if over_limit else self.config.loaded_app
        if over_limit:
            self.logger.warning("Exceeded concurrency limit.")
        super().on_headers_complete()
        self._read_timer_start()  # the body, if any; on_message_complete follows at once without one

    def on_message_complete(self) -> None:
        self._read_timer_stop()
        super().on_message_complete()

    def _read_timer_start(self) -> None:
        self._read_timer_stop()
        if self.read_timeout:
            self.read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _read_timer_stop(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _read_timed_out(self) -> None:
        self.read_timer = None
        if self.transport.is_closing():
            return
        if self.pipeline:
            # A pipelined request waits, reading paused, for the one before it: not the client's delay.
            self._read_timer_start()
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            # A response is under way (the app answered early, or the stalled head is of the next
            # request): let it finish, then close.
            cycle.keep_alive = False
            return
        if cycle is not None and not cycle.response_complete:
            if not cycle.more_body:
                cycle.keep_alive = False  # the next request's head stalls while this one's view runs
                return
            # The view waiting for this body is told that the client went away.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def server_limits(*, keep_alive: float, read_timeout: float, max_connections: int) -> dict:
    """Return uvicorn.run() keyword arguments for these timeouts and this connection limit (0: none)."""
    return {
        "http": functools.partial(ReadTimeoutProtocol, read_timeout=read_timeout),
        "timeout_keep_alive": keep_alive,
        "limit_concurrency": max_connections or None,
    }
