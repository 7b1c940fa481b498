"""The request fields the gateway reads, checked before anything is admitted or allocated.

Admission, pricing, the router, the cache key and the adapters read these fields; a wrong type or an
out-of-range value there is the client's mistake, answered with a 400 in OpenAI's shape naming the
field (``param``), never a 500 from deep inside the request path. Ranges follow OpenAI's: ``n`` 1-128
for chat and completions, 1-10 for images. Fields the gateway does not read pass through untouched
(docs/architecture.md: unknown request fields are forwarded), but the whole body is at most
``MAX_DEPTH`` levels deep: orjson, which serialises every body sent upstream, stops at 255 levels
and Python's own recursion limit is not much further.

The checks are type checks on the top-level fields plus one pass over ``messages`` (their roles,
contents and parts); texts are never scanned beyond the ``user`` field's control characters.

Gateway-only fields (the router's, the cache's, LiteLLM's proxy-only parameters) are read here and
never sent upstream: ``upstream_params`` drops them from the body of each attempt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from billing.models import LedgerEntry
from providers.engine import MOCK_OPTIONS
from providers.exceptions import BadRequestError

MAX_DEPTH = 64  # levels of objects and arrays in a body, the body itself counted
# The ledger stores the model asked for and the end user: longer values could not be recorded.
MAX_MODEL_LENGTH = LedgerEntry._meta.get_field("model_requested").max_length
MAX_USER_LENGTH = LedgerEntry._meta.get_field("end_user").max_length
# Ten times the largest output limit of today's models: a hold is priced on max_tokens x n.
MAX_OUTPUT_TOKENS = 1_000_000
MAX_SHORT_STRING = 256  # size, quality, style, encoding_format, reasoning_effort, ...
MAX_EMBEDDING_INPUTS = 2048  # OpenAI's limit on the texts (or token arrays) of one embeddings call
N_RANGES: dict[str, tuple[int, int]] = {
    "chat": (1, 128),
    "text_completion": (1, 128),
    "embedding": (1, 128),
    "image_generation": (1, 10),
}
# The field each operation cannot do without, besides the model.
REQUIRED_FIELD: dict[str, str] = {
    "chat": "messages",
    "text_completion": "prompt",
    "embedding": "input",
    "image_generation": "prompt",
}

# Read by the gateway (router, cache, limits) or by LiteLLM's proxy and SDK only: never a provider's
# parameter. The mock provider's own options are among them; a deployment's ``allow_client_mock``
# lets clients set those (the deployment's own defaults always apply).
CLIENT_MOCK_SETTING = "allow_client_mock"
GATEWAY_ONLY_FIELDS = frozenset(
    {
        "model",  # the group asked for; each adapter names the upstream model itself
        "metadata",
        "litellm_metadata",
        "tags",
        "cache",
        "caching",
        "fallbacks",
        "context_window_fallback_dict",
        "content_policy_fallbacks",
        "disable_fallbacks",
        "num_retries",
        "max_retries",
        "retry_policy",
        "guardrails",
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "timeout",
        "request_timeout",
        "stream_timeout",
        "mock_testing_fallbacks",
        "mock_testing_rate_limit_error",
        "litellm_trace_id",
        "litellm_session_id",
        "no-log",
        CLIENT_MOCK_SETTING,
    }
    | MOCK_OPTIONS
)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _invalid(param: str, message: str, code: str = "invalid_value") -> BadRequestError:
    return BadRequestError(message, param=param, code=code)


def _wrong_type(param: str, expected: str, value: Any) -> BadRequestError:
    got = _TYPE_NAMES.get(type(value), type(value).__name__)
    return _invalid(
        param, f"Invalid type for '{param}': expected {expected}, but got {got} instead.", "invalid_type"
    )


def _integer(param: str, value: Any, low: int, high: int) -> None:
    if type(value) is not int:
        raise _wrong_type(param, "an integer", value)
    if value < low:
        raise _invalid(
            param, f"Invalid '{param}': integer below minimum value {low}.", "integer_below_min_value"
        )
    if value > high:
        raise _invalid(
            param, f"Invalid '{param}': integer above maximum value {high}.", "integer_above_max_value"
        )


def _number(param: str, value: Any) -> None:
    kind = type(value)
    if kind is not int and kind is not float:
        raise _wrong_type(param, "a number", value)
    if kind is float and not math.isfinite(value):
        raise _invalid(param, f"Invalid '{param}': expected a finite number.")


def _string(param: str, value: Any, max_length: int) -> None:
    if type(value) is not str:
        raise _wrong_type(param, "a string", value)
    if len(value) > max_length:
        raise _invalid(
            param,
            f"Invalid '{param}': string too long. Expected a string with maximum length {max_length}, "
            f"but got a string with length {len(value)} instead.",
            "string_above_max_length",
        )


def _check_n(operation: str) -> Callable[[str, Any], None]:
    low, high = N_RANGES[operation]
    return lambda param, value: _integer(param, value, low, high)


def _check_output_tokens(param: str, value: Any) -> None:
    _integer(param, value, 1, MAX_OUTPUT_TOKENS)


def _check_short_string(param: str, value: Any) -> None:
    _string(param, value, MAX_SHORT_STRING)


def _check_bool(param: str, value: Any) -> None:
    if type(value) is not bool:
        raise _wrong_type(param, "a boolean", value)


def _check_object(param: str, value: Any) -> None:
    if type(value) is not dict:
        raise _wrong_type(param, "an object", value)


def _check_string_or_object(param: str, value: Any) -> None:
    if type(value) is not str and type(value) is not dict:
        raise _wrong_type(param, "a string or an object", value)


def _check_objects(param: str, value: Any) -> None:
    if type(value) is not list:
        raise _wrong_type(param, "an array of objects", value)
    for index, item in enumerate(value):
        if type(item) is not dict:
            raise _wrong_type(f"{param}[{index}]", "an object", item)


def _check_stop(param: str, value: Any) -> None:
    if type(value) is str:
        return
    if type(value) is not list or not all(type(item) is str for item in value):
        raise _wrong_type(param, "a string or an array of strings", value)


def _check_stream_options(param: str, value: Any) -> None:
    _check_object(param, value)
    if value.get("include_usage") is not None:
        _check_bool(f"{param}.include_usage", value["include_usage"])


def _check_user(param: str, value: Any) -> None:
    _string(param, value, MAX_USER_LENGTH)
    if _CONTROL_CHARACTERS.search(value):
        raise _invalid(param, f"Invalid '{param}': control characters (such as NUL) are not allowed.")


def _check_mock_delay(param: str, value: Any) -> None:
    _number(param, value)
    if value < 0:
        raise _invalid(param, f"Invalid '{param}': expected a number of seconds, 0 or more.")


def _check_mock_response(param: str, value: Any) -> None:
    if type(value) is not str:
        raise _wrong_type(param, "a string", value)


def _check_timeout(param: str, value: Any) -> None:
    _number(param, value)
    if value <= 0:
        raise _invalid(param, f"Invalid '{param}': expected a positive number of seconds.")


def _text_or_tokens(param: str, value: Any, *, empty_message: str) -> None:
    """Check a prompt or an input: a string, or an array of strings, of token ids, or of such arrays."""
    if type(value) is str:
        return
    if type(value) is not list:
        raise _wrong_type(param, "a string or an array", value)
    if not value:
        raise _invalid(param, empty_message, "empty_array")
    first = type(value[0])
    if first is str or first is int:
        if not all(type(item) is first for item in value):
            raise _wrong_type(param, "an array of strings or an array of integers", value)
        return
    for index, item in enumerate(value):
        if type(item) is not list or not all(type(token) is int for token in item):
            raise _wrong_type(f"{param}[{index}]", "an array of integers", item)


def _check_prompt(param: str, value: Any) -> None:
    _text_or_tokens(param, value, empty_message=f"Invalid '{param}': empty array.")


def _check_image_prompt(param: str, value: Any) -> None:
    if type(value) is not str:
        raise _wrong_type(param, "a string", value)


def _content(param: str, content: Any) -> None:
    if content is None or type(content) is str:
        return
    if type(content) is not list:
        raise _wrong_type(param, "a string, null or an array of content parts", content)
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        if type(part) is not dict:
            raise _wrong_type(where, "an object", part)
        kind = part.get("type")
        if type(kind) is not str:
            raise _wrong_type(f"{where}.type", "a string", kind)
        if kind == "text" and type(part.get("text")) is not str:
            raise _wrong_type(f"{where}.text", "a string", part.get("text"))
        if kind == "image_url" and type(part.get("image_url")) not in (dict, str):
            raise _wrong_type(f"{where}.image_url", "an object", part.get("image_url"))


def _tool_calls(param: str, calls: Any) -> None:
    _check_objects(param, calls)
    for index, call in enumerate(calls):
        function = call.get("function")
        if function is None:
            continue
        where = f"{param}[{index}].function"
        if type(function) is not dict:
            raise _wrong_type(where, "an object", function)
        for name in ("name", "arguments"):
            if function.get(name) is not None and type(function[name]) is not str:
                raise _wrong_type(f"{where}.{name}", "a string", function[name])


def _check_messages(param: str, messages: Any) -> None:
    if type(messages) is not list:
        raise _wrong_type(param, "an array of message objects", messages)
    if not messages:
        raise _invalid(
            param, f"Invalid '{param}': empty array. Expected an array with minimum length 1.", "empty_array"
        )
    for index, message in enumerate(messages):
        if type(message) is not dict:
            raise _wrong_type(f"{param}[{index}]", "an object", message)
        role = message.get("role")
        if type(role) is not str:
            raise _wrong_type(f"{param}[{index}].role", "a string", role)
        content = message.get("content")
        if content is not None and type(content) is not str:
            _content(f"{param}[{index}].content", content)
        name = message.get("name")
        if name is not None and type(name) is not str:
            raise _wrong_type(f"{param}[{index}].name", "a string", name)
        if message.get("tool_calls") is not None:
            _tool_calls(f"{param}[{index}].tool_calls", message["tool_calls"])


def _check_input(param: str, value: Any) -> None:
    _text_or_tokens(param, value, empty_message=f"Invalid '{param}': empty array.")
    if type(value) is list and type(value[0]) is not int and len(value) > MAX_EMBEDDING_INPUTS:
        raise _invalid(
            param,
            f"Invalid '{param}': array too long. Expected at most {MAX_EMBEDDING_INPUTS} inputs, "
            f"but got {len(value)} instead.",
            "array_above_max_length",
        )


_COMMON: dict[str, Callable[[str, Any], None]] = {
    "stream": _check_bool,
    "stream_options": _check_stream_options,
    "user": _check_user,
    "metadata": _check_object,
    "timeout": _check_timeout,
    "mock_delay": _check_mock_delay,
    "mock_response": _check_mock_response,
    "mock_timeout": _check_bool,
}
_GENERATION: dict[str, Callable[[str, Any], None]] = {
    "max_tokens": _check_output_tokens,
    "max_completion_tokens": _check_output_tokens,
    "temperature": _number,
    "top_p": _number,
    "presence_penalty": _number,
    "frequency_penalty": _number,
    "stop": _check_stop,
    "logit_bias": _check_object,
}
# Operation -> field -> check. A field absent or null is not checked (null means the default).
CHECKS: dict[str, dict[str, Callable[[str, Any], None]]] = {
    "chat": {
        **_COMMON,
        **_GENERATION,
        "n": _check_n("chat"),
        "messages": _check_messages,
        "tools": _check_objects,
        "functions": _check_objects,
        "tool_choice": _check_string_or_object,
        "function_call": _check_string_or_object,
        "parallel_tool_calls": _check_bool,
        "response_format": _check_object,
        "top_logprobs": lambda param, value: _integer(param, value, 0, 20),
        "reasoning_effort": _check_short_string,
    },
    "text_completion": {
        **_COMMON,
        **_GENERATION,
        "n": _check_n("text_completion"),
        "best_of": _check_n("text_completion"),
        "prompt": _check_prompt,
    },
    "embedding": {
        **_COMMON,
        "input": _check_input,
        "n": _check_n("embedding"),
        "encoding_format": _check_short_string,
        "dimensions": lambda param, value: _integer(param, value, 1, 1_000_000),
    },
    "image_generation": {
        **_COMMON,
        "prompt": _check_image_prompt,
        "n": _check_n("image_generation"),
        "size": _check_short_string,
        "quality": _check_short_string,
        "style": _check_short_string,
        "response_format": _check_short_string,
        "background": _check_short_string,
        "output_format": _check_short_string,
        "moderation": _check_short_string,
    },
}


def _depth_within(body: dict[str, Any], limit: int) -> bool:
    """Return True when ``body`` nests at most ``limit`` levels of objects and arrays (itself included).

    One level at a time, containers only: a long text or a token array costs a type check per item,
    no more, and no recursion.
    """
    level: list[Any] = [body]
    for _ in range(limit):
        level = [
            value
            for container in level
            for value in (container.values() if type(container) is dict else container)
            if type(value) is dict or type(value) is list
        ]
        if not level:
            return True
    return False


def model_check(model: Any) -> str:
    """Return the model a request names; raise ``BadRequestError`` when it is missing or malformed."""
    if model is None or model == "":
        raise _invalid("model", "Missing required parameter: 'model'.", "missing_required_parameter")
    _string("model", model, MAX_MODEL_LENGTH)
    return model


def request_fields_check(operation: str, body: dict[str, Any]) -> None:
    """Check every field of ``body`` the gateway reads; raise ``BadRequestError`` naming the first bad one."""
    if not _depth_within(body, MAX_DEPTH):
        raise _invalid(
            "body", f"The request body is nested more than {MAX_DEPTH} levels deep.", "nested_too_deep"
        )
    required = REQUIRED_FIELD[operation]
    if body.get(required) in (None, ""):
        raise _invalid(required, f"Missing required parameter: '{required}'.", "missing_required_parameter")
    checks = CHECKS[operation]
    for field, value in body.items():
        check = checks.get(field)
        if check is not None and value is not None:
            check(field, value)


def upstream_params(defaults: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Return the parameters of one attempt: the deployment's defaults under the client's fields.

    Gateway-only fields never leave; the mock provider's options come from the deployment, and from
    the client only where the deployment sets ``allow_client_mock``.
    """
    params = {
        name: value
        for name, value in defaults.items()
        if name not in GATEWAY_ONLY_FIELDS or name in MOCK_OPTIONS
    }
    client_mock = bool(defaults.get(CLIENT_MOCK_SETTING))
    for name, value in body.items():
        if name not in GATEWAY_ONLY_FIELDS or (client_mock and name in MOCK_OPTIONS):
            params[name] = value
    return params
