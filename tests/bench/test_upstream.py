"""The static upstream's bodies and configuration."""

from bench import upstream


def test_the_static_stream_ends_with_usage_and_done():
    events = upstream.STREAM.split(b"\n\n")

    assert events[-2:] == [b"data: [DONE]", b""]
    assert b'"usage"' in events[-3]
    assert sum(b'"content":"token' in event for event in events) == upstream.CHUNKS


def test_a_spread_stream_sends_the_head_and_role_first_then_one_content_chunk_per_write():
    writes = upstream.SPACED_STREAM_WRITES

    assert len(writes) == 1 + upstream.CHUNKS
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"role":"assistant"' in writes[0]
    assert all(write.count(b'"content":"token') == 1 for write in writes[1:])
    assert writes[-1].endswith(b"data: [DONE]\n\n")


def test_a_spread_stream_announces_exactly_the_bytes_it_sends():
    head, _, first_body = upstream.SPACED_STREAM_WRITES[0].partition(b"\r\n\r\n")
    body = first_body + b"".join(upstream.SPACED_STREAM_WRITES[1:])

    assert f"Content-Length: {len(body)}".encode() in head
    assert body == upstream.STREAM


def test_the_nginx_configuration_serves_both_bodies_to_post(tmp_path):
    config = upstream.nginx_config(tmp_path, 8123)

    assert "listen 127.0.0.1:8123" in config
    assert "error_page 405 =200 /stream.sse" in config
    assert "error_page 405 =200 /completion.json" in config
