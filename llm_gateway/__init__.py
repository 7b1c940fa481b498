"""The LLM Gateway: a Django app, and the provider library re-exported for plain Python use.

``from llm_gateway import completion`` works in any script: the library lives in ``providers`` and
needs no Django settings. Django loads this package as an app through ``llm_gateway.apps``.
"""

from providers.api import (
    acompletion,
    aembedding,
    aimage_generation,
    atext_completion,
    completion,
    embedding,
    image_generation,
    text_completion,
)
from providers.caching import disable_cache, enable_cache
from providers.chunks import stream_chunk_builder
from providers.price_table import model_info
from providers.pricing import completion_cost, cost_per_token
from providers.tokens import token_counter

__all__ = [
    "acompletion",
    "aembedding",
    "aimage_generation",
    "atext_completion",
    "completion",
    "completion_cost",
    "cost_per_token",
    "disable_cache",
    "embedding",
    "enable_cache",
    "image_generation",
    "model_info",
    "stream_chunk_builder",
    "text_completion",
    "token_counter",
]
