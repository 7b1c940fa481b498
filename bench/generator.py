"""The Python load generator: ``python -m bench.generator URL --body-file F [...]`` prints a JSON result.

A raw asyncio client with httptools: it costs far less per request than an HTTP client library, so it
measures the servers under test, not itself; against the static upstream it is the limit. Unlike wrk
it times each response's first body byte, which tells a relayed stream from a buffered one.

Each of ``concurrency`` workers keeps one keep-alive connection busy. An answer counts when it
completes inside the measured window (after the warm-up), as wrk counts; requests still in flight
when the window closes are abandoned.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httptools
import uvloop

from bench.load import REQUEST_TIMEOUT, LoadResult, milliseconds, percentile


@dataclass
class _Connections:
    """The open connections (closed at the end) and the most that were open at once."""

    open: set[_Connection] = field(default_factory=set)
    peak: int = 0


class _Connection(asyncio.Protocol):
    """One keep-alive client connection; ``send`` returns a future of the response's status code."""

    def __init__(self, connections: _Connections) -> None:
        self.connections = connections
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.first_byte_at: float | None = None
        self.usable = True

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.connections.open.add(self)
        self.connections.peak = max(self.connections.peak, len(self.connections.open))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionError(str(error)))

    def on_body(self, body: bytes) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()

    def on_message_complete(self) -> None:
        self.usable = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, error: Exception | None) -> None:
        self.connections.open.discard(self)
        self._fail(ConnectionResetError(str(error or "the server closed the connection")))

    def _fail(self, error: Exception) -> None:
        self.usable = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def time_out(self) -> None:
        self._fail(TimeoutError(f"no answer within {REQUEST_TIMEOUT:g} s"))

    def send(self, payload: bytes) -> asyncio.Future[int]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.first_byte_at = None
        self.transport.write(payload)
        return self.waiter


@dataclass
class Window:
    """What completed inside the measured window ``[measure_from, end]``."""

    measure_from: float
    end: float
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    leads: list[float] = field(default_factory=list)  # last byte minus first byte, per answer
    answers: int = 0
    non_2xx: int = 0
    socket_errors: int = 0
    timeouts: int = 0

    def record(
        self, started: float, finished: float, status: int, error: str = "", first_byte: float | None = None
    ) -> None:
        """Count a request that ended inside the window: an answer (``status``) or an ``error``."""
        if not self.measure_from <= finished <= self.end:
            return
        if error == "timeout":
            self.timeouts += 1
        elif error:
            self.socket_errors += 1
        if not status:
            return
        self.answers += 1
        self.non_2xx += not 200 <= status < 300
        self.latencies.append(finished - started)
        if first_byte is not None:
            self.first_bytes.append(first_byte - started)
            self.leads.append(finished - first_byte)

    def result(self, duration: float, lead: float, connections_peak: int) -> LoadResult:
        """Return the window's result; a stream is relayed if its first byte came ``lead`` s early."""
        latencies, first_bytes = sorted(self.latencies), sorted(self.first_bytes)
        streamed = None
        if lead and self.leads:
            streamed = round(sum(value >= lead for value in self.leads) / len(self.leads), 4)
        return LoadResult(
            requests=self.answers,
            errors=self.non_2xx + self.socket_errors + self.timeouts,
            rps=round(self.answers / duration, 1),
            p50_ms=milliseconds(percentile(latencies, 50)),
            p99_ms=milliseconds(percentile(latencies, 99)),
            duration_s=duration,
            non_2xx=self.non_2xx,
            socket_errors=self.socket_errors,
            timeouts=self.timeouts,
            first_byte_p50_ms=milliseconds(percentile(first_bytes, 50)),
            first_byte_p99_ms=milliseconds(percentile(first_bytes, 99)),
            streamed_share=streamed,
            connections_peak=connections_peak,
        )


async def _worker(
    host: str, port: int, payloads: Iterator[bytes], window: Window, connections: _Connections
) -> None:
    loop = asyncio.get_running_loop()
    connection: _Connection | None = None
    while (started := time.perf_counter()) < window.end:
        status, error = 0, ""
        try:
            if connection is None or not connection.usable:
                _, connection = await loop.create_connection(lambda: _Connection(connections), host, port)
            # A timer rather than asyncio.wait_for, which costs a task per request.
            timer = loop.call_later(REQUEST_TIMEOUT, connection.time_out)
            try:
                status = await connection.send(next(payloads))
            finally:
                timer.cancel()
        except TimeoutError:
            error = "timeout"
        except OSError:  # ConnectionError included
            error = "socket"
        first_byte = connection.first_byte_at if connection is not None and status else None
        window.record(started, time.perf_counter(), status, error, first_byte)
        if error:
            connection = None
            await asyncio.sleep(0.01)  # a refused or dropped connection: do not spin


def request_bytes(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """Return the raw HTTP/1.1 POST the generator sends on every request."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def request_payloads(url: str, body: bytes, headers: dict[str, str], keys: list[str]) -> Iterator[bytes]:
    """Yield the requests to send: the same one forever, or one per key in turn (as its bearer key)."""
    if not keys:
        return itertools.repeat(request_bytes(url, body, headers))
    others = {name: value for name, value in headers.items() if name.lower() != "authorization"}
    return (
        request_bytes(url, body, {**others, "Authorization": f"Bearer {key}"})
        for key in itertools.cycle(keys)
    )


async def generate(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    keys: list[str] | None = None,
    first_byte_lead: float = 0.0,
) -> LoadResult:
    """Keep ``concurrency`` requests in flight for warm-up + duration; measure the last ``duration``."""
    parts = urlsplit(url)
    payloads = request_payloads(url, body, headers, keys or [])
    measure_from = time.perf_counter() + warmup
    window = Window(measure_from=measure_from, end=measure_from + duration)
    connections = _Connections()
    workers = [
        asyncio.create_task(_worker(parts.hostname, parts.port or 80, payloads, window, connections))
        for _ in range(concurrency)
    ]
    await asyncio.sleep(window.end - time.perf_counter())
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    for connection in list(connections.open):
        connection.transport.close()
    return window.result(duration, first_byte_lead, connections.peak)


def main() -> None:
    parser = argparse.ArgumentParser(description="Drive POST load at a URL; print the result as JSON.")
    parser.add_argument("url")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--keys-file", type=Path, help="bearer keys, one a line, used in turn")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--first-byte-lead-ms",
        type=float,
        default=0.0,
        help="a stream counts as streamed when its first byte came this long before its last",
    )
    arguments = parser.parse_args()
    headers = dict(header.split(": ", 1) for header in arguments.header)
    keys = arguments.keys_file.read_text().split() if arguments.keys_file else []
    result = uvloop.run(
        generate(
            arguments.url,
            arguments.body_file.read_bytes(),
            headers,
            concurrency=arguments.concurrency,
            duration=arguments.duration,
            warmup=arguments.warmup,
            keys=keys,
            first_byte_lead=arguments.first_byte_lead_ms / 1000,
        )
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
