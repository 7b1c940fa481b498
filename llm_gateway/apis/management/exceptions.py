"""DRF's exception handler, rendering OpenAI's error shape (placeholder until the management API)."""

from rest_framework.views import exception_handler


def openai_exception_handler(exc, context):
    return exception_handler(exc, context)
