"""The OpenAI-compatible API, under /v1 and without it (as OpenAI and LiteLLM both serve it)."""

from django.urls import include, path

from llm_gateway.apis import health, inference

_OPENAI_ROUTES = [
    ("chat/completions", inference.chat_completions, "chat-completions"),
    ("completions", inference.completions, "completions"),
    ("embeddings", inference.embeddings, "embeddings"),
    ("images/generations", inference.image_generations, "image-generations"),
    ("models", inference.models_list, "models"),
    ("models/<path:model>", inference.model_retrieve, "model"),
]

urlpatterns = [
    path("", health.liveliness, name="health-root"),
    path("health/liveliness", health.liveliness, name="health-liveliness"),
    path("health/readiness", health.readiness, name="health-readiness"),
    path("health", health.deployments_health, name="health"),
    path("ollama_logs", health.ollama_logs, name="ollama-logs"),
    *(path(f"v1/{route}", view, name=f"v1-{name}") for route, view, name in _OPENAI_ROUTES),
    *(path(route, view, name=name) for route, view, name in _OPENAI_ROUTES),
    path(
        "openai/deployments/<path:model>/chat/completions",
        inference.azure_chat_completions,
        name="azure-chat-completions",
    ),
    path(
        "openai/deployments/<path:model>/completions", inference.azure_completions, name="azure-completions"
    ),
    path("openai/deployments/<path:model>/embeddings", inference.azure_embeddings, name="azure-embeddings"),
    path("", include("llm_gateway.apis.management.urls")),
]
