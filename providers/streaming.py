"""Streams as the library hands them out: iterators of OpenAI chunk objects, usage included.

The wrapper reads every chunk on its way through (the tap): it keeps the generated text and tool-call
arguments so that, when the caller asked for ``stream_options.include_usage`` and the upstream did not
report usage, the final usage chunk can be counted with the bundled tokenizer. ``usage`` and
``reported_usage`` tell afterwards what was used and whether the provider said so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from providers.engine import AsyncChunkSource, ChunkSource
from providers.tokens import token_counter
from providers.types import wrap_chunk
from providers.upstream import Operation


class StreamTap:
    """What a stream generated so far, and its usage once it ends (shared with the gateway's views)."""

    def __init__(
        self,
        operation: Operation,
        model: str,
        body: Mapping[str, Any],
        include_usage: bool,
        on_complete: Callable[[list[dict[str, Any]]], None] | None,
    ) -> None:
        self.operation = operation
        self.model = model
        self.body = body
        self.include_usage = include_usage
        self.on_complete = on_complete
        self.chunks: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.reported_usage = False

    def see(self, chunk: dict[str, Any]) -> None:
        # Only kept: the text is read from the chunks at the end, and only if the provider reported
        # no usage (most do), rather than picked out of every chunk on its way through.
        self.chunks.append(chunk)

    @property
    def text(self) -> list[str]:
        """Return the generated text and tool-call parts seen so far, in order."""
        text: list[str] = []
        for chunk in self.chunks:
            for choice in chunk.get("choices", ()):
                delta = choice.get("delta") or {}
                piece = delta.get("content") if self.operation == "chat" else choice.get("text")
                if piece:
                    text.append(piece)
                for call in delta.get("tool_calls") or ():
                    function = call.get("function") or {}
                    text.extend(part for part in (function.get("name"), function.get("arguments")) if part)
        return text

    def finish(self, source_usage: dict[str, Any] | None) -> dict[str, Any] | None:
        """Return the closing usage chunk, if the caller asked for one."""
        self.reported_usage = source_usage is not None
        self.usage = source_usage or self._counted_usage()
        if self.on_complete is not None:
            self.on_complete(self.chunks)
        if not self.include_usage:
            return None
        last = self.chunks[-1] if self.chunks else {}
        chunk = {key: last[key] for key in ("id", "object", "created", "model") if key in last}
        return {**chunk, "choices": [], "usage": self.usage}

    def _counted_usage(self) -> dict[str, Any]:
        if self.operation == "chat":
            prompt = token_counter(
                model=self.model, messages=list(self.body.get("messages") or ()), tools=self.body.get("tools")
            )
        else:
            prompt = token_counter(model=self.model, text=self.body.get("prompt") or "")
        text = self.text
        completion = token_counter(model=self.model, text="".join(text)) if text else 0
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def include_usage_requested(body: Mapping[str, Any]) -> bool:
    return bool((body.get("stream_options") or {}).get("include_usage"))


class CompletionStream:
    """An iterator of chunk objects; close it (or use ``with``) to stop early and drop the upstream."""

    def __init__(
        self,
        source: ChunkSource,
        operation: Operation,
        model: str,
        body: Mapping[str, Any],
        on_complete: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self._source = source
        self._operation = operation
        self._tap = StreamTap(operation, model, body, include_usage_requested(body), on_complete)
        self._chunks = self._run()

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._tap.usage

    @property
    def reported_usage(self) -> bool:
        return self._tap.reported_usage

    def _run(self) -> Iterator[Any]:
        for chunk in self._source:
            self._tap.see(chunk)
            yield wrap_chunk(self._operation, chunk)
        closing = self._tap.finish(self._source.state.usage)
        if closing is not None:
            yield wrap_chunk(self._operation, closing)

    def __iter__(self) -> Iterator[Any]:
        return self._chunks

    def __next__(self) -> Any:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()
        self._source.close()

    def __enter__(self) -> CompletionStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncCompletionStream:
    """An async iterator of chunk objects; ``aclose()`` stops early and drops the upstream."""

    def __init__(
        self,
        source: AsyncChunkSource,
        operation: Operation,
        model: str,
        body: Mapping[str, Any],
        on_complete: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self._source = source
        self._operation = operation
        self._tap = StreamTap(operation, model, body, include_usage_requested(body), on_complete)
        self._chunks = self._run()

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._tap.usage

    @property
    def reported_usage(self) -> bool:
        return self._tap.reported_usage

    async def _run(self) -> AsyncIterator[Any]:
        async for chunk in self._source:
            self._tap.see(chunk)
            yield wrap_chunk(self._operation, chunk)
        closing = self._tap.finish(self._source.state.usage)
        if closing is not None:
            yield wrap_chunk(self._operation, closing)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._chunks

    async def __anext__(self) -> Any:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()
        self._source.close()

    async def __aenter__(self) -> AsyncCompletionStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
