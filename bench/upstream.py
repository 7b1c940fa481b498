"""The static upstream: a fixed chat completion, or a fixed event stream under ``/stream/``.

nginx serves it when installed; otherwise, and whenever the upstream must answer late or spread a
stream over time (nginx can do neither), a small asyncio server run as
``python -m bench.upstream --port N [--delay-ms D] [--chunk-interval-ms I]`` does. Both answer tens of
thousands of requests a second on one core, far beyond what the servers under test do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
from pathlib import Path

import httptools
import orjson
import uvloop  # like httptools, installed with uvicorn[standard]

STREAM_PREFIX = "/stream/"
CHUNKS = 20
MODEL = "gpt-bench"

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
        "system_fingerprint": "fp_bench",
    }
)


def _chunk(delta: dict, finish_reason: str | None = None, usage: dict | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    choices = [] if usage else [choice]
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": choices,
    }
    if usage:
        chunk["usage"] = usage
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def stream_parts() -> list[bytes]:
    """Return the stream as it is spread over time: the role event, then one part per content chunk.

    The last part carries the last content chunk with the finish reason, the usage and ``[DONE]``.
    """
    parts = [_chunk({"role": "assistant", "content": ""})]
    parts += [_chunk({"content": f"token{index} "}) for index in range(CHUNKS)]
    usage = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS}
    parts[-1] += _chunk({}, finish_reason="stop") + _chunk({}, usage=usage) + b"data: [DONE]\n\n"
    return parts


STREAM = b"".join(stream_parts())


def nginx_binary() -> str | None:
    """Return the nginx executable, also where a non-root PATH lacks /usr/sbin."""
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
    )


def nginx_config(directory: Path, port: int) -> str:
    """Return an nginx configuration answering every POST with the fixed bodies (files in ``directory``).

    The static module refuses POST with 405, so each location answers 405 and turns it into the file
    with ``error_page 405 =200`` (an internal redirect, made as a GET).
    """
    temp_paths = "\n".join(
        f"    {name}_temp_path {directory / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
{temp_paths}
    sendfile on;
    open_file_cache max=16 inactive=300s;
    etag off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {directory / "www"};
        location {STREAM_PREFIX} {{ error_page 405 =200 /stream.sse; return 405; }}
        location / {{ error_page 405 =200 /completion.json; return 405; }}
        location = /stream.sse {{ internal; default_type text/event-stream; }}
        location = /completion.json {{ internal; default_type application/json; }}
    }}
}}
"""


def nginx_command(directory: Path, port: int) -> list[str]:
    """Write the configuration and the bodies into ``directory``; return the command that serves them."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    (directory / "www").mkdir(parents=True, exist_ok=True)
    (directory / "www" / "completion.json").write_bytes(COMPLETION)
    (directory / "www" / "stream.sse").write_bytes(STREAM)
    for path in (directory.parent, directory, directory / "www"):
        path.chmod(0o755)  # run as root, nginx's workers drop to `nobody` and must read the files
    config = directory / "nginx.conf"
    config.write_text(nginx_config(directory, port))
    return [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(config)]


def _response(content_type: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type
    return head + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


JSON_RESPONSE = _response(b"application/json", COMPLETION)
STREAM_CONTENT_TYPE = b"text/event-stream\r\nCache-Control: no-cache"
STREAM_RESPONSE = _response(STREAM_CONTENT_TYPE, STREAM)


def spaced_stream_writes() -> list[bytes]:
    """Return the writes of a spread stream: the head with the role event, then one per content chunk.

    The head announces the whole length, so the connection stays reusable without chunked encoding.
    """
    parts = stream_parts()
    head = _response(STREAM_CONTENT_TYPE, STREAM)[: -len(STREAM)]
    return [head + parts[0], *parts[1:]]


SPACED_STREAM_WRITES = spaced_stream_writes()


class UpstreamProtocol(asyncio.Protocol):
    """Answer each request with the fixed completion, or the stream under /stream/ or for stream: true.

    With a ``chunk_interval`` the stream's content chunks leave that many seconds apart (the role
    event at once), the way a model generates them: ``CHUNKS`` intervals from first byte to last.
    """

    def __init__(self, delay: float, chunk_interval: float = 0.0) -> None:
        self.delay = delay
        self.chunk_interval = chunk_interval
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.stream = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.stream = False

    def on_url(self, url: bytes) -> None:
        self.stream = self.stream or url.startswith(STREAM_PREFIX.encode())

    def on_body(self, body: bytes) -> None:
        self.stream = self.stream or b'"stream":true' in body or b'"stream": true' in body

    def on_message_complete(self) -> None:
        loop = asyncio.get_running_loop()
        if self.stream and self.chunk_interval:
            loop.call_later(self.delay, self._spaced_send, 0)
            return
        response = STREAM_RESPONSE if self.stream else JSON_RESPONSE
        if self.delay:
            loop.call_later(self.delay, self._send, response)
        else:
            self._send(response)

    def _send(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)

    def _spaced_send(self, index: int) -> None:
        """Send write ``index`` of a spread stream, and schedule the next one.

        One timer at a time, each set by the write before it: uvloop may fire timers set together
        out of order when its loop lags, which would send the body before the head.
        """
        if self.transport.is_closing():
            return
        self.transport.write(SPACED_STREAM_WRITES[index])
        if index + 1 < len(SPACED_STREAM_WRITES):
            asyncio.get_running_loop().call_later(self.chunk_interval, self._spaced_send, index + 1)


async def serve(port: int, delay: float, chunk_interval: float = 0.0) -> None:
    """Serve the fixed responses on 127.0.0.1:``port`` until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(delay, chunk_interval), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the benchmark's static upstream.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer this long after the request")
    parser.add_argument(
        "--chunk-interval-ms", type=float, default=0.0, help="send a stream's content chunks this far apart"
    )
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(arguments.port, arguments.delay_ms / 1000, arguments.chunk_interval_ms / 1000))


if __name__ == "__main__":
    main()
