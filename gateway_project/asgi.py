"""ASGI entry point: `uvicorn gateway_project.asgi:application`."""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from llm_gateway.conf import gateway_setting

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

application = get_asgi_application()

if gateway_setting("SERVE_STATIC"):
    application = ASGIStaticFilesHandler(application)
