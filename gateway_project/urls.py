"""The gateway's URL map."""

from django.contrib import admin
from django.urls import path

from llm_gateway.apis import health

urlpatterns = [
    path("", health.liveliness, name="health-root"),
    path("health/liveliness", health.liveliness, name="health-liveliness"),
    path("admin/", admin.site.urls),
]
