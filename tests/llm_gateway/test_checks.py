"""`manage.py check` and the gateway's own system checks."""


def test_check_passes_on_a_fresh_embedded_install(run_python):
    result = run_python("manage.py", "check")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_warns_when_a_shared_database_meets_a_generated_secret_key(run_python):
    result = run_python("manage.py", "check", env={"DATABASE_URL": "postgres://db.internal/gateway"})

    assert result.returncode == 0, result.stderr
    assert "llm_gateway.W001" in result.stderr


def test_it_accepts_a_shared_database_with_a_configured_secret_key(run_python):
    env = {"DATABASE_URL": "postgres://db.internal/gateway", "DJANGO_SECRET_KEY": "s" * 60}

    result = run_python("manage.py", "check", env=env)

    assert result.returncode == 0, result.stderr
    assert "llm_gateway.W001" not in result.stderr


def test_it_rejects_a_redis_url_that_is_not_redis(run_python):
    result = run_python("manage.py", "check", env={"REDIS_URL": "http://127.0.0.1:6379"})

    assert result.returncode != 0
    assert "llm_gateway.E001" in result.stderr


def test_it_rejects_an_unknown_celery_transport(run_python):
    result = run_python(
        "manage.py", "check", env={"CELERY_BROKER_URL": "redis://127.0.0.1;rabbit://127.0.0.1"}
    )

    assert result.returncode != 0
    assert "llm_gateway.E002" in result.stderr
    assert "'rabbit'" in result.stderr
