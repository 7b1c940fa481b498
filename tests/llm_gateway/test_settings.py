"""Settings read from the environment, checked in a fresh interpreter as the server would read them."""

import json
import stat
import uuid

import pytest

PRINT_SETTINGS = """
import json
from django.conf import settings
database = settings.DATABASES["default"]
print(json.dumps({
    "engine": database["ENGINE"],
    "name": str(database["NAME"]),
    "host": database.get("HOST"),
    "port": database.get("PORT"),
    "options": database.get("OPTIONS", {}),
    "conn_max_age": database.get("CONN_MAX_AGE"),
    "cache": settings.CACHES["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "secret_key": settings.SECRET_KEY,
    "debug": settings.DEBUG,
}))
"""


def settings_read(run_python, **env: str) -> dict:
    result = run_python("-c", PRINT_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_it_uses_sqlite_in_the_var_dir_by_default(run_python, var_dir):
    settings = settings_read(run_python)

    assert settings["engine"] == "django.db.backends.sqlite3"
    assert settings["name"] == str(var_dir.resolve() / "gateway.sqlite3")
    assert settings["conn_max_age"] == 0
    assert settings["cache"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert settings["debug"] is False


def test_it_uses_postgres_with_a_connection_pool_when_database_url_says_so(run_python):
    settings = settings_read(run_python, DATABASE_URL="postgres://gateway:secret@db.internal:5433/gateway")

    assert settings["engine"] == "django.db.backends.postgresql"
    assert (settings["host"], settings["port"], settings["name"]) == ("db.internal", 5433, "gateway")
    assert settings["options"] == {"pool": True}
    assert settings["conn_max_age"] == 0


def test_it_turns_the_postgres_pool_off_on_request(run_python):
    settings = settings_read(run_python, DATABASE_URL="postgres://db.internal/gateway", DATABASE_POOL="false")

    assert settings["options"] == {"pool": False}


def test_it_rejects_an_unsupported_database_without_echoing_the_url(run_python):
    result = run_python("-c", PRINT_SETTINGS, env={"DATABASE_URL": "mysql://gateway:hunter2@db/gateway"})

    assert result.returncode != 0
    assert "DATABASE_URL scheme 'mysql' is not supported" in result.stderr
    assert "hunter2" not in result.stderr


def test_it_rejects_a_database_url_it_cannot_parse(run_python):
    result = run_python("-c", PRINT_SETTINGS, env={"DATABASE_URL": "nosuchdb://gateway:hunter2@db/gateway"})

    assert result.returncode != 0
    assert "DATABASE_URL is not a usable database URL" in result.stderr
    assert "hunter2" not in result.stderr


def test_it_rejects_a_yes_no_variable_that_is_neither(run_python):
    result = run_python("-c", PRINT_SETTINGS, env={"DJANGO_DEBUG": "maybe"})

    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a yes/no value" in result.stderr


def test_it_caches_in_redis_when_redis_url_is_set(run_python):
    settings = settings_read(run_python, REDIS_URL="redis://127.0.0.1:6379/15")

    assert settings["cache"] == "django_redis.cache.RedisCache"


@pytest.mark.redis
def test_the_redis_cache_round_trips_a_value(run_python, redis_url):
    key = f"settings-test-{uuid.uuid4().hex}"
    code = (
        "import django; django.setup()\n"
        "from django.core.cache import cache\n"
        f"cache.set({key!r}, 'stored in redis', 30)\n"
        f"print(cache.get({key!r})); cache.delete({key!r})\n"
    )

    result = run_python("-c", code, env={"REDIS_URL": redis_url})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stored in redis"


def test_it_generates_the_secret_key_once_and_keeps_it_private(run_python, var_dir):
    first = settings_read(run_python)["secret_key"]
    second = settings_read(run_python)["secret_key"]

    key_file = var_dir / "secret_key"
    assert first == second == key_file.read_text().strip()
    assert len(first) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_it_uses_the_secret_key_from_the_environment(run_python, var_dir):
    settings = settings_read(run_python, DJANGO_SECRET_KEY="k" * 20 + "from-the-environment" * 3)

    assert settings["secret_key"] == "k" * 20 + "from-the-environment" * 3
    assert not (var_dir / "secret_key").exists()


def test_it_defaults_to_the_serverless_filesystem_broker(run_python, var_dir):
    settings = settings_read(run_python)

    assert settings["broker"] == "filesystem://"
    for folder in ("queue", "processed", "control"):
        assert (var_dir / "celery" / folder).is_dir()
