"""The SSE decoder: events split anywhere across chunks come out whole."""

from providers.sse import SSEDecoder
from providers.upstream import SSEEvent

STREAM = (
    b'event: message_start\ndata: {"a": 1}\n\n'
    b": keep-alive\n\n"
    b"data: line one\ndata: line two\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent(data='{"a": 1}', event="message_start"),
    SSEEvent(data="line one\nline two"),
    SSEEvent(data="[DONE]"),
]


def _decode_in_pieces(stream: bytes, size: int) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(stream), size):
        events += decoder.feed(stream[start : start + size])
    return events + decoder.flush()


def test_it_decodes_events_whatever_the_chunk_boundaries():
    for size in (1, 2, 3, 7, len(STREAM)):
        assert _decode_in_pieces(STREAM, size) == EXPECTED


def test_it_accepts_crlf_line_endings_split_between_chunks():
    stream = STREAM.replace(b"\n", b"\r\n")

    for size in (1, 2, 5):
        assert _decode_in_pieces(stream, size) == EXPECTED


def test_it_keeps_multibyte_characters_split_between_chunks():
    stream = "data: héllo wörld ✓\n\n".encode()

    assert _decode_in_pieces(stream, 1) == [SSEEvent(data="héllo wörld ✓")]


def test_it_flushes_a_final_event_without_a_blank_line():
    decoder = SSEDecoder()

    assert decoder.feed(b"data: last") == []
    assert decoder.flush() == [SSEEvent(data="last")]


def test_data_without_a_space_after_the_colon_is_kept_whole():
    assert _decode_in_pieces(b"data:{}\n\n", 4) == [SSEEvent(data="{}")]


def test_bytes_that_are_not_utf8_become_replacement_characters():
    stream = b"data: caf\xe9\n\nevent: \xff\ndata: ok\n\n"

    assert _decode_in_pieces(stream, 3) == [SSEEvent(data="caf\ufffd"), SSEEvent(data="ok", event="\ufffd")]
