"""The request fields the gateway reads are checked before admission; gateway-only fields never leave.

End to end (a live gateway, each input of the security review) in tests/e2e/test_bad_inputs.py.
"""

from __future__ import annotations

import pytest

from billing.models import LedgerEntry
from llm_gateway.apis.request_fields import (
    MAX_DEPTH,
    MAX_EMBEDDING_INPUTS,
    MAX_OUTPUT_TOKENS,
    model_check,
    request_fields_check,
    upstream_params,
)
from providers.exceptions import BadRequestError

MESSAGES = [{"role": "user", "content": "Hello"}]
VALID = {
    "chat": {"messages": MESSAGES},
    "text_completion": {"prompt": "Once upon a time"},
    "embedding": {"input": "Hello"},
    "image_generation": {"prompt": "A lighthouse"},
}
USER_MAX = LedgerEntry._meta.get_field("end_user").max_length


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def refusal(operation: str, body: dict) -> BadRequestError:
    with pytest.raises(BadRequestError) as raised:
        request_fields_check(operation, body)
    assert raised.value.status_code == 400
    return raised.value


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("chat", {"messages": MESSAGES, "n": 128, "max_tokens": MAX_OUTPUT_TOKENS, "stream": True}),
        ("chat", {"messages": MESSAGES, "stream_options": {"include_usage": True}, "user": "u" * USER_MAX}),
        ("chat", {"messages": MESSAGES, "temperature": 0.5, "top_p": 1, "tools": [], "metadata": {"a": 1}}),
        ("chat", {"messages": MESSAGES, "n": None, "max_tokens": None, "stream": None, "user": None}),
        (
            "chat",
            {
                "messages": [
                    {"role": "system", "content": None},
                    {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "input_audio"}]},
                    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
                ]
            },
        ),
        ("chat", {"messages": MESSAGES, "unknown": {"anything": [1, "two", None]}}),
        ("chat", {"messages": MESSAGES, "x": nested(MAX_DEPTH - 1)}),
        ("text_completion", {"prompt": ["a", "b"], "n": 2}),
        ("text_completion", {"prompt": [1, 2, 3]}),
        ("text_completion", {"prompt": [[1, 2], [3]]}),
        ("embedding", {"input": [[1, 2], [3]], "encoding_format": "base64"}),
        ("embedding", {"input": ["a"] * MAX_EMBEDDING_INPUTS}),
        ("embedding", {"input": [7] * 100_000}),  # one input: a long array of token ids
        ("image_generation", {"prompt": "x", "n": 10, "size": "1024x1024", "quality": "hd"}),
        ("chat", {"messages": MESSAGES, "mock_delay": 0.5, "mock_response": "hi", "timeout": 30}),
    ],
)
def test_it_accepts_valid_bodies(operation, body):
    request_fields_check(operation, body)


@pytest.mark.parametrize(
    ("operation", "body", "param", "code"),
    [
        ("chat", {"messages": "hello"}, "messages", "invalid_type"),
        ("chat", {"messages": ["hello"]}, "messages[0]", "invalid_type"),
        ("chat", {"messages": [1, 2]}, "messages[0]", "invalid_type"),
        ("chat", {"messages": {"role": "user"}}, "messages", "invalid_type"),
        ("chat", {"messages": []}, "messages", "empty_array"),
        ("chat", {}, "messages", "missing_required_parameter"),
        ("chat", {"messages": [{"content": "hi"}]}, "messages[0].role", "invalid_type"),
        ("chat", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        ("chat", {"messages": [{"role": "user", "content": [1]}]}, "messages[0].content[0]", "invalid_type"),
        (
            "chat",
            {"messages": [{"role": "user", "content": [{}]}]},
            "messages[0].content[0].type",
            "invalid_type",
        ),
        (
            "chat",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "messages[0].content[0].text",
            "invalid_type",
        ),
        (
            "chat",
            {"messages": [{"role": "assistant", "tool_calls": ["x"]}]},
            "messages[0].tool_calls[0]",
            "invalid_type",
        ),
        ("chat", {"messages": MESSAGES, "n": "abc"}, "n", "invalid_type"),
        ("chat", {"messages": MESSAGES, "n": [1]}, "n", "invalid_type"),
        ("chat", {"messages": MESSAGES, "n": True}, "n", "invalid_type"),
        ("chat", {"messages": MESSAGES, "n": 0}, "n", "integer_below_min_value"),
        ("chat", {"messages": MESSAGES, "n": 129}, "n", "integer_above_max_value"),
        ("chat", {"messages": MESSAGES, "max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        (
            "chat",
            {"messages": MESSAGES, "max_completion_tokens": MAX_OUTPUT_TOKENS + 1},
            "max_completion_tokens",
            "integer_above_max_value",
        ),
        ("chat", {"messages": MESSAGES, "max_tokens": 1.5}, "max_tokens", "invalid_type"),
        ("chat", {"messages": MESSAGES, "stream": "yes"}, "stream", "invalid_type"),
        ("chat", {"messages": MESSAGES, "stream_options": "x"}, "stream_options", "invalid_type"),
        (
            "chat",
            {"messages": MESSAGES, "stream_options": {"include_usage": "x"}},
            "stream_options.include_usage",
            "invalid_type",
        ),
        ("chat", {"messages": MESSAGES, "user": "a\x00b"}, "user", "invalid_value"),
        ("chat", {"messages": MESSAGES, "user": "a\nb"}, "user", "invalid_value"),
        ("chat", {"messages": MESSAGES, "user": "u" * (USER_MAX + 1)}, "user", "string_above_max_length"),
        ("chat", {"messages": MESSAGES, "user": 7}, "user", "invalid_type"),
        ("chat", {"messages": MESSAGES, "temperature": "hot"}, "temperature", "invalid_type"),
        ("chat", {"messages": MESSAGES, "top_p": False}, "top_p", "invalid_type"),
        ("chat", {"messages": MESSAGES, "tools": "x"}, "tools", "invalid_type"),
        ("chat", {"messages": MESSAGES, "tools": [1]}, "tools[0]", "invalid_type"),
        ("chat", {"messages": MESSAGES, "metadata": "x"}, "metadata", "invalid_type"),
        ("chat", {"messages": MESSAGES, "timeout": "x"}, "timeout", "invalid_type"),
        ("chat", {"messages": MESSAGES, "timeout": -1}, "timeout", "invalid_value"),
        ("chat", {"messages": MESSAGES, "mock_delay": "abc"}, "mock_delay", "invalid_type"),
        ("chat", {"messages": MESSAGES, "mock_delay": -1}, "mock_delay", "invalid_value"),
        ("chat", {"messages": MESSAGES, "mock_response": {"a": 1}}, "mock_response", "invalid_type"),
        ("chat", {"messages": MESSAGES, "x": nested(MAX_DEPTH)}, "body", "nested_too_deep"),
        ("chat", {"messages": MESSAGES, "x": nested(1000)}, "body", "nested_too_deep"),
        ("text_completion", {"prompt": {"a": 1}}, "prompt", "invalid_type"),
        ("text_completion", {"prompt": []}, "prompt", "empty_array"),
        ("text_completion", {"prompt": ["a", 1]}, "prompt", "invalid_type"),
        ("text_completion", {"prompt": [[1, "a"]]}, "prompt[0]", "invalid_type"),
        ("text_completion", {"prompt": "x", "n": 129}, "n", "integer_above_max_value"),
        ("embedding", {"input": {"a": 1}}, "input", "invalid_type"),
        ("embedding", {"input": [None]}, "input[0]", "invalid_type"),
        ("embedding", {"input": ["a"] * (MAX_EMBEDDING_INPUTS + 1)}, "input", "array_above_max_length"),
        ("embedding", {"input": [[1]] * (MAX_EMBEDDING_INPUTS + 1)}, "input", "array_above_max_length"),
        ("image_generation", {"prompt": "x", "n": 11}, "n", "integer_above_max_value"),
        ("image_generation", {"prompt": "x", "n": 10**9}, "n", "integer_above_max_value"),
        ("image_generation", {"prompt": ["x"]}, "prompt", "invalid_type"),
        ("image_generation", {"prompt": "x", "size": "1" * 1000}, "size", "string_above_max_length"),
        ("image_generation", {"prompt": "x", "quality": 1}, "quality", "invalid_type"),
    ],
)
def test_it_refuses_a_bad_field_with_a_400_naming_it(operation, body, param, code):
    error = refusal(operation, body)

    assert (error.param, error.code) == (param, code)
    assert error.to_openai_error()["error"]["type"] == "invalid_request_error"
    assert param.split("[")[0].split(".")[0] in error.message or param == "body"


def test_a_body_at_the_depth_limit_is_accepted_and_one_level_more_is_not():
    request_fields_check("chat", {"messages": MESSAGES, "x": nested(MAX_DEPTH - 1)})  # body + 63 levels

    assert refusal("chat", {"messages": MESSAGES, "x": nested(MAX_DEPTH)}).code == "nested_too_deep"


@pytest.mark.parametrize("model", [None, "", ["demo"], 5, "m" * 10_000])
def test_it_refuses_a_missing_or_malformed_model(model):
    with pytest.raises(BadRequestError) as raised:
        model_check(model)

    assert raised.value.param == "model"


def test_a_model_up_to_the_ledger_column_is_accepted():
    longest = "m" * LedgerEntry._meta.get_field("model_requested").max_length

    assert model_check(longest) == longest


def test_gateway_only_fields_are_not_sent_upstream():
    body = {
        "messages": MESSAGES,
        "user": "alice",
        "temperature": 0.2,
        "model": "group",
        "metadata": {"tags": ["a"]},
        "fallbacks": ["other"],
        "num_retries": 5,
        "cache": {"no-cache": True},
        "mock_response": "client",
        "mock_delay": 30,
        "api_base": "http://attacker.example",
        "unknown_provider_param": 1,
    }

    sent = upstream_params({"max_tokens": 100, "tags": ["deployment"]}, body)

    assert sent == {
        "messages": MESSAGES,
        "user": "alice",
        "temperature": 0.2,
        "max_tokens": 100,
        "unknown_provider_param": 1,
    }


def test_a_deployment_keeps_its_own_mock_options_and_chooses_whether_clients_may_set_them():
    client = {"messages": MESSAGES, "mock_response": "client", "mock_delay": 5}

    closed = upstream_params({"mock_response": "deployment"}, client)
    open_ = upstream_params({"mock_response": "deployment", "allow_client_mock": True}, client)

    assert closed == {"messages": MESSAGES, "mock_response": "deployment"}
    assert open_ == {"messages": MESSAGES, "mock_response": "client", "mock_delay": 5}
