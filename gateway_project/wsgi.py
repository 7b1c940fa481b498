"""WSGI entry point, for WSGI-only tooling; the gateway itself is served over ASGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

application = get_wsgi_application()
