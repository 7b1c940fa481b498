"""An ASGI handler for the inference paths: Django's own, with no middleware.

Sessions, CSRF, messages and authentication middleware cost more than half of a minimal pass-through's
throughput (DESIGN §3 rule 2) and do nothing for a bearer-key API; the admin keeps them all.
"""

from __future__ import annotations

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

from billing.ledger import ledger_writer_close
from providers import transport

# Paths served by InferenceHandler; everything else goes through the full Django stack.
INFERENCE_PREFIXES = (
    "/v1/chat/",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/images/",
    "/v1/models",
    "/chat/",
    "/completions",
    "/embeddings",
    "/images/",
    "/models",
    "/openai/deployments/",
    "/engines/",
)


def is_inference_path(path: str) -> bool:
    """Return True for the OpenAI-compatible paths."""
    return path.startswith(INFERENCE_PREFIXES)


class InferenceHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)


async def lifespan(receive, send) -> None:
    """Answer the ASGI lifespan protocol: on shutdown, flush the ledger and close the upstream pool."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await ledger_writer_close()  # flush the embedded writer's waiting records
            finally:
                await transport.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
