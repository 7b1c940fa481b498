"""The llm_gateway Django app: teams, keys, deployments, routing and the OpenAI-compatible API."""

from django.apps import AppConfig


class LlmGatewayConfig(AppConfig):
    name = "llm_gateway"
    verbose_name = "LLM Gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module registers its system checks.
        from llm_gateway import checks, signals  # noqa: F401 - checks registers itself on import

        signals.connect()
