"""What the benchmark runs: the scenarios (as data), the targets, and the request each target gets.

Adding a scenario is one ``Scenario(...)`` line. Scenarios that share an upstream shape (how late it
answers, how far apart it sends a stream's chunks) share an upstream; a shape other than "at once"
is served by the Python upstream, since nginx can neither wait nor spread a body over time. The
gateway gets a model group per shape and mode, of two deployments each, so routing has to choose.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from bench.upstream import CHUNKS, MODEL, STREAM_PREFIX

TARGETS = ("upstream", "floor", "gateway")
CHAT_PATH = "/v1/chat/completions"
# Deployments per model group: two on the same upstream, so the router draws between them.
DEPLOYMENTS_PER_GROUP = 2


@dataclass(frozen=True, order=True)
class UpstreamShape:
    """How the upstream answers: after ``delay_ms``, and a stream's chunks ``chunk_interval_ms`` apart."""

    delay_ms: float = 0.0
    chunk_interval_ms: float = 0.0

    @property
    def name(self) -> str:
        spacing = f"-every{self.chunk_interval_ms:g}ms" if self.chunk_interval_ms else ""
        return f"{self.delay_ms:g}ms{spacing}"

    @property
    def is_static(self) -> bool:
        """Return True when a static server (nginx) can serve it: no delay, no spacing."""
        return not self.delay_ms and not self.chunk_interval_ms


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    concurrency: int
    stream: bool = False
    upstream_delay_ms: float = 0.0
    chunk_interval_ms: float = 0.0
    # Time each response's first body byte too (the Python load generator: wrk cannot).
    first_byte: bool = False
    # At least this much warm-up, whatever --warmup says: 2,000 clients connecting at once find the
    # servers' caches cold together, and the backlog takes seconds to clear.
    min_warmup_s: float = 0.0

    @property
    def upstream(self) -> UpstreamShape:
        return UpstreamShape(self.upstream_delay_ms, self.chunk_interval_ms)

    @property
    def stream_span_ms(self) -> float:
        """Return how long the upstream takes from a stream's first byte to its last."""
        return CHUNKS * self.chunk_interval_ms if self.stream else 0.0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("latency-c1", "added latency: 1 client, non-streaming", concurrency=1),
    Scenario("c32", "32 concurrent clients, non-streaming", concurrency=32),
    Scenario("c128", "128 concurrent clients, non-streaming", concurrency=128),
    Scenario(
        "c32-stream", "32 concurrent clients, streaming (24 events at once)", concurrency=32, stream=True
    ),
    Scenario(
        "slow-256",
        "256 requests in flight, the upstream answers after 100 ms",
        concurrency=256,
        upstream_delay_ms=100,
    ),
    Scenario(
        "streams-2000",
        f"2,000 concurrent slow streams: {CHUNKS} chunks 50 ms apart",
        concurrency=2000,
        stream=True,
        chunk_interval_ms=50,
        first_byte=True,
        min_warmup_s=10.0,
    ),
)


@dataclass(frozen=True)
class Request:
    """One target's request: the same body and headers for all three, only the URL and model differ.

    With ``keys``, each request carries the next of them as its bearer key (in turn, from the first),
    instead of the one in ``headers`` (which the probe before the run still uses).
    """

    url: str
    body: bytes
    headers: dict[str, str]
    keys: tuple[str, ...] = ()


def gateway_model(shape: UpstreamShape, stream: bool) -> str:
    """Return the gateway model group whose deployments point at the upstream of this shape."""
    return f"bench-{shape.name}" + ("-stream" if stream else "")


def upstream_api_base(upstream_url: str, stream: bool) -> str:
    """Return a deployment's api_base: streams go to the upstream's /stream/ path (nginx picks by path)."""
    return upstream_url + (STREAM_PREFIX.rstrip("/") if stream else "") + "/v1"


def gateway_deployments(
    scenarios: tuple[Scenario, ...], upstream_urls: dict[UpstreamShape, str]
) -> dict[str, str]:
    """Return the model groups the gateway needs: name -> api_base, for each upstream and mode."""
    return {
        gateway_model(scenario.upstream, stream): upstream_api_base(upstream_urls[scenario.upstream], stream)
        for scenario in scenarios
        for stream in (False, True)
    }


def request_body(model: str, stream: bool) -> bytes:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 32,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return orjson.dumps(body)


def request_for(target: str, scenario: Scenario, *, base_url: str, upstream_port: int, key: str) -> Request:
    """Return the request ``target`` (upstream, floor or gateway at ``base_url``) gets in ``scenario``."""
    upstream_path = (STREAM_PREFIX.rstrip("/") if scenario.stream else "") + CHAT_PATH
    model = MODEL
    if target == "upstream":
        url = base_url + upstream_path
    elif target == "floor":
        url = f"{base_url}/{upstream_port}{upstream_path}"
    elif target == "gateway":
        url = base_url + CHAT_PATH
        model = gateway_model(scenario.upstream, scenario.stream)
    else:
        raise ValueError(f"unknown target {target!r}")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return Request(url=url, body=request_body(model, scenario.stream), headers=headers)


def scenarios_select(names: list[str] | None) -> tuple[Scenario, ...]:
    """Return the scenarios named (all when ``names`` is empty), in their usual order."""
    known = {scenario.name for scenario in SCENARIOS}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}; choose among {', '.join(sorted(known))}")
    return tuple(scenario for scenario in SCENARIOS if not names or scenario.name in names)
