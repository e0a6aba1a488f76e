"""Settings for the sessionbase interop Django project.

Everything a test varies comes from the environment, so that each Rust test can configure
the one Django process it starts. See ../README.md for the variables.
"""
import json
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
    """`sqlite:///abs/path.db`, `sqlite://:memory:`,
    `postgres[ql]://user[:password]@host[:port]/dbname[?libpq_option=value&...]`, or
    `mysql://user[:password]@host[:port]/dbname` (MySQL or MariaDB, through PyMySQL)."""
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
    if scheme in ("mysql", "mariadb"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} has no database name")
        _use_pymysql()
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": name,
            "USER": unquote(parts.username) if parts.username else "",
            "PASSWORD": unquote(parts.password) if parts.password else "",
            "HOST": unquote(parts.hostname) if parts.hostname else "",
            "PORT": str(parts.port) if parts.port else "",
            "OPTIONS": {"charset": "utf8mb4"},
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL {url!r}: unsupported scheme {parts.scheme!r} "
        "(use sqlite, postgres or mysql)"
    )


def _use_pymysql():
    """Django's MySQL backend imports `MySQLdb` (mysqlclient), which needs the MySQL client
    headers to build; PyMySQL (pure Python, pinned in requirements*.txt) stands in for it.
    Django checks `MySQLdb.version_info` against the mysqlclient it supports, so PyMySQL's
    (a placeholder, 1.4.6) is raised to that minimum."""
    import pymysql

    pymysql.version_info = (2, 2, 1, "final", 0)
    pymysql.install_as_MySQLdb()


DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite://{DEFAULT_SQLITE_PATH}"
DATABASES = {"default": _parse_database_url(DATABASE_URL)}

# --- Cache (used by the cached_db and cache engines) ---------------------------------------
# CACHE_BACKEND: a short name below or a full dotted path. locmem (default) is per process,
# as in Django's defaults: cached_db then serves a session from this process's memory
# without reading the DB, so a change the Rust side makes to a row Django has cached is not
# seen until the entry expires. `dummy` caches nothing, so every load reads the DB. `redis`
# (Django's own backend) and `django_redis` share one Redis with the Rust side.
#
# CACHE_LOCATION, CACHE_KEY_PREFIX (default ""), CACHE_VERSION (default 1) and CACHE_OPTIONS
# (a JSON object merged into OPTIONS, e.g. {"PICKLE_VERSION": 5} for django-redis) are the
# cache's LOCATION, KEY_PREFIX, VERSION and OPTIONS. SESSION_CACHE_ALIAS (default "default")
# is the alias the session engines use: when it is not "default", the cache above is
# defined under that alias and `default` stays a LocMemCache, so that a test can see that
# the alias is the one that counts.

_CACHE_BACKENDS = {
    "locmem": "django.core.cache.backends.locmem.LocMemCache",
    "dummy": "django.core.cache.backends.dummy.DummyCache",
    "redis": "django.core.cache.backends.redis.RedisCache",
    "django_redis": "django_redis.cache.RedisCache",
    "file": "django.core.cache.backends.filebased.FileBasedCache",
    "db": "django.core.cache.backends.db.DatabaseCache",
    "memcached": "django.core.cache.backends.memcached.PyMemcacheCache",
}
# Backends that are useless without a LOCATION (a URL, a directory, a table, a server).
_NEEDS_LOCATION = {
    "django.core.cache.backends.redis.RedisCache",
    "django_redis.cache.RedisCache",
    "django.core.cache.backends.filebased.FileBasedCache",
    "django.core.cache.backends.db.DatabaseCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
}

_cache_name = _env_str("CACHE_BACKEND", "locmem").strip() or "locmem"
if _cache_name.lower() in _CACHE_BACKENDS:
    CACHE_BACKEND = _CACHE_BACKENDS[_cache_name.lower()]
elif "." in _cache_name:
    CACHE_BACKEND = _cache_name
else:
    raise ImproperlyConfigured(
        f"CACHE_BACKEND must be one of {sorted(_CACHE_BACKENDS)} or a dotted path, "
        f"got {_cache_name!r}"
    )

_cache = {
    "BACKEND": CACHE_BACKEND,
    "KEY_PREFIX": _env_str("CACHE_KEY_PREFIX", ""),
    "VERSION": _env_int("CACHE_VERSION", 1),
}
_cache_location = _env_str("CACHE_LOCATION", "")
if _cache_location:
    _cache["LOCATION"] = _cache_location
elif CACHE_BACKEND in _NEEDS_LOCATION:
    raise ImproperlyConfigured(f"CACHE_BACKEND {CACHE_BACKEND} needs CACHE_LOCATION")

_cache_options = {}
if CACHE_BACKEND == "django_redis.cache.RedisCache":
    # django-redis's default client (pickle serializer, no compressor).
    _cache_options["CLIENT_CLASS"] = "django_redis.client.DefaultClient"
_raw_options = _env_str("CACHE_OPTIONS", "").strip()
if _raw_options:
    try:
        _extra = json.loads(_raw_options)
    except ValueError as exc:
        raise ImproperlyConfigured(f"CACHE_OPTIONS is not JSON: {exc}") from None
    if not isinstance(_extra, dict):
        raise ImproperlyConfigured("CACHE_OPTIONS must be a JSON object")
    _cache_options.update(_extra)
if _cache_options:
    _cache["OPTIONS"] = _cache_options

SESSION_CACHE_ALIAS = _env_str("SESSION_CACHE_ALIAS", "default").strip() or "default"
if SESSION_CACHE_ALIAS == "default":
    CACHES = {"default": _cache}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        SESSION_CACHE_ALIAS: _cache,
    }

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
        # Cache errors: Django's cache backends log nothing themselves (their errors reach
        # the session engines, and cached_db logs "Error saving to cache" under
        # django.contrib.sessions); django-redis logs ignored connection errors under
        # django_redis when DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS is set.
        "django.core.cache": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "django_redis": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}
