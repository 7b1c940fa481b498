"""The floor's one route: everything under an upstream port."""

from django.urls import path

from bench.floor import views

urlpatterns = [path("<int:port>/<path:rest>", views.forward)]
