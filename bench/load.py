"""Drive load at a target: wrk when installed, else the Python generator (``bench.generator``).

Both run a warm-up first (not counted), then a fixed duration, and report requests/s, p50, p99 and
errors, split into non-2xx answers, socket errors (connect, read, write) and timeouts. Only the Python
generator times each response's first body byte, so scenarios that need it use it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import Request
from bench.servers import REPO_ROOT, Pinning

REQUEST_TIMEOUT = 30.0


@dataclass
class LoadResult:
    requests: int  # answers completed in the measured window, whatever their status
    errors: int  # non_2xx + socket_errors + timeouts
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    duration_s: float
    non_2xx: int = 0
    socket_errors: int = 0
    timeouts: int = 0
    # The Python generator only: time to the first body byte, and the share of streams whose first
    # byte came at least the scenario's lead before their last (None when not asked for).
    first_byte_p50_ms: float | None = None
    first_byte_p99_ms: float | None = None
    streamed_share: float | None = None
    connections_peak: int | None = None


LoadRunner = Callable[..., LoadResult]


def percentile(ordered: list[float], share: float) -> float | None:
    """Return the nearest-rank percentile (``share`` in 0..100) of an ascending list, None if empty."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * share // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


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
    non_2xx_match = _NON_2XX.search(output)
    non_2xx = int(non_2xx_match.group(1)) if non_2xx_match else 0
    socket_match = _SOCKET_ERRORS.search(output)
    connect, read, write, timeouts = (int(n) for n in socket_match.groups()) if socket_match else (0, 0, 0, 0)
    return LoadResult(
        requests=int(requests.group(1)),
        errors=non_2xx + connect + read + write + timeouts,
        rps=float(rps.group(1)),
        p50_ms=latencies.get(50),
        p99_ms=latencies.get(99),
        duration_s=round(float(requests.group(2)) * _UNITS[requests.group(3)] / 1000, 3),
        non_2xx=non_2xx,
        socket_errors=connect + read + write,
        timeouts=timeouts,
    )


def _lua_string(text: str) -> str:
    if any(character in text for character in "\r\n"):
        raise ValueError(f"a line break in {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(request: Request, body_path: Path, keys_path: Path | None = None) -> str:
    """Return the wrk Lua script that POSTs the request's body (read from a file) with its headers.

    With ``keys_path`` (one key a line), each request carries the next key as its bearer token.
    """
    lines = [
        'wrk.method = "POST"',
        f'local file = assert(io.open({_lua_string(str(body_path))}, "rb"))',
        'wrk.body = file:read("*a")',
        "file:close()",
    ]
    lines += [
        f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in request.headers.items()
    ]
    if keys_path is not None:
        lines += [
            "local keys = {}",
            f"for line in io.lines({_lua_string(str(keys_path))}) do keys[#keys + 1] = line end",
            "local index = 0",
            "request = function()",
            "    index = index % #keys + 1",
            '    wrk.headers["Authorization"] = "Bearer " .. keys[index]',
            "    return wrk.format()",
            "end",
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


def _files_write(request: Request, workdir: Path) -> tuple[Path, Path | None]:
    body_path = workdir / "body.json"
    body_path.write_bytes(request.body)
    if not request.keys:
        return body_path, None
    keys_path = workdir / "keys.txt"
    keys_path.write_text("\n".join(request.keys) + "\n")
    return body_path, keys_path


def wrk_run(
    request: Request,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
    pinning: Pinning,
    first_byte_lead_ms: float = 0.0,
) -> LoadResult:
    """Run wrk for the warm-up (discarded), then for the measured duration (whole seconds).

    wrk cannot time first bytes: ``first_byte_lead_ms`` is accepted and ignored.
    """
    body_path, keys_path = _files_write(request, workdir)
    script = workdir / "request.lua"
    script.write_text(wrk_script(request, body_path, keys_path))
    if warmup >= 0.5:
        _wrk(request, script, concurrency, max(1, round(warmup)), pinning)
    return wrk_output_parse(_wrk(request, script, concurrency, max(1, round(duration)), pinning))


def python_run(
    request: Request,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
    pinning: Pinning,
    first_byte_lead_ms: float = 0.0,
) -> LoadResult:
    """Run the Python generator in its own process (on the load core) and return its result."""
    body_path, keys_path = _files_write(request, workdir)
    command = [sys.executable, "-m", "bench.generator", request.url, "--body-file", str(body_path)]
    command += [arg for name, value in request.headers.items() for arg in ("--header", f"{name}: {value}")]
    command += ["--concurrency", str(concurrency), "--duration", str(duration), "--warmup", str(warmup)]
    command += ["--first-byte-lead-ms", str(first_byte_lead_ms)]
    if keys_path is not None:
        command += ["--keys-file", str(keys_path)]
    result = subprocess.run(
        pinning.wrap(command, "load"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=warmup + duration + REQUEST_TIMEOUT + 120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the load generator failed: {result.stderr}")
    return LoadResult(**json.loads(result.stdout))


def load_runner(name: str) -> tuple[str, LoadRunner]:
    """Return the name and the run function of "wrk", "python" or "auto" (wrk when installed)."""
    if name == "auto":
        name = "wrk" if shutil.which("wrk") else "python"
    if name == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (see --install-tools)")
    return name, {"wrk": wrk_run, "python": python_run}[name]
