"""omni settings: one module, driven by environment variables.

Every variable is read through a strict helper that raises ImproperlyConfigured on a bad value,
so a typo in production fails at start-up instead of half-working.
"""

import base64
import hashlib
import os
import re
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


GENERATE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def env_fernet_keys(name: str) -> list[str]:
    """Comma-separated Fernet keys, newest first, each checked now (never echoed)."""
    keys = env_list(name, [])
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: key {number} of {len(keys)} is not a Fernet key (44 characters of "
                f"url-safe base64). Generate one with: {GENERATE_KEY}"
            ) from None
    return keys


def env_proxy_header(name: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto: https` → ("HTTP_X_FORWARDED_PROTO", "https"), as Django wants it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    header, _, value = raw.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9-]+", header.strip()) or not value.strip():
        raise ImproperlyConfigured(f"{name} must look like 'X-Forwarded-Proto: https', got {raw!r}")
    return "HTTP_" + header.strip().upper().replace("-", "_"), value.strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
    SECRET_KEY = "dev-only-insecure-key"  # noqa: S105 - development default, refused above in production
# Channel credentials are encrypted with these (channels/credentials_store.py): the first key
# encrypts, all decrypt. Production must set them; a debugging setup with none gets a key
# derived from SECRET_KEY, so `make demo` and the tests need nothing set.
# The currency of the POS's retail prices (ISO 4217). A channel that sells in another is never
# sent prices: omni does not convert.
OMNI_POS_CURRENCY = os.environ.get("OMNI_POS_CURRENCY", "IDR").strip().upper()

OMNI_CREDENTIALS_KEYS = env_fernet_keys("OMNI_CREDENTIALS_KEYS")
if not OMNI_CREDENTIALS_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "OMNI_CREDENTIALS_KEYS must be set when DEBUG is false: the keys that encrypt "
            f"channel credentials, newest first, comma-separated. Generate one with: {GENERATE_KEY}"
        )
    _dev_key = hashlib.sha256(b"omni channel credentials\0" + SECRET_KEY.encode()).digest()
    OMNI_CREDENTIALS_KEYS = [base64.urlsafe_b64encode(_dev_key).decode()]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "omni.admin_site.OmniAdminConfig",  # django.contrib.admin with omni's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "django_q",
    "ninja",
    "omni",
    "catalog",
    "channels",
    "synclogs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "omni.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "omni.urls"
WSGI_APPLICATION = "omni.wsgi.application"

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

# The embedded default is a SQLite file under var/ so a newcomer needs no server;
# production and CI set DATABASE_URL=postgres://user:pass@host:5432/name.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'omni.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web server, worker) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
FORMAT_MODULE_PATH = ["omni.formats"]  # compact dates in tables (omni/formats/en)
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# An upload of a CSV catalog can be large; request bodies above this are refused.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20_000

# django-q2, run by `manage.py worker` (omni/workers.py: stops cleanly on SIGTERM): the ORM
# broker by default (no extra server); Redis when REDIS_URL is set. The ORM broker delivers a
# task again `retry` seconds after handing it out unless its result was saved (a worker that
# died, a failure: ack_failures stays off), up to max_attempts failures; Redis hands a task
# out once. timeout < retry, so a task is never delivered again while it may still run; no
# catch-up storms after downtime. Q_CLUSTER_NAME names the queue and signs the tasks: web and
# workers of one site share it, sites sharing one Redis need different names.
_q_timeout = env_int("Q_TIMEOUT", 300, minimum=1)
_q_retry = env_int("Q_RETRY", 360, minimum=2)
if _q_retry <= _q_timeout:
    raise ImproperlyConfigured(
        f"Q_RETRY ({_q_retry}) must be longer than Q_TIMEOUT ({_q_timeout}): a task is "
        "delivered again after Q_RETRY seconds and must not be while it may still run"
    )
Q_CLUSTER: dict[str, object] = {
    "name": os.environ.get("Q_CLUSTER_NAME") or "omni",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": _q_timeout,
    "retry": _q_retry,
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Tasks",
}
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- HTTPS ---------------------------------------------------------------------------------
# Secure cookies and a year of HSTS by default in production (HSTS is sent only over HTTPS, for
# this host only); redirecting to HTTPS, and trusting a proxy's header for the scheme, are the
# deployment's to turn on (README "Configuration"): behind a TLS proxy without the header, the
# redirect would loop.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_PROXY_SSL_HEADER = env_proxy_header("SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^api/health$"]  # a load balancer's plain-HTTP probe
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# --- the JSON API (omni/api.py) -------------------------------------------------------------
# The cache holds the API's per-token rate-limit counters: in-process LocMem by default (each
# server process counts on its own), Redis when REDIS_URL is set (one count for all processes).
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Requests per minute per API token (fixed window); 0 turns the limit off.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 1200)
# Larger /api/ bodies are refused with 413 before they are read; POST /api/stock/bulk takes up
# to 10,000 rows, so it has its own, larger limit.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
API_BULK_MAX_BODY_BYTES = env_int("API_BULK_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024)
MIDDLEWARE = ["omni.api_limits.ApiEdgeMiddleware", *MIDDLEWARE]
# urllib3 logs every request URL at DEBUG, and some marketplaces (Shopee) sign with the access
# token in the query string: keep it quiet even when LOG_LEVEL=DEBUG.
LOGGING["loggers"]["urllib3"] = {"level": "WARNING"}
