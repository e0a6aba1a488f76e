"""Settings for the sessionbase interop Django project.

Everything a test varies comes from the environment, so that each Rust test can configure
the one Django process it starts. See ../README.md for the variables.
"""
import os
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def _env_str(name, default):
    raw = os.environ.get(name)
    return default if raw is None else raw


# --- Security / signing --------------------------------------------------------------------

SECRET_KEY = os.environ.get("SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in the environment")

SECRET_KEY_FALLBACKS = [
    k for k in (s.strip() for s in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",")) if k
]

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

# Tests only: fast hashing for the users the views create.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Apps and middleware -------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "sessionapp",
]

# No CSRF middleware: the tests' POSTs need no token (the views are GET anyway).
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "interop.urls"
WSGI_APPLICATION = "interop.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = _env_bool("USE_TZ", True)
TIME_ZONE = _env_str("TIME_ZONE", "UTC")
USE_I18N = False

# --- Database ------------------------------------------------------------------------------

DEFAULT_SQLITE_PATH = os.path.join(tempfile.gettempdir(), "sessionbase_django_interop.sqlite3")


def _parse_database_url(url):
    """`sqlite:///abs/path.db`, `sqlite://:memory:`, or
    `postgres[ql]://user[:password]@host[:port]/dbname[?libpq_option=value&...]`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///abs/path.db -> path "/abs/path.db"; sqlite://:memory: -> netloc ":memory:"
        if parts.netloc == ":memory:" or parts.path in ("/:memory:", ":memory:"):
            name = ":memory:"
        else:
            if parts.netloc:
                raise ImproperlyConfigured(
                    f"DATABASE_URL {url!r}: use sqlite:///absolute/path.db (three slashes)"
                )
            name = unquote(parts.path)
            if not name:
                raise ImproperlyConfigured(f"DATABASE_URL {url!r} has no path")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            # Wait for a concurrent writer (the threaded dev server, or the Rust side) rather
            # than failing at once with "database is locked".
            "OPTIONS": {"timeout": 30},
        }
    if scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} has no database name")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username) if parts.username else "",
            "PASSWORD": unquote(parts.password) if parts.password else "",
            "HOST": unquote(parts.hostname) if parts.hostname else "",
            "PORT": str(parts.port) if parts.port else "",
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL {url!r}: unsupported scheme {parts.scheme!r} (use sqlite or postgres)"
    )


DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite://{DEFAULT_SQLITE_PATH}"
DATABASES = {"default": _parse_database_url(DATABASE_URL)}

# --- Cache (used by the cached_db engine) --------------------------------------------------
# locmem (default): per-process, as in Django's defaults. Note that cached_db then serves a
# session from this process's memory without reading the DB, so a change the Rust side makes
# to a row Django has cached is not seen until the entry expires. `dummy` caches nothing, so
# every load reads the DB.

_CACHE_BACKENDS = {
    "locmem": "django.core.cache.backends.locmem.LocMemCache",
    "dummy": "django.core.cache.backends.dummy.DummyCache",
}
_cache = _env_str("CACHE_BACKEND", "locmem").strip().lower() or "locmem"
if _cache not in _CACHE_BACKENDS:
    raise ImproperlyConfigured(f"CACHE_BACKEND must be one of {sorted(_CACHE_BACKENDS)}")
CACHES = {"default": {"BACKEND": _CACHE_BACKENDS[_cache]}}

# --- Sessions ------------------------------------------------------------------------------

_ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
    "file": "django.contrib.sessions.backends.file",
    "cache": "django.contrib.sessions.backends.cache",
}
_engine = _env_str("SESSION_ENGINE", "db").strip() or "db"
if _engine in _ENGINES:
    SESSION_ENGINE = _ENGINES[_engine]
elif _engine in _ENGINES.values():
    SESSION_ENGINE = _engine
else:
    raise ImproperlyConfigured(
        f"SESSION_ENGINE must be one of {sorted(_ENGINES)}, got {_engine!r}"
    )

SESSION_COOKIE_NAME = _env_str("SESSION_COOKIE_NAME", "sessionid")
SESSION_COOKIE_AGE = _env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 7 * 2)
SESSION_SAVE_EVERY_REQUEST = _env_bool("SESSION_SAVE_EVERY_REQUEST", False)
SESSION_EXPIRE_AT_BROWSER_CLOSE = _env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)
SESSION_COOKIE_PATH = _env_str("SESSION_COOKIE_PATH", "/")
SESSION_COOKIE_DOMAIN = os.environ.get("SESSION_COOKIE_DOMAIN") or None
SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
SESSION_COOKIE_HTTPONLY = _env_bool("SESSION_COOKIE_HTTPONLY", True)
_samesite = _env_str("SESSION_COOKIE_SAMESITE", "Lax")
# "Lax", "Strict" or "None" as Django takes them; empty or "false" leaves the attribute out.
SESSION_COOKIE_SAMESITE = False if _samesite.strip().lower() in ("", "false") else _samesite

# The file engine: Django itself raises ImproperlyConfigured when the directory does not
# exist; this project creates it so a test only has to pick a path.
_file_path = os.environ.get("SESSION_FILE_PATH")
if _file_path:
    SESSION_FILE_PATH = _file_path
    if SESSION_ENGINE.endswith(".file"):
        os.makedirs(SESSION_FILE_PATH, exist_ok=True)

# --- Logging -------------------------------------------------------------------------------
# Django's default config prints nothing for errors when DEBUG is False; send what the
# tests care about to stderr.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "[django] %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        },
    },
    "loggers": {
        "django.security": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "django.contrib.sessions": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}
