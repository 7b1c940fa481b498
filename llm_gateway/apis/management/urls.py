"""Routes of the management API (filled in by its resource modules)."""

urlpatterns: list = []
