"""Django settings for the LLM gateway.

This module is the one place that reads the environment. With no variables set the gateway runs
embedded: SQLite, an in-process cache, a Celery broker on the filesystem and generated secrets, all
under the runtime directory `var/`. Production sets DATABASE_URL, REDIS_URL, CELERY_BROKER_URL and
DJANGO_SECRET_KEY; README.md lists every variable.
"""

import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    """Return the variable `name`, or `default` when it is unset or empty."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    """Return the variable `name` read as a yes/no word (1/0, true/false, yes/no, on/off)."""
    value = env_str(name).lower()
    if not value:
        return default
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a yes/no value; use 1/0, true/false, yes/no or on/off."
    )


def env_int(name: str, default: int) -> int:
    """Return the variable `name` read as an integer."""
    value = env_str(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_float(name: str, default: float) -> float:
    """Return the variable `name` read as a number."""
    value = env_str(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    """Return the variable `name` read as a comma-separated list, blanks dropped."""
    value = env_str(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def secret_key_load(path: Path) -> str:
    """Return the secret key stored at `path`, generating and storing it on first use."""
    if not path.exists():
        # Write a private temporary file, then link it into place: the link fails if another
        # process got there first, and every process ends up reading the same key.
        staging_path = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(staging_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as staging_file:
            staging_file.write(secrets.token_urlsafe(50))
        try:
            os.link(staging_path, path)
        except FileExistsError:
            pass
        finally:
            staging_path.unlink()
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty; delete it to generate a new secret key.")
    return key


def database_config(url: str) -> dict:
    """Return the Django DATABASES entry for a sqlite:// or postgres:// URL."""
    try:
        config = dj_database_url.parse(url, conn_max_age=0)
    except ValueError as error:
        # The URL may hold a password: name the problem, never echo the URL.
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a usable database URL: {error} "
            "Use sqlite:///absolute/path/gateway.sqlite3 or postgres://user:password@host:5432/name."
        ) from None
    if config["ENGINE"] not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
        # Checked here rather than in a system check: Django imports the backend (and fails on its
        # missing driver) while loading models, before any check runs.
        scheme = url.partition(":")[0]
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {scheme!r} is not supported; the gateway runs on SQLite "
            "(sqlite:///absolute/path/gateway.sqlite3) or PostgreSQL (postgres://user:password@host:5432/name)."
        )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {
            # Take the write lock when a transaction starts, so concurrent writers wait for
            # `timeout` seconds instead of failing with "database is locked" mid-transaction.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # psycopg 3's pool (Django 5.1+); Django requires CONN_MAX_AGE = 0 with it.
        config.setdefault("OPTIONS", {})["pool"] = env_bool("DATABASE_POOL", True)
    return config


VAR_DIR = Path(env_str("GATEWAY_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
_secret_key_file = None if SECRET_KEY else VAR_DIR / "secret_key"
if _secret_key_file is not None:
    SECRET_KEY = secret_key_load(_secret_key_file)

DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# Browser security, always: session cookies out of reach of scripts and expiring after a working day,
# no framing (clickjacking), no content sniffing.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_COOKIE_AGE", 12 * 3600)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Production behind a proxy that terminates TLS (GATEWAY_TLS=true, DJANGO_DEBUG off): cookies only
# over HTTPS, HSTS, the proxy's X-Forwarded-Proto trusted (the proxy must set it, overwriting any
# client's), plain HTTP redirected except the health checks a load balancer makes.
GATEWAY_TLS = env_bool("GATEWAY_TLS", False) and not DEBUG
if GATEWAY_TLS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
    # What the operator chose to leave off is no warning of `check --deploy`: HSTS for other
    # subdomains and the browsers' preload list are commitments beyond this service.
    SILENCED_SYSTEM_CHECKS = [
        check_id
        for check_id, chosen in (
            ("security.W004", SECURE_HSTS_SECONDS > 0),
            ("security.W005", SECURE_HSTS_INCLUDE_SUBDOMAINS),
            ("security.W008", SECURE_SSL_REDIRECT),
            ("security.W021", SECURE_HSTS_PRELOAD),
        )
        if not chosen
    ]

_default_database_url = f"sqlite:///{quote(str(VAR_DIR / 'gateway.sqlite3'))}"
DATABASES = {"default": database_config(env_str("DATABASE_URL", _default_database_url))}
_embedded = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"

_redis_url = env_str("REDIS_URL")
# Every Redis key the gateway writes starts with this and a colon, so gateways (and test runs) can
# share one Redis database and each can find, or delete, exactly its own keys.
_redis_prefix = env_str("GATEWAY_REDIS_PREFIX", "llm_gateway")
if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", _redis_prefix):
    raise ImproperlyConfigured(
        f"GATEWAY_REDIS_PREFIX={_redis_prefix!r} must be 1 to 64 letters, digits, '_', '.', ':' or '-'."
    )
if _redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": _redis_url,
            "KEY_PREFIX": _redis_prefix,
        }
    }
else:
    # A file cache, not LocMemCache: `manage.py` commands and the server are separate processes on
    # one machine, and the server must see their writes (the configuration generation counter).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

INSTALLED_APPS = [
    "unfold",  # the admin's theme: must come before django.contrib.admin
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets served locally: no CDN needed (or reachable)
    "llm_gateway",
    "billing",
    "django_celery_beat",  # the periodic schedule lives in the database, editable in the admin
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Messages live in the session, not in a cookie: the admin shows a new key's secret in one.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "gateway_project.urls"
WSGI_APPLICATION = "gateway_project.wsgi.application"
ASGI_APPLICATION = "gateway_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Django's password check, refused for an address with too many recent failures (llm_gateway.login_throttle).
AUTHENTICATION_BACKENDS = ["llm_gateway.login_throttle.ThrottledModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if not CELERY_BROKER_URL:
    # kombu's filesystem transport: a broker with no server, for one machine. Producers and
    # workers share one queue folder; `control` holds the exchange bindings.
    CELERY_BROKER_URL = "filesystem://"
    _celery_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_celery_dir / _folder).mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://", "sentinel://")):
    # kombu puts this before each of its keys (queues, bindings): the gateway's prefix holds them too.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{_redis_prefix}:celery:"}
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
if CELERY_RESULT_BACKEND and CELERY_RESULT_BACKEND.startswith(("redis://", "rediss://", "redis+socket://")):
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"{_redis_prefix}:celery:"}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "llm-gateway@localhost")


def config_master_key(path: str) -> str:
    """Return general_settings.master_key of the LiteLLM config file at `path` ("" when it has none).

    Every process reads it here, so `manage.py start`, `serve` and any ASGI server agree on it;
    `os.environ/NAME` is read from the environment, as LiteLLM does.
    """
    if not path:
        return ""
    import yaml  # only needed when GATEWAY_CONFIG is set

    try:
        with open(path, encoding="utf-8") as config_file:
            config = yaml.safe_load(config_file)
    except OSError as error:
        raise ImproperlyConfigured(f"GATEWAY_CONFIG={path!r} cannot be read: {error.strerror}.") from None
    except yaml.YAMLError as error:
        raise ImproperlyConfigured(f"GATEWAY_CONFIG={path!r} is not valid YAML: {error}") from None
    general = config.get("general_settings") if isinstance(config, dict) else None
    master_key = general.get("master_key") if isinstance(general, dict) else None
    if master_key is None:
        return ""
    if not isinstance(master_key, str) or not master_key.strip():
        raise ImproperlyConfigured(f"general_settings.master_key in {path} must be a non-empty string.")
    if master_key.startswith("os.environ/"):
        name = master_key.removeprefix("os.environ/")
        master_key = env_str(name)
        if not master_key:
            raise ImproperlyConfigured(
                f"general_settings.master_key in {path} is os.environ/{name}, and {name} is not set."
            )
    return master_key.strip()


# Gateway knobs, read through llm_gateway.conf.gateway_setting().
GATEWAY = {
    # Bearer token with every management right; empty turns master-key access off.
    "MASTER_KEY": env_str("GATEWAY_MASTER_KEY") or config_master_key(env_str("GATEWAY_CONFIG")),
    # Runtime files: SQLite database, generated secret key, admin password, Celery queue.
    "VAR_DIR": VAR_DIR,
    # Where the generated secret key lives, or None when DJANGO_SECRET_KEY is set.
    "SECRET_KEY_FILE": _secret_key_file,
    # Port `manage.py start` listens on unless --port says otherwise.
    "PORT": env_int("PORT", 8000),
    # The HTTP server (`manage.py serve` and `start`; their options override these): seconds an idle
    # kept-alive connection stays open, seconds a request's head and then its body may take to arrive
    # (a stalled one gets a 408; 0 waits forever), and connections per worker past which requests get
    # a 503 (0: no limit).
    "KEEP_ALIVE_SECONDS": env_float("GATEWAY_KEEP_ALIVE_SECONDS", 5.0),
    "REQUEST_READ_TIMEOUT_SECONDS": env_float("GATEWAY_REQUEST_READ_TIMEOUT_SECONDS", 30.0),
    "MAX_CONNECTIONS": env_int("GATEWAY_MAX_CONNECTIONS", 1000),
    # Serve /static/ from the ASGI app (the admin's CSS under uvicorn). Production puts a web
    # server or CDN in front of `collectstatic` output instead.
    "SERVE_STATIC": env_bool("GATEWAY_SERVE_STATIC", _embedded),
    # Redis for shared counters and queues; empty in the embedded mode.
    "REDIS_URL": _redis_url,
    # The first part of every Redis key the gateway writes (cache, limiter, ledger stream, cooldowns).
    "REDIS_PREFIX": _redis_prefix,
    # Fernet key for provider credentials at rest (Fernet.generate_key()); empty derives one from
    # the secret key, so changing DJANGO_SECRET_KEY then makes stored credentials unreadable.
    "ENCRYPTION_KEY": env_str("GATEWAY_ENCRYPTION_KEY"),
    # LiteLLM config.yaml imported at every start, when set.
    "CONFIG_PATH": env_str("GATEWAY_CONFIG"),
    # How long another instance may keep serving a changed key, team or deployment from its
    # in-process cache (seconds): each instance checks a shared generation counter this often.
    "CONFIG_REFRESH_SECONDS": float(env_str("GATEWAY_CONFIG_REFRESH_SECONDS", "2")),
    # Budget alerts: a JSON POST per alert to this URL, and an email to these addresses (EMAIL_*).
    "ALERT_WEBHOOK_URL": env_str("GATEWAY_ALERT_WEBHOOK_URL"),
    "ALERT_EMAILS": env_list("GATEWAY_ALERT_EMAILS", []),
    # Days of ledger rows kept (rollups are kept forever); 0 keeps every row.
    "LEDGER_RETENTION_DAYS": env_int("GATEWAY_LEDGER_RETENTION_DAYS", 90),
    # Deployment health checks (a Celery task, every 5 minutes by default): seconds one probe may
    # take (a deployment's own shorter timeout wins), probes in flight at once, days of history kept.
    "HEALTH_CHECK_TIMEOUT_SECONDS": env_float("GATEWAY_HEALTH_CHECK_TIMEOUT_SECONDS", 30.0),
    "HEALTH_CHECK_CONCURRENCY": env_int("GATEWAY_HEALTH_CHECK_CONCURRENCY", 10),
    "HEALTH_CHECK_RETENTION_DAYS": env_int("GATEWAY_HEALTH_CHECK_RETENTION_DAYS", 7),
    # Environment variables a deployment may read as os.environ/NAME, besides the providers' own
    # (OPENAI_API_KEY...): names with these prefixes, and these exact names. The gateway's own
    # variables (GATEWAY_*, DJANGO_*, DATABASE_URL...) are refused whatever these say.
    "ENV_REFERENCE_PREFIXES": env_list("GATEWAY_ENV_REFERENCE_PREFIXES", ["LLM_"]),
    "ENV_REFERENCE_NAMES": frozenset(env_list("GATEWAY_ENV_REFERENCE_NAMES", [])),
    # Failed logins (admin passwords, unknown keys on the management API) one client address may
    # make within the window before its attempts are refused unchecked; 0 turns the limit off.
    "LOGIN_FAILURE_LIMIT": env_int("GATEWAY_LOGIN_FAILURE_LIMIT", 10),
    "LOGIN_FAILURE_WINDOW_SECONDS": env_int("GATEWAY_LOGIN_FAILURE_WINDOW_SECONDS", 300),
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "llm_gateway.apis.management.exceptions.openai_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LLM Gateway API",
    "DESCRIPTION": "OpenAI-compatible inference endpoints and a LiteLLM-compatible management API.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
UNFOLD = {
    "SITE_TITLE": "LLM Gateway admin",
    "SITE_HEADER": "LLM Gateway admin",
    "SIDEBAR": {"show_search": True, "navigation": "billing.dashboards.sidebar.sidebar_navigation"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"gateway": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Key query values, bearer tokens and key secrets become [REDACTED] in every line either handler writes.
    "filters": {"redact_secrets": {"()": "llm_gateway.log_redaction.SecretRedactionFilter"}},
    "handlers": {
        # Warnings and errors on stderr, as Python prints them when no handler is configured.
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "gateway",
            "level": "WARNING",
            "filters": ["redact_secrets"],
        },
        # The recent lines GET /ollama_logs returns (in memory, this process only).
        "recent": {
            "class": "llm_gateway.log_buffer.RecentLogHandler",
            "formatter": "gateway",
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console", "recent"], "level": "WARNING"},
    "loggers": {"llm_gateway": {"level": "INFO"}, "providers": {"level": "INFO"}},
}
