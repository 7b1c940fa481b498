"""OpenAI chat request -> Anthropic Messages API request.

References: https://docs.anthropic.com/en/api/messages (request body),
https://docs.anthropic.com/en/docs/build-with-claude/tool-use (tools, tool_choice, tool_result),
https://docs.anthropic.com/en/docs/build-with-claude/vision (image sources),
https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching (cache_control on blocks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers.exceptions import BadRequestError
from providers.params import IGNORED, UNSUPPORTED, Param, ParamSpec, translate_params
from providers.registry import ProviderSpec
from providers.upstream import Operation, ResolvedDeployment, UpstreamRequest

API_VERSION = "2023-06-01"
# Anthropic requires max_tokens; OpenAI callers often leave it out.
DEFAULT_MAX_TOKENS = 4096
SYSTEM_ROLES = frozenset({"system", "developer"})


def _stop_sequences(stop: str | list[str]) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop)


def _user_metadata(user: str) -> dict[str, str]:
    return {"user_id": user}


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """Return an OpenAI function tool as an Anthropic tool; pass Anthropic-native tools through."""
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, Mapping):
        return dict(tool)  # e.g. {"type": "web_search_20250305", ...}: already Anthropic's shape
    converted: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        converted["description"] = function["description"]
    converted["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    if "cache_control" in tool:
        converted["cache_control"] = tool["cache_control"]
    return converted


def _tools(tools: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [_tool(tool) for tool in tools]


# OpenAI's tool_choice strings -> Anthropic's tool_choice objects.
# https://docs.anthropic.com/en/docs/build-with-claude/tool-use#forcing-tool-use
TOOL_CHOICES: dict[str, dict[str, str]] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}


def _tool_choice(choice: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return dict(TOOL_CHOICES[choice])
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"type": "tool", "name": choice["function"]["name"]}
    if isinstance(choice, Mapping) and choice.get("type") in ("auto", "any", "tool", "none"):
        return dict(choice)  # already Anthropic's shape
    raise BadRequestError(
        f"tool_choice {choice!r} is not one of 'auto', 'required', 'none' or "
        "{'type': 'function', 'function': {'name': ...}}.",
        provider="anthropic",
        param="tool_choice",
    )


# OpenAI parameter -> Messages API parameter. Anything not named here passes through untouched
# (top_k, thinking, metadata, service_tier, ...). https://docs.anthropic.com/en/api/messages
PARAMS: dict[str, ParamSpec] = {
    "messages": IGNORED,  # becomes "messages" and "system": see anthropic_messages()
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "temperature": "temperature",  # passed as is: Anthropic takes 0-1 where OpenAI takes 0-2
    "top_p": "top_p",
    "stop": Param("stop_sequences", _stop_sequences),
    "stream": "stream",
    "stream_options": IGNORED,  # Anthropic streams always report usage
    "user": Param("metadata", _user_metadata),
    "tools": Param("tools", _tools),
    "tool_choice": Param("tool_choice", _tool_choice),
    "parallel_tool_calls": IGNORED,  # folded into tool_choice: see _disable_parallel_tool_use()
    "n": UNSUPPORTED,  # n=1 is removed before the table applies: one message per request
    "presence_penalty": UNSUPPORTED,
    "frequency_penalty": UNSUPPORTED,
    "logit_bias": UNSUPPORTED,
    "logprobs": UNSUPPORTED,
    "top_logprobs": UNSUPPORTED,
    "seed": UNSUPPORTED,
    # Not mapped yet: json_object could become a forced tool or a prefill, json_schema the
    # structured-outputs beta; until then a caller gets an honest error instead of free text.
    "response_format": UNSUPPORTED,
}


def _parse_data_url(url: str, where: str) -> dict[str, str]:
    header, _, data = url.partition(",")
    media_type, _, encoding = header.removeprefix("data:").partition(";")
    if encoding != "base64" or not data:
        raise BadRequestError(
            f"{where}: image data URLs must be base64 ('data:image/png;base64,...').",
            provider="anthropic",
            param="messages",
        )
    return {"type": "base64", "media_type": media_type, "data": data}


def _image_block(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    image_url = part["image_url"]
    url = image_url if isinstance(image_url, str) else image_url["url"]
    source = _parse_data_url(url, where) if url.startswith("data:") else {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _content_block(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Return one OpenAI content part as an Anthropic block; Anthropic-native parts pass through."""
    if part.get("type") == "text":
        block: dict[str, Any] = {"type": "text", "text": part["text"]}
    elif part.get("type") == "image_url":
        block = _image_block(part, where)
    else:
        return dict(part)  # document, image, tool_result...: already Anthropic's shape
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _content(content: str | list[Mapping[str, Any]] | None, where: str) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return [_content_block(part, f"{where}.content[{index}]") for index, part in enumerate(content)]


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _tool_use(call: Mapping[str, Any], where: str) -> dict[str, Any]:
    function = call["function"]
    arguments = function.get("arguments") or "{}"
    try:
        arguments_json = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        arguments_json = None
    if not isinstance(arguments_json, dict):
        raise BadRequestError(
            f"{where}.function.arguments must be a JSON object, got {arguments!r}.",
            provider="anthropic",
            param="messages",
        )
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments_json}


def _assistant(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    content = _content(message.get("content"), where)
    tool_calls = message.get("tool_calls") or []
    if tool_calls:
        content = _as_blocks(content) + [
            _tool_use(call, f"{where}.tool_calls[{index}]") for index, call in enumerate(tool_calls)
        ]
    return {"role": "assistant", "content": content}


def _tool_result(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    result = {
        "type": "tool_result",
        "tool_use_id": message["tool_call_id"],
        "content": _content(message.get("content"), where),
    }
    return {"role": "user", "content": [result]}


def _system_blocks(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    blocks = _as_blocks(_content(message.get("content"), where))
    if any(block["type"] != "text" for block in blocks):
        raise BadRequestError(
            f"{where}: system messages take text only.", provider="anthropic", param="messages"
        )
    return blocks


def _system(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Return the system prompt: one string, or text blocks when one of them carries cache_control."""
    if any(set(block) != {"type", "text"} for block in blocks):
        return blocks
    return "\n\n".join(block["text"] for block in blocks)


def _merge(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the messages with consecutive same-role ones merged: Anthropic requires alternation."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            previous = merged[-1]
            previous["content"] = _as_blocks(previous["content"]) + _as_blocks(message["content"])
        else:
            merged.append(message)
    return merged


def _user(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"role": "user", "content": _content(message.get("content"), where)}


# OpenAI role -> its Anthropic message; system and developer messages go to the top-level system.
# https://docs.anthropic.com/en/api/messages#body-messages
ROLES = {"user": _user, "assistant": _assistant, "tool": _tool_result}


def anthropic_messages(messages: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    """Return OpenAI chat messages as Anthropic ``messages`` and the top-level ``system`` (or None)."""
    converted: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where, role = f"messages[{index}]", message.get("role")
        if role in SYSTEM_ROLES:
            system += _system_blocks(message, where)
        elif role in ROLES:
            converted.append(ROLES[role](message, where))
        else:
            raise BadRequestError(
                f"{where}: unsupported role {role!r}.", provider="anthropic", param="messages"
            )
    return _merge(converted), (_system(system) if system else None)


def _disable_parallel_tool_use(params: dict[str, Any], body: Mapping[str, Any]) -> None:
    """Fold OpenAI's ``parallel_tool_calls=False`` into Anthropic's ``tool_choice``."""
    if body.get("parallel_tool_calls") is not False or "tools" not in params:
        return
    tool_choice = params.get("tool_choice") or {"type": "auto"}
    if tool_choice["type"] != "none":
        params["tool_choice"] = {**tool_choice, "disable_parallel_tool_use": True}


def request_body(body: Mapping[str, Any], deployment: ResolvedDeployment) -> dict[str, Any]:
    """Return the JSON body of a Messages API request for an OpenAI chat request."""
    if body.get("n") == 1:
        body = {key: value for key, value in body.items() if key != "n"}
    try:
        params = translate_params(
            body, PARAMS, provider="anthropic", model=deployment.model, drop_params=deployment.drop_params
        )
        messages, system = anthropic_messages(body.get("messages") or [])
    except BadRequestError as error:
        error.model = error.model or deployment.model
        raise
    params.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    if body.get("user") and isinstance(body.get("metadata"), Mapping):
        params["metadata"] = {**body["metadata"], **_user_metadata(body["user"])}
    _disable_parallel_tool_use(params, body)
    payload: dict[str, Any] = {"model": deployment.model, "messages": messages}
    if system is not None:
        payload["system"] = system
    return {**payload, **params}


def messages_url(api_base: str) -> str:
    """Return the Messages API URL for an api_base given with or without its ``/v1``."""
    base = api_base.rstrip("/").removesuffix("/v1")
    return f"{base}/v1/messages"


def build_request(
    operation: Operation, body: Mapping[str, Any], deployment: ResolvedDeployment, spec: ProviderSpec
) -> UpstreamRequest:
    """Return the HTTP request for an OpenAI chat call to the Messages API."""
    if operation != "chat":
        raise BadRequestError(
            f"anthropic supports chat completions only, not {operation}.",
            provider=spec.name,
            model=deployment.model,
            code="unsupported_operation",
        )
    payload = request_body(body, deployment)
    headers = {"anthropic-version": deployment.api_version or API_VERSION, "content-type": "application/json"}
    if deployment.api_key:
        headers["x-api-key"] = deployment.api_key
    return UpstreamRequest(
        method="POST",
        url=messages_url(deployment.api_base or spec.api_base or ""),
        headers={**headers, **deployment.extra_headers},
        body=orjson.dumps(payload),
        stream=bool(payload.get("stream")),
    )
