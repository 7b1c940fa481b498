"""Incremental server-sent events decoder (pure: bytes in, events out).

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
Lines end in LF, CRLF or CR; ``data:`` lines of one event are joined with LF; a blank line ends the
event; lines starting with ``:`` are comments (keep-alives). The stream is UTF-8 decoded with
replacement, as the spec's "UTF-8 decode" does: an invalid byte becomes U+FFFD, not an exception.
"""

from __future__ import annotations

from providers.upstream import SSEEvent


class SSEDecoder:
    """Turn arbitrary byte chunks of an event stream into complete events."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Return the events completed by this chunk."""
        data = self._buffer + chunk if self._buffer else chunk
        held = b""
        if b"\r" in data:
            # A CR at the very end may be the first half of a CRLF split across chunks: keep it back.
            if data.endswith(b"\r"):
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = data.split(b"\n")
        self._buffer = rest + held
        events: list[SSEEvent] = []
        for raw in lines:
            if not raw:  # a blank line ends the event
                if self._data:
                    events.append(self._dispatch())
                continue
            if raw.startswith(b"data:"):  # most lines: decoded without the general parse
                value = raw[6:] if raw[5:6] == b" " else raw[5:]
                self._data.append(value.decode("utf-8", "replace"))
                continue
            event = self._line(raw.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """Return the last event of a stream that ended without a blank line."""
        events = self.feed(b"\n") if self._buffer.strip(b"\r") else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch() if self._data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def _dispatch(self) -> SSEEvent:
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = SSEEvent(data=data, event=self._event)
        self._data, self._event = [], None
        return event
