"""Anthropic's Messages API, translated to and from OpenAI's chat format.

- ``messages``: the request (parameter table, messages, tools) -> ``POST {api_base}/v1/messages``;
- ``responses``: a message -> a ``chat.completion``, stream events -> ``chat.completion.chunk``s;
- ``errors``: Anthropic's error bodies and error events -> the library's exceptions;
- ``models``: ``GET {api_base}/v1/models`` -> OpenAI's model list.

Reference: https://docs.anthropic.com/en/api/messages
"""

from providers.adapters.anthropic.errors import map_error
from providers.adapters.anthropic.messages import PARAMS, build_request
from providers.adapters.anthropic.models import build_models_request, parse_models_response
from providers.adapters.anthropic.responses import parse_response, parse_stream_event

__all__ = [
    "PARAMS",
    "build_models_request",
    "build_request",
    "map_error",
    "parse_models_response",
    "parse_response",
    "parse_stream_event",
]
