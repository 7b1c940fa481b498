"""ASGI entry point: `uvicorn gateway_project.asgi:application`.

Inference paths (/v1/chat/completions, ...) go to a handler without middleware; the admin, the
management API and everything else go through Django's full stack.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

import django

django.setup(set_prefix=False)

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

from llm_gateway.asgi_handlers import InferenceHandler, is_inference_path, lifespan  # noqa: E402
from llm_gateway.conf import gateway_setting  # noqa: E402

_django = ASGIHandler()
_inference = InferenceHandler()
_site = ASGIStaticFilesHandler(_django) if gateway_setting("SERVE_STATIC") else _django


async def application(scope, receive, send):
    """Route inference paths to the middleware-free handler, the rest to the full stack."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "http" and is_inference_path(scope["path"]):
        return await _inference(scope, receive, send)
    return await _site(scope, receive, send)
