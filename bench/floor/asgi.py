"""The floor's ASGI application: Django's handler, plus the lifespan that closes the upstream session."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.floor.settings")

from django.core.asgi import get_asgi_application

from bench.floor.views import sessions_close

_django = get_asgi_application()


async def application(scope, receive, send):
    """Serve HTTP through Django; answer the lifespan protocol itself, as the gateway does."""
    if scope["type"] != "lifespan":
        return await _django(scope, receive, send)
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await sessions_close()
            await send({"type": "lifespan.shutdown.complete"})
            return
