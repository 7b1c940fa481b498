"""Plain data passed between the call engine, the adapters and the transport.

Adapters are pure translators: they receive a ``ResolvedDeployment`` (everything needed to reach one
upstream, credentials included) and an OpenAI-format request body, and return an ``UpstreamRequest``.
Nothing here touches a socket, a clock or the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["chat", "text_completion", "embedding", "image_generation"]

DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class ResolvedDeployment:
    """One upstream to call: provider, its model id, where and with which credentials."""

    provider: str
    model: str
    api_base: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    drop_params: bool = False

    @property
    def public_name(self) -> str:
        """Return ``provider/model``, the name used in errors and price look-ups."""
        return f"{self.provider}/{self.model}"


@dataclass(slots=True)
class UpstreamRequest:
    """An HTTP request ready to send: the body is already serialised."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    stream: bool = False


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event: its ``event:`` name (if any) and its joined ``data:`` lines."""

    data: str
    event: str | None = None


@dataclass(slots=True)
class StreamState:
    """What an adapter remembers between the events of one stream."""

    deployment: ResolvedDeployment
    id: str = ""
    model: str = ""
    created: int = 0
    usage: dict[str, Any] | None = None
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
