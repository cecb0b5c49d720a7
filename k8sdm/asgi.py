"""ASGI entry point: the event stream (`/api/v1/events`, Server-Sent Events) and, for anything
else, the same Django application as k8sdm.wsgi.

Run it with uvicorn (`uvicorn k8sdm.asgi:application`, or uvicorn workers under gunicorn) beside
the WSGI api, and route `/api/v1/events` to it; it can also serve the whole API.
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "k8sdm.settings")

django_application = get_asgi_application()

from events_app.sse import PATH as EVENTS_PATH  # noqa: E402 - needs the settings configured above
from events_app.sse import EventStreamApp  # noqa: E402

events_application = EventStreamApp()


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"].rstrip("/") == EVENTS_PATH:
        return await events_application(scope, receive, send)
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if events_application.hub is not None:
                    await events_application.hub.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    return await django_application(scope, receive, send)
