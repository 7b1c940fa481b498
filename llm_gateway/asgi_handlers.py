"""An ASGI handler for the inference paths: no middleware and no per-request thread.

Django's stock ``ASGIHandler`` is built for views that may run sync code. For every request it
enters a ``ThreadSensitiveContext`` (so the request's thread-sensitive ``sync_to_async`` calls get an
executor, and a new thread, of their own; leaving the context starts one more thread to join it),
runs the ``request_started`` receivers in that thread, and after the response runs
``response.close()`` there too (which sends ``request_finished``). That is three thread hops and two
thread starts per request: measured with py-spy, about 45% of the CPU of a minimal pass-through, and
the gateway's own request cost more than halved without them. The inference views are
async from end to end and make no database query in steady state, so this
handler keeps only what they need from it:

- The view runs with no middleware (sessions, CSRF, messages, authentication), the
  body is read into memory once, and a client that disconnects cancels the view, as Django does (a
  stream's upstream request is closed with it).
- No ``ThreadSensitiveContext``: the rare thread-sensitive call an inference request makes (the
  async ORM on a snapshot miss, a price index reload, the file cache's generation check) runs in
  asgiref's process-wide single thread, one at a time, the way thread-sensitive code runs outside
  Django's handler. Thread-sensitive code still always runs in one and the same thread, which is
  what the ORM needs; the price is that cold misses queue behind each other rather than run in
  parallel threads, and the gain, besides the hops, is one database connection for the inference
  paths of a process rather than one per concurrent request.
- No ``request_started``/``request_finished``. Of Django's receivers, ``close_old_connections`` is
  the one that matters: it returns a connection to the pool (``CONN_MAX_AGE = 0``) or drops one that
  is broken or past its age. It must run in the thread that holds the connection, so the handler runs
  it there, after a request whose code ran at least one query (seen by an execute wrapper on every
  connection), and only then; a request that made none needs no thread hop. ``reset_queries`` only
  matters with ``DEBUG`` (the query log is bounded anyway), ``close_caches`` does nothing for the file
  and Redis caches, and ``reset_urlconf`` is per-request context already.
- Paths are resolved once each, and a whole response goes out in one message with its
  Content-Length (see ``send_response``).
- The Host header is checked against ``ALLOWED_HOSTS`` as Django's ``request.get_host()`` does (each
  allowed host once), and every answer the handler gives itself (a body too large, a host not allowed,
  a bug before the response started) is JSON in OpenAI's shape, as the views' are.

The admin, the management API and everything else keep Django's stock handler and middleware.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections
from django.db.backends.signals import connection_created
from django.http import HttpResponseBase
from django.urls import ResolverMatch, set_script_prefix

from billing.ledger import ledger_writer_close
from llm_gateway.apis.errors import internal_error_response, status_response
from llm_gateway.metering import meters_finished
from providers import transport

logger = logging.getLogger(__name__)

# Paths served by InferenceHandler; everything else goes through the full Django stack.
INFERENCE_PREFIXES = (
    "/v1/chat/",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/images/",
    "/v1/models",
    "/chat/",
    "/completions",
    "/embeddings",
    "/images/",
    "/models",
    "/openai/deployments/",
    "/engines/",
)


MAX_RESOLVED_PATHS = 1024
MAX_ALLOWED_HOSTS = 1024


def is_inference_path(path: str) -> bool:
    """Return True for the OpenAI-compatible paths."""
    return path.startswith(INFERENCE_PREFIXES)


class RequestState:
    """What the handler learns about one request while it runs."""

    __slots__ = ("disconnected", "finished", "queried", "started")

    def __init__(self) -> None:
        self.queried = False  # a database query ran on this request's behalf
        self.disconnected = False  # the client went away before the response was sent
        self.finished = False  # the response was sent, or the view was cancelled
        self.started = False  # the response's status and headers were sent


# The state of the request being served. Tasks and sync_to_async threads copy the context, so a
# query that runs in asgiref's thread on a request's behalf still finds that request's state.
_request_state: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar(
    "inference_request_state", default=None
)


def _query_mark(execute, sql, params, many, context):
    state = _request_state.get()
    if state is not None:
        state.queried = True
    return execute(sql, params, many, context)


def _query_watch(sender, connection, **kwargs) -> None:
    """Mark the request a query runs for: installed on each connection as it opens."""
    if _query_mark not in connection.execute_wrappers:
        # First, not last: connection.execute_wrapper() pops the last one when its block ends, and
        # this connection may be opening inside such a block.
        connection.execute_wrappers.insert(0, _query_mark)


connection_created.connect(_query_watch, dispatch_uid="llm_gateway.asgi_handlers.query_watch")


def response_close(response: HttpResponseBase) -> None:
    """Close what the response holds (files, iterators) without sending ``request_finished``."""
    # HttpResponseBase.close() would send the signal, which this handler does not (see the module).
    for closer in response._resource_closers:
        try:
            closer()
        except Exception:  # as HttpResponseBase.close: a closer's failure must not fail the request
            logger.exception("Closing a response's resource failed")
    response._resource_closers.clear()
    response.closed = True


class InferenceHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain and no per-request thread (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        # (urlconf, path) -> its ResolverMatch: URL patterns are fixed while the process runs, and
        # resolving walks the whole list (the management API's routes too) on every request.
        self._resolved: dict[tuple[str, str], ResolverMatch] = {}
        # The Host headers (and what else request.get_host() reads) found in ALLOWED_HOSTS, and the
        # ALLOWED_HOSTS they were checked against.
        self._allowed_hosts: set[tuple[str | None, ...]] = set()
        self._allowed_hosts_of: object = None

    def load_middleware(self, is_async: bool = False) -> None:
        """Build an empty middleware chain: the view is called directly."""
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"InferenceHandler serves HTTP only, not {scope['type']}.")
        state = RequestState()
        token = _request_state.set(state)
        try:
            await self.handle(scope, receive, send)
        except Exception:
            if state.started:
                raise  # the status is gone: the server ends the response
            await self.send_response(internal_error_response(scope.get("path", "")), send)
        finally:
            _request_state.reset(token)
            if state.queried:
                # In asgiref's thread-sensitive thread: the one whose connections the queries used.
                await sync_to_async(self.connections_release)()

    async def handle(self, scope, receive, send) -> None:
        """Read the body, serve the request, close the response: Django's handle() without its hops."""
        body, size, limit = [], 0, settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # gone before the body arrived
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                # Django spools a body to a temporary file; this one is kept in memory, so it is
                # refused as soon as it is too big for the view to read (request.body) anyway.
                message = f"The request body is larger than the limit of {limit} bytes."
                await self.send_response(status_response(413, message, "request_too_large"), send)
                return
            body.append(chunk)
            if not message.get("more_body", False):
                break
        prefix = get_script_prefix(scope)
        if prefix:  # else the default "/" stands: each request runs in a context of its own
            set_script_prefix(prefix)
        request, error_response = self.create_request(scope, io.BytesIO(b"".join(body)))
        if request is None:  # Django's plain-text 400 (a path that is not UTF-8) or 413
            await self.send_response(status_response(error_response.status_code), send)
            return
        if not self.host_allowed(request):
            message = "The Host header names a host this gateway does not serve (ALLOWED_HOSTS)."
            await self.send_response(status_response(400, message, "invalid_host"), send)
            return
        response = await self._respond(request, receive, send)
        if response is not None:
            response_close(response)

    def host_allowed(self, request) -> bool:
        """Return True when ``request.get_host()`` accepts the request's host, checking each host once."""
        if self._allowed_hosts_of is not settings.ALLOWED_HOSTS:  # changed (tests override it)
            self._allowed_hosts.clear()
            self._allowed_hosts_of = settings.ALLOWED_HOSTS
        meta = request.META
        key = (
            meta.get("HTTP_HOST"),
            meta.get("HTTP_X_FORWARDED_HOST"),
            meta.get("SERVER_NAME"),
            meta.get("SERVER_PORT"),
        )
        if key in self._allowed_hosts:
            return True
        try:
            request.get_host()
        except DisallowedHost:
            return False  # not remembered: any number of bad hosts must not grow the set
        if len(self._allowed_hosts) >= MAX_ALLOWED_HOSTS:
            self._allowed_hosts.clear()
        self._allowed_hosts.add(key)
        return True

    def connections_release(self) -> None:
        """Close this thread's connections that are broken or past CONN_MAX_AGE, as request_finished would."""
        close_old_connections()

    def resolve_request(self, request) -> ResolverMatch:
        """Return the view for the request's path, resolved once per path."""
        key = (settings.ROOT_URLCONF, request.path_info)
        match = self._resolved.get(key)
        if match is None:
            match = super().resolve_request(request)  # raises Resolver404: unknown paths are not kept
            if len(self._resolved) >= MAX_RESOLVED_PATHS:
                self._resolved.clear()  # Azure paths carry a model name: keep the table bounded
            self._resolved[key] = match
        request.resolver_match = match
        return match

    async def send_response(self, response, send) -> None:
        """Send the response: a whole body in one message with its Content-Length, a stream part by part.

        Django's own chunks bodies at 64 KB and leaves Content-Length to CommonMiddleware, which this
        handler does not run (every answer would go out chunked); it also passes each part of a stream
        through two more generators and a chunker, per server-sent event.
        """
        state = _request_state.get()
        if state is not None:
            state.started = True
        if response.cookies or (response.streaming and not response.is_async):
            await super().send_response(response, send)
            return
        headers = [(name.encode("ascii"), value.encode("latin1")) for name, value in response.items()]
        if not response.streaming:
            body = response.content
            if not response.has_header("Content-Length"):
                headers.append((b"content-length", str(len(body)).encode("ascii")))
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        async with aclosing(response.streaming_content) as parts:
            async for part in parts:
                if part:
                    await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body"})

    async def _respond(self, request, receive, send) -> HttpResponseBase | None:
        """Run the view and send its response; return the response (None if the view was cut short).

        A client that disconnects meanwhile cancels this task, as Django's handler cancels its view:
        one listener task rather than Django's two tasks and asyncio.wait.
        """
        state = _request_state.get()
        serving = asyncio.current_task()
        listener = asyncio.get_running_loop().create_task(_cancel_on_disconnect(receive, serving, state))
        response = None
        try:
            response = await self.run_get_response(request)
            await self.send_response(response, send)
        except asyncio.CancelledError:
            if not state.disconnected:
                raise  # the server is stopping: not ours to swallow
            serving.uncancel()
        finally:
            state.finished = True
            listener.cancel()
        return response


async def _cancel_on_disconnect(receive, serving: asyncio.Task, state: RequestState) -> None:
    # After the body, the only message an ASGI server sends is http.disconnect.
    message = await receive()
    if message["type"] == "http.disconnect" and not state.finished:
        state.disconnected = True
        serving.cancel()


async def lifespan(receive, send) -> None:
    """Answer the ASGI lifespan protocol: on shutdown, flush the ledger and close the upstream pool."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await meters_finished()  # requests cut short are still being billed
                await ledger_writer_close()  # flush the embedded writer's waiting records
            finally:
                await transport.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
