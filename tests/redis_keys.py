"""Finding and deleting a test's own Redis keys: those under its prefix, and nothing else."""

from __future__ import annotations

import redis

BATCH = 1000


def keys_under(client: redis.Redis, prefix: str) -> set[bytes]:
    """Return the names of the keys that start with ``prefix:`` (SCAN MATCH, never KEYS)."""
    return set(client.scan_iter(match=f"{_glob_escape(prefix)}:*", count=BATCH))


def keys_delete(url: str, prefix: str) -> int:
    """Delete the keys under ``prefix:`` (SCAN MATCH + UNLINK); return how many were deleted."""
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    deleted = 0
    batch: list[bytes] = []
    try:
        for name in client.scan_iter(match=f"{_glob_escape(prefix)}:*", count=BATCH):
            batch.append(name)
            if len(batch) >= BATCH:
                deleted += client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)
    finally:
        client.close()
    return deleted


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
