"""Golden tests of the Anthropic adapter's answers: exact Anthropic JSON (responses, stream events,
errors) in, exact OpenAI JSON (or the right exception) out."""

from __future__ import annotations

from typing import Any

import pytest

from providers.adapters import anthropic
from providers.exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)
from providers.upstream import SSEEvent, StreamState
from tests.providers.anthropic_cases import DEPLOYMENT, MODEL

ANTHROPIC_USAGE = {
    "input_tokens": 25,
    "output_tokens": 12,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}
OPENAI_USAGE = {
    "prompt_tokens": 25,
    "completion_tokens": 12,
    "total_tokens": 37,
    "prompt_tokens_details": {"cached_tokens": 0},
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


class TestParseResponse:
    def test_it_translates_a_text_message(self):
        payload = {
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": "Hi! My name is Claude."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }

        assert anthropic.parse_response("chat", payload, DEPLOYMENT) == {
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "object": "chat.completion",
            "model": "claude-3-5-haiku-20241022",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hi! My name is Claude."},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": OPENAI_USAGE,
        }

    def test_it_translates_tool_use_blocks_into_tool_calls(self):
        payload = {
            "id": "msg_01Aq9w938a90dw8q",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [
                {"type": "text", "text": "I'll check both."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Rome"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }

        assert anthropic.parse_response("chat", payload, DEPLOYMENT) == {
            "id": "msg_01Aq9w938a90dw8q",
            "object": "chat.completion",
            "model": "claude-3-5-haiku-20241022",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "I'll check both.",
                        "tool_calls": [
                            {
                                "id": "toolu_01A",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                            },
                            {
                                "id": "toolu_01B",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                            },
                        ],
                    },
                    "logprobs": None,
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": OPENAI_USAGE,
        }

    def test_it_has_no_content_when_there_is_only_a_tool_call(self):
        payload = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }

        message = anthropic.parse_response("chat", payload, DEPLOYMENT)["choices"][0]["message"]

        assert message == {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
            ],
        }

    def test_it_counts_cache_reads_and_writes_as_prompt_tokens(self):
        payload = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 1000,
            },
        }

        assert anthropic.parse_response("chat", payload, DEPLOYMENT)["usage"] == {
            "prompt_tokens": 1210,
            "completion_tokens": 5,
            "total_tokens": 1215,
            "prompt_tokens_details": {"cached_tokens": 1000},
            "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 1000,
        }

    def test_it_puts_thinking_in_reasoning_content(self):
        payload = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [
                {"type": "thinking", "thinking": "Two plus two is four.", "signature": "EqQBCgIYAhIM"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                {"type": "text", "text": "4"},
            ],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }

        message = anthropic.parse_response("chat", payload, DEPLOYMENT)["choices"][0]["message"]

        assert message == {"role": "assistant", "content": "4", "reasoning_content": "Two plus two is four."}

    def test_it_joins_several_text_blocks(self):
        payload = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }

        assert anthropic.parse_response("chat", payload, DEPLOYMENT)["choices"][0]["message"]["content"] == (
            "Hello world"
        )

    @pytest.mark.parametrize(
        ("stop_reason", "finish_reason"),
        [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
            ("model_context_window_exceeded", "length"),
        ],
    )
    def test_it_maps_each_stop_reason(self, stop_reason, finish_reason):
        payload = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "x"}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }

        assert (
            anthropic.parse_response("chat", payload, DEPLOYMENT)["choices"][0]["finish_reason"]
            == finish_reason
        )


# A stream as Anthropic sends it (https://docs.anthropic.com/en/api/messages-streaming), text then a
# tool call whose input arrives in pieces.
RECORDED_STREAM = [
    (
        "message_start",
        '{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message",'
        '"role":"assistant","model":"claude-3-5-haiku-20241022","stop_sequence":null,'
        '"usage":{"input_tokens":472,"output_tokens":2,"cache_creation_input_tokens":0,'
        '"cache_read_input_tokens":100},"content":[],"stop_reason":null}}',
    ),
    (
        "content_block_start",
        '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    ),
    ("ping", '{"type": "ping"}'),
    (
        "content_block_delta",
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}',
    ),
    (
        "content_block_delta",
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", checking."}}',
    ),
    ("content_block_stop", '{"type":"content_block_stop","index":0}'),
    (
        "content_block_start",
        '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use",'
        '"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}',
    ),
    (
        "content_block_delta",
        '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}',
    ),
    (
        "content_block_delta",
        '{"type":"content_block_delta","index":1,'
        '"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": "}}',
    ),
    (
        "content_block_delta",
        '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\\"Paris\\"}"}}',
    ),
    ("content_block_stop", '{"type":"content_block_stop","index":1}'),
    (
        "message_delta",
        '{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
        '"usage":{"output_tokens":89}}',
    ),
    ("message_stop", '{"type":"message_stop"}'),
]


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "claude-3-5-haiku-20241022",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def replay(events: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], StreamState]:
    state = StreamState(deployment=DEPLOYMENT)
    chunks: list[dict[str, Any]] = []
    for name, data in events:
        chunks += anthropic.parse_stream_event("chat", state, SSEEvent(data=data, event=name))
    return chunks, state


class TestParseStreamEvent:
    def test_it_translates_a_recorded_stream_of_text_and_a_tool_call(self):
        chunks, state = replay(RECORDED_STREAM)

        assert chunks == [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Okay"}),
            chunk({"content": ", checking."}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk({}, "tool_calls"),
        ]
        assert state.usage == {
            "prompt_tokens": 572,
            "completion_tokens": 89,
            "total_tokens": 661,
            "prompt_tokens_details": {"cached_tokens": 100},
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 100,
        }
        assert state.finished is True
        assert (state.id, state.model, state.created) == ("msg_014p7gG3wDgGV9EUtLvnow3U", MODEL, 0)

    def test_it_is_not_finished_before_message_stop(self):
        _, state = replay(RECORDED_STREAM[:-1])

        assert state.finished is False

    def test_it_numbers_tool_calls_from_zero_and_fills_empty_arguments(self):
        events = [
            RECORDED_STREAM[0],
            (
                "content_block_start",
                '{"type":"content_block_start","index":0,'
                '"content_block":{"type":"tool_use","id":"toolu_A","name":"now","input":{}}}',
            ),
            ("content_block_stop", '{"type":"content_block_stop","index":0}'),
            (
                "content_block_start",
                '{"type":"content_block_start","index":1,'
                '"content_block":{"type":"tool_use","id":"toolu_B","name":"f","input":{}}}',
            ),
            (
                "content_block_delta",
                '{"type":"content_block_delta","index":1,'
                '"delta":{"type":"input_json_delta","partial_json":"{}"}}',
            ),
            ("content_block_stop", '{"type":"content_block_stop","index":1}'),
        ]

        chunks, _ = replay(events)

        assert chunks[1:] == [
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "toolu_A",
                            "type": "function",
                            "function": {"name": "now", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "toolu_B",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        ]

    def test_it_streams_thinking_as_reasoning_content(self):
        events = [
            RECORDED_STREAM[0],
            (
                "content_block_start",
                '{"type":"content_block_start","index":0,'
                '"content_block":{"type":"thinking","thinking":"","signature":""}}',
            ),
            (
                "content_block_delta",
                '{"type":"content_block_delta","index":0,'
                '"delta":{"type":"thinking_delta","thinking":"Let me think."}}',
            ),
            (
                "content_block_delta",
                '{"type":"content_block_delta","index":0,'
                '"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}',
            ),
            ("content_block_stop", '{"type":"content_block_stop","index":0}'),
        ]

        chunks, _ = replay(events)

        assert chunks[1:] == [chunk({"reasoning_content": "Let me think."})]

    def test_it_reads_the_event_name_from_the_data_when_the_event_line_is_missing(self):
        state = StreamState(deployment=DEPLOYMENT)

        chunks = anthropic.parse_stream_event("chat", state, SSEEvent(data=RECORDED_STREAM[0][1]))

        assert chunks == [chunk({"role": "assistant", "content": ""})]

    def test_it_ignores_unknown_events(self):
        state = StreamState(deployment=DEPLOYMENT)

        assert (
            anthropic.parse_stream_event(
                "chat", state, SSEEvent(data='{"type":"new_thing"}', event="new_thing")
            )
            == []
        )

    def test_it_raises_service_unavailable_for_an_overloaded_error_event(self):
        events = [
            *RECORDED_STREAM[:4],
            ("error", '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'),
        ]

        with pytest.raises(ServiceUnavailableError) as caught:
            replay(events)

        assert caught.value.status_code == 529
        assert caught.value.retryable is True
        assert caught.value.message == "Overloaded"
        assert caught.value.provider == "anthropic"

    def test_it_raises_the_mapped_error_for_other_error_events(self):
        event = SSEEvent(
            data='{"type":"error","error":{"type":"api_error","message":"Internal server error"}}',
            event="error",
        )

        with pytest.raises(InternalServerError, match="Internal server error"):
            anthropic.parse_stream_event("chat", StreamState(deployment=DEPLOYMENT), event)


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": "req_011CSHoEeqs5C",
    }


class TestMapError:
    @pytest.mark.parametrize(
        ("status", "error_type", "cls", "retryable"),
        [
            (400, "invalid_request_error", BadRequestError, False),
            (401, "authentication_error", AuthenticationError, False),
            (403, "permission_error", PermissionDeniedError, False),
            (404, "not_found_error", NotFoundError, False),
            (413, "request_too_large", ContextWindowExceededError, False),
            (429, "rate_limit_error", RateLimitError, True),
            (500, "api_error", InternalServerError, True),
            (529, "overloaded_error", ServiceUnavailableError, True),
        ],
    )
    def test_it_maps_each_error_type(self, status, error_type, cls, retryable):
        error = anthropic.map_error(
            status, error_body(error_type, "Something went wrong"), "", {}, DEPLOYMENT
        )

        assert type(error) is cls
        assert error.status_code == status
        assert error.retryable is retryable
        assert error.message == "Something went wrong"
        assert error.provider == "anthropic"
        assert error.model == MODEL
        assert error.code == error_type

    def test_it_maps_prompt_is_too_long_to_context_window_exceeded(self):
        body = error_body("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum")

        error = anthropic.map_error(400, body, "", {}, DEPLOYMENT)

        assert type(error) is ContextWindowExceededError
        assert error.status_code == 400
        assert error.retryable is False

    def test_it_honours_retry_after(self):
        error = anthropic.map_error(
            429, error_body("rate_limit_error", "Slow down"), "", {"retry-after": "7"}, DEPLOYMENT
        )

        assert isinstance(error, RateLimitError)
        assert error.retry_after == 7.0

    def test_it_keeps_the_text_of_a_non_json_answer(self):
        error = anthropic.map_error(502, None, "<html>Bad gateway</html>", {}, DEPLOYMENT)

        assert isinstance(error, APIError)
        assert error.retryable is True
        assert error.message == "<html>Bad gateway</html>"
