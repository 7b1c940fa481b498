"""Golden tests of the Anthropic adapter's requests: exact OpenAI JSON in, exact Anthropic JSON out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from providers.adapters import anthropic
from providers.exceptions import (
    BadRequestError,
    UnsupportedParamsError,
)
from providers.upstream import ResolvedDeployment
from tests.providers.anthropic_cases import DEPLOYMENT, HI, MODEL, SPEC, WEATHER_TOOL, WEATHER_TOOL_ANTHROPIC


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
