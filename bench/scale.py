"""The scale steps (``--scale``): what a request costs with many keys, and with many deployments.

One more gateway, on a database of its own, is measured at 32 concurrent non-streaming clients (so it
is busy: 1/req/s is its CPU time per request) while its tables grow between steps:

- ``keys-10``: 10 keys in the database; requests rotate over all 10 (their snapshots warm).
- ``keys-100k-warm``: 99,990 keys bulk-created; requests rotate over 1,000 of them, each of which
  was used once before the warm-up (in-process snapshot cache warm).
- ``keys-100k-cold``: no warm-up, every request a key never used before (cache cold: each request
  reads its key, team and owner from the database).
- ``deployments-5``: 5 deployments, requests go to one model group of 2 (on the 10 first keys).
- ``deployments-1000``: 995 more deployments bulk-created across 498 more model groups; same requests.

Each step is compared with the one before the tables grew (its ``baseline``), measured just before.
"""

from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson

from bench.scenarios import CHAT_PATH, Request, request_body
from bench.servers import GATEWAY_KEY, Server, gateway_seed

PARTS = ("keys", "deployments")
SCALE_GROUP = "bench-scale"
CONCURRENCY = 32
BASE_KEYS = 10
ALL_KEYS = 100_000
ROTATED_KEYS = 1_000
BASE_DEPLOYMENTS = 5
ALL_DEPLOYMENTS = 1_000
# The model group every request asks for holds 2 deployments; the others are spread in groups of two.
GROUP_DEPLOYMENTS = 2


def scale_key_secret(index: int) -> str:
    """Return the secret of scale key number ``index`` (the seeding and the load generator agree on it)."""
    return f"sk-bench-scale-{index:07d}"


@dataclass(frozen=True)
class ScaleStep:
    name: str
    part: str  # "keys" or "deployments"
    description: str
    keys: range  # the scale keys requests use, in turn
    warm: bool  # warm-up first (the keys' snapshots are cached when measuring) or not
    grow: str = ""  # what to add to the database before the step: "keys" or "deployments"
    baseline: str = ""


STEPS: tuple[ScaleStep, ...] = (
    ScaleStep("keys-10", "keys", "10 keys, all 10 in turn (cache warm)", range(BASE_KEYS), warm=True),
    ScaleStep(
        "keys-100k-warm",
        "keys",
        f"{ALL_KEYS:,} keys, {ROTATED_KEYS:,} in turn (cache warm)",
        range(BASE_KEYS, BASE_KEYS + ROTATED_KEYS),
        warm=True,
        grow="keys",
        baseline="keys-10",
    ),
    ScaleStep(
        "keys-100k-cold",
        "keys",
        f"{ALL_KEYS:,} keys, each request a new one (cache cold)",
        range(BASE_KEYS + ROTATED_KEYS, ALL_KEYS),
        warm=False,
        baseline="keys-10",
    ),
    ScaleStep(
        "deployments-5",
        "deployments",
        f"{BASE_DEPLOYMENTS} deployments, one group of 2 asked for",
        range(BASE_KEYS),
        warm=True,
    ),
    ScaleStep(
        "deployments-1000",
        "deployments",
        f"{ALL_DEPLOYMENTS:,} deployments in {ALL_DEPLOYMENTS // GROUP_DEPLOYMENTS} groups, one of them used",
        range(BASE_KEYS),
        warm=True,
        grow="deployments",
        baseline="deployments-5",
    ),
)


def steps_select(parts: set[str]) -> tuple[ScaleStep, ...]:
    """Return the steps of the parts asked for ("keys", "deployments"), in order."""
    return tuple(step for step in STEPS if step.part in parts)


def scale_request(base_url: str, step: ScaleStep) -> Request:
    """Return the step's request: the scale group, each request with the next of the step's keys.

    The probe before the run uses the bench key, so it warms none of the step's keys.
    """
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {GATEWAY_KEY}"}
    return Request(
        url=base_url + CHAT_PATH,
        body=request_body(SCALE_GROUP, stream=False),
        headers=headers,
        keys=tuple(scale_key_secret(index) for index in step.keys),
    )


def keys_prime(request: Request, workers: int = 8) -> None:
    """Send one request with each of the request's keys, so that all their snapshots are cached.

    A timed warm-up alone might not reach every key of a large rotation before the measurement.
    """

    def send(key: str) -> None:
        headers = {**request.headers, "Authorization": f"Bearer {key}"}
        sent = urllib.request.Request(request.url, data=request.body, headers=headers, method="POST")
        with urllib.request.urlopen(sent, timeout=30) as response:
            response.read()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(send, request.keys))


def gateway_prepare(gateway: Server, api_base: str) -> None:
    """Add the 10 first keys and the deployments outside the scale group (5 deployments in all)."""
    gateway_seed(gateway.var_dir, "keys", "--first", "0", "--count", str(BASE_KEYS))
    extra = BASE_DEPLOYMENTS - GROUP_DEPLOYMENTS
    gateway_seed(
        gateway.var_dir, "deployments", "--first", "0", "--count", str(extra), "--api-base", api_base
    )


def gateway_grow(gateway: Server, what: str, api_base: str) -> None:
    """Bulk-create the rest of the keys, or of the deployments (and wait until the gateway sees them)."""
    if what == "keys":
        count = ALL_KEYS - BASE_KEYS
        gateway_seed(gateway.var_dir, "keys", "--first", str(BASE_KEYS), "--count", str(count))
    elif what == "deployments":
        first = BASE_DEPLOYMENTS - GROUP_DEPLOYMENTS
        count = ALL_DEPLOYMENTS - BASE_DEPLOYMENTS
        gateway_seed(
            gateway.var_dir,
            "deployments",
            "--first",
            str(first),
            "--count",
            str(count),
            "--api-base",
            api_base,
        )
        groups = 1 + (ALL_DEPLOYMENTS - GROUP_DEPLOYMENTS + 1) // GROUP_DEPLOYMENTS
        _model_groups_wait(gateway, groups)


def _model_groups_wait(gateway: Server, expected: int, timeout: float = 30.0) -> None:
    """Return once /v1/models lists ``expected`` groups: the gateway reloaded its deployments."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            gateway.url + "/v1/models", headers={"Authorization": f"Bearer {GATEWAY_KEY}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            seen = len(orjson.loads(response.read())["data"])
        if seen == expected:
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"the gateway lists {seen} model groups, not {expected}, {timeout:g} s after the seeding"
    )
