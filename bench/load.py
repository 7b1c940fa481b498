"""Drive load at a target: wrk when installed, else a Python generator in its own process.

Both run a warm-up first (not counted), then a fixed duration, and report requests/s, p50, p99 and
errors (non-2xx answers plus transport errors). The Python generator (``python -m bench.load ...``) is
a raw asyncio client with httptools: it costs far less per request than an HTTP client library, so
it measures the servers under test, not itself; against the static upstream it is the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httptools
import uvloop

from bench.scenarios import Request
from bench.servers import REPO_ROOT, Pinning

REQUEST_TIMEOUT = 30.0


@dataclass
class LoadResult:
    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    duration_s: float


def percentile(ordered: list[float], share: float) -> float | None:
    """Return the nearest-rank percentile (``share`` in 0..100) of an ascending list, None if empty."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * share // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk_output_parse(output: str) -> LoadResult:
    """Return the result a `wrk --latency` run printed (p50/p99 from its latency distribution)."""
    latencies = {
        int(share): round(float(value) * _UNITS[unit], 3) for share, value, unit in _LATENCY.findall(output)
    }
    requests = _REQUESTS.search(output)
    rps = _RPS.search(output)
    if requests is None or rps is None:
        raise ValueError(f"not wrk output:\n{output}")
    non_2xx = _NON_2XX.search(output)
    socket_errors = _SOCKET_ERRORS.search(output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(count) for count in socket_errors.groups()) if socket_errors else 0
    return LoadResult(
        requests=int(requests.group(1)),
        errors=errors,
        rps=float(rps.group(1)),
        p50_ms=latencies.get(50),
        p99_ms=latencies.get(99),
        duration_s=round(float(requests.group(2)) * _UNITS[requests.group(3)] / 1000, 3),
    )


def _lua_string(text: str) -> str:
    if any(character in text for character in "\r\n"):
        raise ValueError(f"a line break in {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(request: Request, body_path: Path) -> str:
    """Return the wrk Lua script that POSTs the request's body (read from a file) with its headers."""
    lines = [
        'wrk.method = "POST"',
        f'local file = assert(io.open({_lua_string(str(body_path))}, "rb"))',
        'wrk.body = file:read("*a")',
        "file:close()",
    ]
    lines += [
        f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in request.headers.items()
    ]
    return "\n".join(lines) + "\n"


def _wrk(request: Request, script: Path, concurrency: int, seconds: int, pinning: Pinning) -> str:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", f"--timeout={REQUEST_TIMEOUT:g}s"]
    command += ["--latency", "-s", str(script), request.url]
    result = subprocess.run(
        pinning.wrap(command, "load"), capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    # wrk reports a broken script on stderr and then runs anyway, with a plain GET.
    if result.returncode != 0 or result.stderr.strip():
        raise RuntimeError(f"wrk failed: {result.stderr}{result.stdout}")
    return result.stdout


def wrk_run(
    request: Request, *, concurrency: int, duration: float, warmup: float, workdir: Path, pinning: Pinning
) -> LoadResult:
    """Run wrk for the warm-up (discarded), then for the measured duration (whole seconds)."""
    body_path = workdir / "body.json"
    body_path.write_bytes(request.body)
    script = workdir / "request.lua"
    script.write_text(wrk_script(request, body_path))
    if warmup >= 0.5:
        _wrk(request, script, concurrency, max(1, round(warmup)), pinning)
    return wrk_output_parse(_wrk(request, script, concurrency, max(1, round(duration)), pinning))


def python_run(
    request: Request, *, concurrency: int, duration: float, warmup: float, workdir: Path, pinning: Pinning
) -> LoadResult:
    """Run the Python generator in its own process (on the load core) and return its result."""
    body_path = workdir / "body.json"
    body_path.write_bytes(request.body)
    command = [sys.executable, "-m", "bench.load", request.url, "--body-file", str(body_path)]
    command += [arg for name, value in request.headers.items() for arg in ("--header", f"{name}: {value}")]
    command += ["--concurrency", str(concurrency), "--duration", str(duration), "--warmup", str(warmup)]
    result = subprocess.run(
        pinning.wrap(command, "load"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=warmup + duration + 120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the load generator failed: {result.stderr}")
    return LoadResult(**json.loads(result.stdout))


def load_runner(name: str):
    """Return the name and the run function of "wrk", "python" or "auto" (wrk when installed)."""
    if name == "auto":
        name = "wrk" if shutil.which("wrk") else "python"
    if name == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (see --install-tools)")
    return name, {"wrk": wrk_run, "python": python_run}[name]


class _Connection(asyncio.Protocol):
    """One keep-alive client connection; ``send`` returns a future of the response's status code."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.usable = True

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def on_message_complete(self) -> None:
        self.usable = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, error: Exception | None) -> None:
        self._fail(error or ConnectionResetError("the server closed the connection"))

    def _fail(self, error: Exception) -> None:
        self.usable = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(str(error)))
        if self.transport is not None:
            self.transport.close()

    def time_out(self) -> None:
        self._fail(TimeoutError(f"no answer within {REQUEST_TIMEOUT:g} s"))

    def send(self, payload: bytes) -> asyncio.Future[int]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self.waiter


@dataclass
class _Window:
    measure_from: float
    end: float
    latencies: list[float]
    completed: int = 0
    errors: int = 0

    def record(self, started: float, finished: float, status: int) -> None:
        """Count a request that ran wholly inside the window; time it unless the transport failed."""
        if started < self.measure_from or finished > self.end:
            return
        self.completed += 1
        self.errors += not 200 <= status < 300
        if status:
            self.latencies.append(finished - started)


async def _worker(host: str, port: int, payload: bytes, window: _Window) -> None:
    loop = asyncio.get_running_loop()
    connection: _Connection | None = None
    while (started := time.perf_counter()) < window.end:
        status = 0
        try:
            if connection is None or not connection.usable:
                _, connection = await loop.create_connection(_Connection, host, port)
            # A timer rather than asyncio.wait_for, which costs a task per request.
            timer = loop.call_later(REQUEST_TIMEOUT, connection.time_out)
            try:
                status = await connection.send(payload)
            finally:
                timer.cancel()
        except (OSError, ConnectionError):
            connection = None
        window.record(started, time.perf_counter(), status)
        if status == 0:
            await asyncio.sleep(0.01)  # a refused or dropped connection: do not spin
    if connection is not None and connection.transport is not None:
        connection.transport.close()


def request_bytes(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """Return the raw HTTP/1.1 POST the generator sends on every request."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def generate(
    url: str, body: bytes, headers: dict[str, str], *, concurrency: int, duration: float, warmup: float
) -> LoadResult:
    """Keep ``concurrency`` requests in flight for warm-up + duration; measure the last ``duration``."""
    parts = urlsplit(url)
    payload = request_bytes(url, body, headers)
    measure_from = time.perf_counter() + warmup
    window = _Window(measure_from=measure_from, end=measure_from + duration, latencies=[])
    await asyncio.gather(
        *(_worker(parts.hostname, parts.port or 80, payload, window) for _ in range(concurrency))
    )
    ordered = sorted(window.latencies)
    return LoadResult(
        requests=window.completed,
        errors=window.errors,
        rps=round(window.completed / duration, 1),
        p50_ms=_milliseconds(percentile(ordered, 50)),
        p99_ms=_milliseconds(percentile(ordered, 99)),
        duration_s=duration,
    )


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description="Drive POST load at a URL; print the result as JSON.")
    parser.add_argument("url")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    arguments = parser.parse_args()
    headers = dict(header.split(": ", 1) for header in arguments.header)
    result = uvloop.run(
        generate(
            arguments.url,
            arguments.body_file.read_bytes(),
            headers,
            concurrency=arguments.concurrency,
            duration=arguments.duration,
            warmup=arguments.warmup,
        )
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
