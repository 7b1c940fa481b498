"""Golden tests of the Anthropic adapter: exact OpenAI JSON in, exact Anthropic JSON out, and back."""

from __future__ import annotations

from typing import Any

import orjson
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
    UnsupportedParamsError,
)
from providers.registry import PROVIDERS
from providers.upstream import ResolvedDeployment, SSEEvent, StreamState

SPEC = PROVIDERS["anthropic"]
MODEL = "claude-3-5-haiku-20241022"
DEPLOYMENT = ResolvedDeployment(
    provider="anthropic", model=MODEL, api_base="https://api.anthropic.com", api_key="sk-ant-test"
)
HI = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Get the weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sent(body: dict[str, Any], deployment: ResolvedDeployment = DEPLOYMENT) -> dict[str, Any]:
    return orjson.loads(anthropic.build_request("chat", body, deployment, SPEC).body)


def with_base(api_base: str | None) -> ResolvedDeployment:
    return ResolvedDeployment(provider="anthropic", model=MODEL, api_base=api_base, api_key="sk-ant-test")


class TestBuildRequest:
    def test_it_posts_a_system_prompt_and_a_multi_turn_conversation(self):
        request = anthropic.build_request(
            "chat",
            {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."},
                    {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                    {"role": "user", "content": "How are you?"},
                ],
                "max_tokens": 100,
                "temperature": 0.5,
                "top_p": 0.9,
            },
            DEPLOYMENT,
            SPEC,
        )

        assert request.method == "POST"
        assert request.url == "https://api.anthropic.com/v1/messages"
        assert request.headers == {
            "x-api-key": "sk-ant-test",
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        }
        assert request.stream is False
        assert orjson.loads(request.body) == {
            "model": MODEL,
            "system": "You are terse.\n\nAnswer in French.",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "How are you?"},
            ],
            "max_tokens": 100,
            "temperature": 0.5,
            "top_p": 0.9,
        }

    @pytest.mark.parametrize(
        "api_base",
        [
            "https://api.anthropic.com",
            "https://api.anthropic.com/",
            "https://api.anthropic.com/v1",
            "https://api.anthropic.com/v1/",
        ],
    )
    def test_it_accepts_an_api_base_with_or_without_v1(self, api_base):
        request = anthropic.build_request("chat", {"messages": HI}, with_base(api_base), SPEC)

        assert request.url == "https://api.anthropic.com/v1/messages"

    def test_it_uses_the_registry_api_base_when_the_deployment_has_none(self):
        request = anthropic.build_request("chat", {"messages": HI}, with_base(None), SPEC)

        assert request.url == "https://api.anthropic.com/v1/messages"

    def test_it_adds_the_deployment_extra_headers(self):
        deployment = ResolvedDeployment(
            provider="anthropic",
            model=MODEL,
            api_key="sk-ant-test",
            extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        )

        request = anthropic.build_request("chat", {"messages": HI}, deployment, SPEC)

        assert request.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
        assert request.headers["x-api-key"] == "sk-ant-test"

    def test_it_defaults_max_tokens_which_anthropic_requires(self):
        assert sent({"messages": HI}) == {"model": MODEL, "messages": HI, "max_tokens": 4096}

    def test_it_sends_max_completion_tokens_as_max_tokens(self):
        assert sent({"messages": HI, "max_completion_tokens": 7})["max_tokens"] == 7

    def test_it_streams_and_ignores_stream_options(self):
        request = anthropic.build_request(
            "chat",
            {"messages": HI, "stream": True, "stream_options": {"include_usage": True}},
            DEPLOYMENT,
            SPEC,
        )

        assert request.stream is True
        assert orjson.loads(request.body) == {
            "model": MODEL,
            "messages": HI,
            "max_tokens": 4096,
            "stream": True,
        }

    @pytest.mark.parametrize(
        ("stop", "stop_sequences"), [("END", ["END"]), (["END", "\n\n"], ["END", "\n\n"])]
    )
    def test_it_sends_stop_as_stop_sequences(self, stop, stop_sequences):
        assert sent({"messages": HI, "stop": stop}) == {
            "model": MODEL,
            "messages": HI,
            "max_tokens": 4096,
            "stop_sequences": stop_sequences,
        }

    def test_it_sends_user_as_metadata_user_id(self):
        assert sent({"messages": HI, "user": "user-42"})["metadata"] == {"user_id": "user-42"}

    def test_it_passes_unknown_parameters_through(self):
        body = {
            "messages": HI,
            "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "metadata": {"user_id": "abc"},
        }

        assert sent(body) == {
            "model": MODEL,
            "messages": HI,
            "max_tokens": 4096,
            "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "metadata": {"user_id": "abc"},
        }

    def test_it_translates_base64_and_url_images(self):
        body = {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare these."},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                            "cache_control": {"type": "ephemeral"},
                        },
                    ],
                }
            ]
        }

        assert sent(body)["messages"] == [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            }
        ]

    def test_it_rejects_a_data_url_that_is_not_base64(self):
        body = {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}],
                }
            ]
        }

        with pytest.raises(BadRequestError, match=r"messages\[0\]\.content\[0\]"):
            sent(body)

    def test_it_keeps_cache_control_on_system_and_user_text(self):
        body = {
            "messages": [
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "Long instructions.", "cache_control": {"type": "ephemeral"}}
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
                },
            ]
        }

        assert sent(body) == {
            "model": MODEL,
            "system": [
                {"type": "text", "text": "Long instructions.", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
                }
            ],
            "max_tokens": 4096,
        }

    def test_it_merges_consecutive_messages_of_the_same_role(self):
        body = {
            "messages": [
                {"role": "user", "content": "First."},
                {"role": "user", "content": [{"type": "text", "text": "Second."}]},
                {"role": "assistant", "content": "Reply."},
            ]
        }

        assert sent(body)["messages"] == [
            {
                "role": "user",
                "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
            },
            {"role": "assistant", "content": "Reply."},
        ]

    def test_it_translates_tools(self):
        no_parameters = {"type": "function", "function": {"name": "now"}}

        assert sent({"messages": HI, "tools": [WEATHER_TOOL, no_parameters]})["tools"] == [
            WEATHER_TOOL_ANTHROPIC,
            {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        ]

    @pytest.mark.parametrize(
        ("tool_choice", "expected"),
        [
            ("auto", {"type": "auto"}),
            ("required", {"type": "any"}),
            ("none", {"type": "none"}),
            (
                {"type": "function", "function": {"name": "get_weather"}},
                {"type": "tool", "name": "get_weather"},
            ),
        ],
    )
    def test_it_translates_tool_choice(self, tool_choice, expected):
        assert sent({"messages": HI, "tools": [WEATHER_TOOL], "tool_choice": tool_choice}) == {
            "model": MODEL,
            "messages": HI,
            "max_tokens": 4096,
            "tools": [WEATHER_TOOL_ANTHROPIC],
            "tool_choice": expected,
        }

    def test_it_rejects_an_unknown_tool_choice(self):
        with pytest.raises(BadRequestError, match="tool_choice"):
            sent({"messages": HI, "tools": [WEATHER_TOOL], "tool_choice": "sometimes"})

    @pytest.mark.parametrize(
        ("tool_choice", "expected"),
        [
            (None, {"type": "auto", "disable_parallel_tool_use": True}),
            ("required", {"type": "any", "disable_parallel_tool_use": True}),
            (
                {"type": "function", "function": {"name": "get_weather"}},
                {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            ),
            ("none", {"type": "none"}),
        ],
    )
    def test_it_folds_parallel_tool_calls_false_into_tool_choice(self, tool_choice, expected):
        body = {
            "messages": HI,
            "tools": [WEATHER_TOOL],
            "tool_choice": tool_choice,
            "parallel_tool_calls": False,
        }

        assert sent(body)["tool_choice"] == expected

    def test_it_sends_no_tool_choice_for_parallel_tool_calls_true(self):
        assert "tool_choice" not in sent(
            {"messages": HI, "tools": [WEATHER_TOOL], "parallel_tool_calls": True}
        )

    def test_it_translates_tool_calls_and_tool_results_in_a_conversation(self):
        body = {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": "Let me check.",
                    "tool_calls": [
                        {
                            "id": "toolu_01",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "toolu_02",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_01", "content": "18C, sunny"},
                {"role": "tool", "tool_call_id": "toolu_02", "content": [{"type": "text", "text": "22C"}]},
                {"role": "user", "content": "And tomorrow?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "toolu_03",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_03", "content": "unknown"},
            ],
            "tools": [WEATHER_TOOL],
        }

        assert sent(body)["messages"] == [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C, sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_02",
                        "content": [{"type": "text", "text": "22C"}],
                    },
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_03", "name": "get_weather", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_03", "content": "unknown"}],
            },
        ]

    def test_it_rejects_malformed_tool_call_arguments_naming_the_message(self):
        body = {
            "messages": [
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "toolu_01",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"city": '},
                        }
                    ],
                },
            ]
        }

        with pytest.raises(BadRequestError) as caught:
            sent(body)

        assert "messages[1].tool_calls[0].function.arguments" in caught.value.message
        assert caught.value.provider == "anthropic"
        assert caught.value.model == MODEL

    def test_it_rejects_an_unknown_role(self):
        with pytest.raises(BadRequestError, match=r"messages\[0\]: unsupported role 'function'"):
            sent({"messages": [{"role": "function", "name": "f", "content": "x"}]})

    @pytest.mark.parametrize(
        ("param", "value"),
        [
            ("presence_penalty", 0.5),
            ("frequency_penalty", 0.5),
            ("logit_bias", {"50256": -100}),
            ("logprobs", True),
            ("top_logprobs", 2),
            ("seed", 7),
            ("response_format", {"type": "json_object"}),
            ("n", 2),
        ],
    )
    def test_it_rejects_an_unsupported_param(self, param, value):
        with pytest.raises(UnsupportedParamsError) as caught:
            sent({"messages": HI, param: value})

        assert caught.value.param == param
        assert caught.value.status_code == 400
        assert caught.value.provider == "anthropic"

    def test_it_drops_unsupported_params_with_drop_params(self):
        deployment = ResolvedDeployment(
            provider="anthropic", model=MODEL, api_key="sk-ant-test", drop_params=True
        )
        body = {"messages": HI, "seed": 7, "presence_penalty": 0.5, "n": 2, "temperature": 0.1}

        assert sent(body, deployment) == {
            "model": MODEL,
            "messages": HI,
            "max_tokens": 4096,
            "temperature": 0.1,
        }

    def test_it_accepts_n_equal_to_one(self):
        assert sent({"messages": HI, "n": 1}) == {"model": MODEL, "messages": HI, "max_tokens": 4096}

    def test_it_supports_chat_only(self):
        with pytest.raises(BadRequestError, match="chat completions only"):
            anthropic.build_request("embedding", {"input": "x"}, DEPLOYMENT, SPEC)


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
