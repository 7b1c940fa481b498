"""Retries with exponential backoff, and the order in which fallbacks are tried.

Only retryable errors are retried (rate limits, timeouts, 5xx, broken connections); a ``Retry-After``
from the provider wins over our own backoff. Fallbacks are tried in order once a candidate has used
up its retries; a context-window error tries ``context_window_fallbacks`` first, a content-policy
error ``content_policy_fallbacks``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from providers.exceptions import APIError, ContentPolicyViolationError, ContextWindowExceededError

T = TypeVar("T")

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on a provider's say-so

Candidate = str | dict[str, Any]


def backoff_delay(attempt: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float:
    """Return the seconds to wait before retry number ``attempt`` (0-based)."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    ceiling = min(INITIAL_BACKOFF * 2**attempt, MAX_BACKOFF)
    return ceiling * (0.5 + rng() / 2)  # "equal jitter": spreads retries of many clients apart


def with_retries(
    attempt: Callable[[], T],
    *,
    num_retries: int,
    sleep: Callable[[float], Any] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Return ``attempt()``, retrying retryable errors up to ``num_retries`` times."""
    for number in range(num_retries + 1):
        try:
            return attempt()
        except APIError as error:
            if not error.retryable or number == num_retries:
                raise
            sleep(backoff_delay(number, error.retry_after, rng))
    raise AssertionError("unreachable: the loop returns or raises")


async def awith_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    num_retries: int,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Return ``await attempt()``, retrying retryable errors up to ``num_retries`` times."""
    for number in range(num_retries + 1):
        try:
            return await attempt()
        except APIError as error:
            if not error.retryable or number == num_retries:
                raise
            await sleep(backoff_delay(number, error.retry_after, rng))
    raise AssertionError("unreachable: the loop returns or raises")


@dataclass
class FallbackPlan:
    """The candidates still to try after the first one, chosen by how the last one failed."""

    fallbacks: list[Candidate] = field(default_factory=list)
    context_window_fallbacks: list[Candidate] = field(default_factory=list)
    content_policy_fallbacks: list[Candidate] = field(default_factory=list)
    errors: list[APIError] = field(default_factory=list)

    def candidates(self, first: Candidate) -> Iterator[Candidate]:
        """Yield ``first``, then each fallback the previous failure (recorded with ``failed``) calls for."""
        queue: list[Candidate] = [first]
        while queue:
            yield queue.pop(0)
            error = self.errors[-1]
            if isinstance(error, ContextWindowExceededError) and self.context_window_fallbacks:
                queue[:0], self.context_window_fallbacks = self.context_window_fallbacks, []
            elif isinstance(error, ContentPolicyViolationError) and self.content_policy_fallbacks:
                queue[:0], self.content_policy_fallbacks = self.content_policy_fallbacks, []
            elif self.fallbacks:
                queue.extend(self.fallbacks)
                self.fallbacks = []

    def failed(self, error: APIError) -> None:
        self.errors.append(error)


def as_list(value: Sequence[Candidate] | None) -> list[Candidate]:
    return list(value or ())
