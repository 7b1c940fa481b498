"""What the benchmark runs: the scenarios (as data), the targets, and the request each target gets.

Adding a scenario is one ``Scenario(...)`` line; a scenario with an ``upstream_delay_ms`` gets its own
upstream (the Python one, since nginx cannot answer late), and the gateway a deployment for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from bench.upstream import MODEL, STREAM_PREFIX

TARGETS = ("upstream", "floor", "gateway")
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    concurrency: int
    stream: bool = False
    upstream_delay_ms: float = 0.0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("latency-c1", "added latency: 1 client, non-streaming", concurrency=1),
    Scenario("c32", "32 concurrent clients, non-streaming", concurrency=32),
    Scenario(
        "c32-stream", "32 concurrent clients, streaming (20 content chunks)", concurrency=32, stream=True
    ),
)


@dataclass(frozen=True)
class Request:
    """One target's request: the same body and headers for all three, only the URL and model differ."""

    url: str
    body: bytes
    headers: dict[str, str]


def gateway_model(delay_ms: float, stream: bool) -> str:
    """Return the gateway model name whose deployment points at the upstream with this delay."""
    return f"bench-{delay_ms:g}ms" + ("-stream" if stream else "")


def upstream_api_base(upstream_url: str, stream: bool) -> str:
    """Return a deployment's api_base: streams go to the upstream's /stream/ path (nginx picks by path)."""
    return upstream_url + (STREAM_PREFIX.rstrip("/") if stream else "") + "/v1"


def gateway_deployments(scenarios: tuple[Scenario, ...], upstream_urls: dict[float, str]) -> dict[str, str]:
    """Return the deployments the gateway needs: model name -> api_base, for each upstream and mode."""
    return {
        gateway_model(scenario.upstream_delay_ms, stream): upstream_api_base(
            upstream_urls[scenario.upstream_delay_ms], stream
        )
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
        model = gateway_model(scenario.upstream_delay_ms, scenario.stream)
    else:
        raise ValueError(f"unknown target {target!r}")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return Request(url=url, body=request_body(model, scenario.stream), headers=headers)
