"""Settings of the floor: nothing but a URL map."""

# Nothing signs or encrypts here; Django only insists on a value.
SECRET_KEY = "bench-floor-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.floor.urls"
DATABASES: dict[str, dict] = {}
USE_TZ = True
