"""Start, pin, watch and stop the benchmark's processes: upstream, floor and gateway.

Servers run on core 0 and everything that generates or answers load on core 1 (``taskset``), so the
server under test has a core to itself. The gateway gets its own migrated SQLite database in the
run's temporary folder, seeded through the services, as ``tests/e2e/gateway_process.py`` does.
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
import time
from dataclasses import dataclass
from pathlib import Path

from bench import upstream

try:
    import psutil
except ImportError:  # the `bench` extra is optional: /proc does the same on Linux
    psutil = None

REPO_ROOT = Path(__file__).resolve().parents[1]
GATEWAY_KEY = "sk-bench-0123456789abcdefghij"
UPSTREAM_KEY = "sk-upstream-bench"
UVICORN_OPTIONS = ("--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log")
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

    def pids(self) -> list[int]:
        """Return the server's pid and its children's (nginx's workers)."""
        return [self.process.pid, *_children(self.process.pid)]

    def peak_rss_reset(self) -> None:
        """Reset the kernel's peak-RSS mark (VmHWM) of the server's processes, where Linux allows it."""
        for pid in self.pids():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_rss(self) -> int:
        """Return the peak resident memory since the last reset, in bytes, summed over the processes."""
        return sum(_peak_rss(pid) for pid in self.pids())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _children(pid: int) -> list[int]:
    if psutil is not None:
        try:
            return [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _peak_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    if psutil is not None:  # no /proc: the current RSS is the best available
        try:
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return 0
    return 0


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


def upstream_start(*, workdir: Path, pinning: Pinning, delay_ms: float, kind: str) -> Server:
    """Start a static upstream: nginx (kind "nginx", no delay possible) or the Python fake ("python")."""
    if kind == "nginx" and delay_ms:
        raise ValueError("nginx cannot answer late: use the Python upstream for a delay")
    port = free_port()
    name = f"upstream-{delay_ms:g}ms"
    if kind == "nginx":
        command = upstream.nginx_command(workdir / name, port)
    else:
        command = [sys.executable, "-m", "bench.upstream", "--port", str(port), "--delay-ms", str(delay_ms)]
    server = server_start(name, command, workdir=workdir, pinning=pinning, role="load", port=port)
    server.kind = kind
    return server.wait_ready()


def uvicorn_command(app: str, port: int) -> list[str]:
    host = ("--host", "127.0.0.1", "--port", str(port))
    return [sys.executable, "-m", "uvicorn", app, *host, *UVICORN_OPTIONS]


def floor_start(*, workdir: Path, pinning: Pinning) -> Server:
    """Start the bare Django pass-through (``bench.floor``) with the gateway's uvicorn options."""
    port = free_port()
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.floor.settings"}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    server = server_start(
        "floor",
        uvicorn_command("bench.floor.asgi:application", port),
        workdir=workdir,
        pinning=pinning,
        role="server",
        port=port,
        env=environment,
    )
    server.kind = "django-floor"
    return server.wait_ready()


# Every feature on: the key and its team carry budgets and rate limits (high enough never to refuse),
# so each request is admitted, held, priced, settled and written to the ledger.
SEED = """
from decimal import Decimal
from llm_gateway.models import Team
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create

limits = dict(max_budget=Decimal("1000000000"), budget_duration="30d", rpm_limit=10**9, tpm_limit=10**12,
              max_parallel_requests=100000)
team = Team.objects.create(team_alias="bench", **limits)
virtual_key_create(secret=KEY, key_alias="bench", team=team, **limits)
for name, api_base in DEPLOYMENTS.items():
    deployment_create(
        model_name=name, provider="openai", model=MODEL, api_base=api_base, api_key=UPSTREAM_KEY
    )
"""


def _gateway_environment(var_dir: Path) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if name not in SHARED_SERVER_VARIABLES}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    environment.update(
        {"GATEWAY_VAR_DIR": str(var_dir), "PYTHONPATH": str(REPO_ROOT), "DJANGO_DEBUG": "false"}
    )
    return environment


def _run_checked(command: list[str], environment: dict[str, str]) -> None:
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{result.stderr}{result.stdout}")


def gateway_start(*, workdir: Path, pinning: Pinning, deployments: dict[str, str]) -> Server:
    """Migrate a fresh database, seed one key and ``deployments`` (model name -> api_base), serve it."""
    var_dir = workdir / "gateway-var"
    var_dir.mkdir()
    environment = _gateway_environment(var_dir)
    _run_checked([sys.executable, "manage.py", "migrate", "--verbosity", "0"], environment)
    values = (
        f"KEY = {GATEWAY_KEY!r}\nUPSTREAM_KEY = {UPSTREAM_KEY!r}\nMODEL = {upstream.MODEL!r}\n"
        f"DEPLOYMENTS = {json.dumps(deployments)}\n"
    )
    setup = "import django\ndjango.setup()\n"
    environment_for_seed = {**environment, "DJANGO_SETTINGS_MODULE": "gateway_project.settings"}
    _run_checked([sys.executable, "-c", setup + values + SEED], environment_for_seed)
    port = free_port()
    server = server_start(
        "gateway",
        uvicorn_command("gateway_project.asgi:application", port),
        workdir=workdir,
        pinning=pinning,
        role="server",
        port=port,
        env=environment,
    )
    server.kind = "gateway"
    return server.wait_ready("/health/liveliness")
