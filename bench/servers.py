"""Start, pin, watch and stop the benchmark's processes: upstream, floor and gateway.

Servers run on core 0 and everything that generates or answers load on core 1 (``taskset``), so the
server under test has a core to itself. The gateway gets its own migrated SQLite database in the
run's temporary folder, seeded through the services (``bench.seeding``), as
``tests/e2e/gateway_process.py`` does. Memory is the resident set of a server's whole process tree,
sampled with psutil while the load runs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import upstream
from bench.scenarios import UpstreamShape

try:
    import psutil
except ImportError:  # the `bench` extra; checked when a run starts (the pure parts are tested without it)
    psutil = None

REPO_ROOT = Path(__file__).resolve().parents[1]
GATEWAY_KEY = "sk-bench-0123456789abcdefghijklmnop"
UPSTREAM_KEY = "sk-upstream-bench"
UVICORN_OPTIONS = (
    *("--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"),
    *("--backlog", "4096"),  # 2,000 clients connect at once in streams-2000
)
RSS_SAMPLE_INTERVAL = 0.05
# What uvicorn logs (at info) when a worker process has run the application's lifespan startup.
STARTUP_COMPLETE = "Application startup complete."
# Variables that would point the gateway at shared servers; the benchmark runs it embedded.
SHARED_SERVER_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


@dataclass(frozen=True)
class Pinning:
    """The cores (taskset lists) for the server under test and for the load side, or None."""

    server: str | None
    load: str | None

    @classmethod
    def detect(cls) -> Pinning:
        if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
            return cls(server="0", load="1")
        return cls(server=None, load=None)

    def wrap(self, command: list[str], role: str) -> list[str]:
        """Return ``command`` pinned to the role's core ("server" or "load"); taskset keeps the pid."""
        core = self.server if role == "server" else self.load
        return ["taskset", "-c", core, *command] if core is not None else command

    def widened(self) -> Pinning:
        """Return this pinning with the server also allowed on the load's core (both cores here).

        The load side stays where it was, so only the server's share of the machine changes.
        """
        if self.server is None or self.load is None:
            return self
        cores = sorted({*self.server.split(","), *self.load.split(",")}, key=int)
        return Pinning(server=",".join(cores), load=self.load)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A started server process and where it listens."""

    name: str
    port: int
    process: subprocess.Popen
    log_path: Path
    kind: str = ""
    var_dir: Path | None = None  # a gateway's runtime files (database, cache), for seeding it more

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str = "/", timeout: float = 60.0) -> Server:
        """Return once the server answers any HTTP response on ``path``; else stop it and raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request("GET", path)
                connection.getresponse().read()
                return self
            except OSError:
                time.sleep(0.1)
            finally:
                connection.close()
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout:g} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def wait_workers(self, workers: int, timeout: float = 60.0) -> Server:
        """Return once ``workers`` processes have logged their startup (uvicorn at log level info).

        The first worker up answers ``wait_ready``'s probe; the others may still be importing Django.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if startups_count(text) >= workers:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name}: not {workers} workers started in {timeout:g} s:\n{self.log()}")

    def cpu_seconds(self) -> float:
        """Return the CPU time (user and system) the server's process tree has used so far, in seconds."""
        total = 0.0
        for process in self._tree():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def _tree(self) -> list[psutil.Process]:
        """Return the server's processes: the one started and its descendants (nginx's, uvicorn's workers)."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def rss(self) -> int:
        """Return the resident memory of the server's process tree now (nginx's workers too), in bytes."""
        total = 0
        for process in self._tree():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total

    def rss_sampled(self, interval: float = RSS_SAMPLE_INTERVAL) -> RssSampler:
        """Return a context manager sampling the tree's memory every ``interval`` s; ``.peak`` is the max."""
        return RssSampler(self, interval)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RssSampler:
    """Sample a server's memory in a thread while a run goes on; keep the peak (bytes)."""

    def __init__(self, server: Server, interval: float) -> None:
        self.server = server
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"rss-{server.name}", daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.server.rss())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss())


def startups_count(log: str) -> int:
    """Return how many worker processes a uvicorn log says have completed their startup."""
    return log.count(STARTUP_COMPLETE)


def server_start(
    name: str, command: list[str], *, workdir: Path, pinning: Pinning, role: str, port: int, **popen
) -> Server:
    """Start ``command`` pinned to the role's core, its output in ``workdir/<name>.log``."""
    log_path = workdir / f"{name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            pinning.wrap(command, role), stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, **popen
        )
    return Server(name=name, port=port, process=process, log_path=log_path)


def upstream_start(*, workdir: Path, pinning: Pinning, shape: UpstreamShape, kind: str) -> Server:
    """Start an upstream: nginx (kind "nginx", static shapes only) or the Python one ("python")."""
    if kind == "nginx" and not shape.is_static:
        raise ValueError("nginx can neither answer late nor spread a stream: use the Python upstream")
    port = free_port()
    name = f"upstream-{shape.name}"
    if kind == "nginx":
        command = upstream.nginx_command(workdir / name, port)
    else:
        command = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
        command += ["--delay-ms", str(shape.delay_ms), "--chunk-interval-ms", str(shape.chunk_interval_ms)]
    server = server_start(name, command, workdir=workdir, pinning=pinning, role="load", port=port)
    server.kind = kind
    return server.wait_ready()


def uvicorn_command(app: str, port: int, workers: int | None = None) -> list[str]:
    """Return the uvicorn command serving ``app``; with ``workers``, that many processes.

    With ``workers`` uvicorn logs at info (still no access log), so that each worker's startup shows.
    """
    host = ("--host", "127.0.0.1", "--port", str(port))
    command = [sys.executable, "-m", "uvicorn", app, *host, *UVICORN_OPTIONS]
    if workers is not None:
        command[command.index("--log-level") + 1] = "info"
        command += ["--workers", str(workers)]
    return command


def serve_command(port: int, workers: int) -> list[str]:
    """Return ``manage.py serve`` with ``workers`` processes, logging only startups (no access log)."""
    host = ("--host", "127.0.0.1", "--port", str(port))
    options = ("--workers", str(workers), "--log-level", "info", "--no-access-log")
    return [sys.executable, "manage.py", "serve", *host, *options]


def floor_start(
    *, workdir: Path, pinning: Pinning, workers: int | None = None, name: str = "floor"
) -> Server:
    """Start the bare Django pass-through (``bench.floor``) with the gateway's uvicorn options.

    With ``workers``, uvicorn runs that many processes and this returns once all have started.
    """
    port = free_port()
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.floor.settings"}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    server = server_start(
        name,
        uvicorn_command("bench.floor.asgi:application", port, workers),
        workdir=workdir,
        pinning=pinning,
        role="server",
        port=port,
        env=environment,
    )
    server.kind = "django-floor"
    server.wait_ready()
    return server if workers is None else server.wait_workers(workers)


def gateway_environment(var_dir: Path) -> dict[str, str]:
    """Return the environment of an embedded gateway (and of its seeding) whose files are in ``var_dir``."""
    environment = {name: value for name, value in os.environ.items() if name not in SHARED_SERVER_VARIABLES}
    environment.update(
        {
            "GATEWAY_VAR_DIR": str(var_dir),
            "PYTHONPATH": str(REPO_ROOT),
            "DJANGO_DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        }
    )
    return environment


def run_checked(command: list[str], environment: dict[str, str], timeout: float = 600) -> str:
    """Run a command in the repository; return its output, or raise with it when it fails."""
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{result.stderr}{result.stdout}")
    return result.stdout


def gateway_seed(var_dir: Path, *arguments: str) -> str:
    """Run ``python -m bench.seeding ARGUMENTS`` against the gateway whose files are in ``var_dir``."""
    return run_checked([sys.executable, "-m", "bench.seeding", *arguments], gateway_environment(var_dir))


def gateway_database_create(*, workdir: Path, deployments: dict[str, str], name: str) -> Path:
    """Migrate a fresh database, seed the bench key, team and model groups (name -> api_base).

    Return the gateway's runtime folder (``GATEWAY_VAR_DIR``), which holds the database.
    """
    var_dir = workdir / f"{name}-var"
    var_dir.mkdir()
    run_checked([sys.executable, "manage.py", "migrate", "--verbosity", "0"], gateway_environment(var_dir))
    gateway_seed(var_dir, "base", "--key", GATEWAY_KEY, "--deployments", json.dumps(deployments))
    return var_dir


def gateway_serve(
    *, workdir: Path, pinning: Pinning, var_dir: Path, name: str, workers: int | None = None
) -> Server:
    """Serve the gateway whose files are in ``var_dir``: uvicorn, or ``manage.py serve --workers``.

    With ``workers``, this returns once every worker has started.
    """
    port = free_port()
    command = (
        uvicorn_command("gateway_project.asgi:application", port)
        if workers is None
        else serve_command(port, workers)
    )
    server = server_start(
        name,
        command,
        workdir=workdir,
        pinning=pinning,
        role="server",
        port=port,
        env=gateway_environment(var_dir),
    )
    server.kind = "gateway"
    server.var_dir = var_dir
    server.wait_ready("/health/liveliness")
    return server if workers is None else server.wait_workers(workers)


def gateway_start(
    *, workdir: Path, pinning: Pinning, deployments: dict[str, str], name: str = "gateway"
) -> Server:
    """Migrate a fresh database, seed the bench key, team and model groups (name -> api_base), serve it."""
    var_dir = gateway_database_create(workdir=workdir, deployments=deployments, name=name)
    return gateway_serve(workdir=workdir, pinning=pinning, var_dir=var_dir, name=name)
