"""JSON views that drive `request.session` for the sessionbase interop tests.

Every view takes its parameters from the query string (GET) or a form body (POST; no CSRF
middleware is installed), returns JSON, and is marked never_cache. A view touches the
session only as its name says, so the middleware's save / cookie / Vary decisions are
Django's own for that access pattern.

`session_key` in a response is `request.session.session_key` at the time the view returns,
i.e. before SessionMiddleware saves: it is null for a brand-new server-side session, and for
signed_cookies it is the incoming cookie value, not the one about to be set. The cookie the
response sets is the authoritative value.
"""
import datetime
import importlib
import json
import platform
import time
from functools import wraps

import django
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, login as auth_login
from django.contrib.auth import logout as auth_logout, update_session_auth_hash
from django.core import signing
from django.core.cache import caches
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


class BadParam(Exception):
    pass


def _params(request):
    params = {k: request.GET.get(k) for k in request.GET}
    if request.method == "POST":
        params.update({k: request.POST.get(k) for k in request.POST})
    return params


def _required(params, name):
    value = params.get(name)
    if value is None:
        raise BadParam(f"missing parameter {name!r}")
    return value


def _json_param(params, name):
    raw = _required(params, name)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadParam(f"parameter {name!r} is not valid JSON: {exc}") from None


def _response(data, status=200):
    return JsonResponse(data, status=status, json_dumps_params={"sort_keys": False})


def endpoint(view):
    """GET/POST only, JSON errors for bad parameters, never cached."""

    @wraps(view)
    def wrapper(request):
        if request.method not in ("GET", "POST", "HEAD"):
            return _response({"ok": False, "error": "method not allowed"}, status=405)
        try:
            return view(request, _params(request))
        except BadParam as exc:
            return _response({"ok": False, "error": str(exc)}, status=400)

    return never_cache(wrapper)


def _expiry_info(session):
    expiry_date = session.get_expiry_date()
    return {
        "expiry_age": session.get_expiry_age(),
        "expiry_date": expiry_date.isoformat() if expiry_date is not None else None,
        "expire_at_browser_close": session.get_expire_at_browser_close(),
    }


# --- Health (does not touch the session) ---------------------------------------------------


@endpoint
def health(request, params):
    return _response(
        {
            "ok": True,
            "engine": settings.SESSION_ENGINE,
            "cookie_name": settings.SESSION_COOKIE_NAME,
            "database_vendor": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "django_version": django.get_version(),
            "python_version": platform.python_version(),
            # The backend of the cache the session engines use (SESSION_CACHE_ALIAS).
            "cache_backend": settings.CACHES[settings.SESSION_CACHE_ALIAS]["BACKEND"],
            "session_cache_alias": settings.SESSION_CACHE_ALIAS,
        }
    )


# --- Data ----------------------------------------------------------------------------------


@endpoint
def set_value(request, params):
    key = _required(params, "key")
    value = _json_param(params, "value")
    request.session[key] = value
    status = int(params.get("status") or 200)
    return _response({"ok": True, "session_key": request.session.session_key}, status=status)


# The names a `set_py` literal may use besides Python's literal syntax and operators (no
# builtins: `2**70`, `-2**64`, `1e+16`, `(1, [2])`, `{"a": None}`, `"\U0001f600"` all work).
_PY_NAMES = {"nan": float("nan"), "inf": float("inf")}


@endpoint
def set_py(request, params):
    """session[key] = the Python value of `literal`, to store what JSON cannot say (big
    ints, nan/inf, tuples, ...). Test-only: the project listens on loopback."""
    key = _required(params, "key")
    literal = _required(params, "literal")
    try:
        value = eval(literal, {"__builtins__": {}}, dict(_PY_NAMES))  # noqa: S307
    except Exception as exc:
        raise BadParam(f"parameter 'literal' does not evaluate: {exc!r}") from None
    request.session[key] = value
    status = int(params.get("status") or 200)
    return _response(
        {"ok": True, "session_key": request.session.session_key, "repr": repr(value)},
        status=status,
    )


@endpoint
def session_repr(request, params):
    """The session's items as Python sees them: key order, exact ints, float reprs."""
    return _response(
        {
            "repr": repr(list(request.session.items())),
            "session_key": request.session.session_key,
        }
    )


class _RawText:
    """A signing serializer whose loads returns the signed payload as text: the JSON that
    Django's JSONSerializer would parse (it decodes the bytes as latin-1, so does this)."""

    def dumps(self, obj):  # pragma: no cover - only loads is used
        raise NotImplementedError

    def loads(self, data):
        return data.decode("latin-1")


def _engine_module():
    return importlib.import_module(settings.SESSION_ENGINE)


def _session_cache_prefix():
    """The engine's cache key prefix (`django.contrib.sessions.cached_db` or
    `django.contrib.sessions.cache`), or None when the engine keeps nothing in a cache."""
    store = _engine_module().SessionStore
    return getattr(store, "cache_key_prefix", None)


def _redis_client(cache):
    """A redis-py client for the server the cache writes to, or None for other backends."""
    backend = settings.CACHES[settings.SESSION_CACHE_ALIAS]["BACKEND"]
    if backend == "django.core.cache.backends.redis.RedisCache":
        # Django's backend: RedisCacheClient.get_client(write=True) is servers[0].
        return cache._cache.get_client(None, write=True)
    if backend == "django_redis.cache.RedisCache":
        # django-redis's DefaultClient: get_client(write=True) is servers[0] too.
        return cache.client.get_client(write=True)
    return None


@endpoint
def stored(request, params):
    """What is stored for session key `key`, looked at without request.session: the
    django_session row (db-backed engines) and the engine's cache entry."""
    session_key = _required(params, "key")
    engine = _engine_module()
    data = {"session_key": session_key, "engine": settings.SESSION_ENGINE}

    # The row, for the engines that keep one (db, cached_db and subclasses).
    from django.contrib.sessions.backends.db import SessionStore as DBStore

    row_fields = {
        "row_present": None,
        "row_repr": None,
        "row_json": None,
        "row_expire_date": None,
        "row_error": None,
    }
    if issubclass(engine.SessionStore, DBStore):
        from django.contrib.sessions.models import Session

        row = Session.objects.filter(session_key=session_key).first()
        row_fields["row_present"] = row is not None
        if row is not None:
            row_fields["row_expire_date"] = row.expire_date.isoformat()
            row_fields["row_repr"] = repr(
                list(engine.SessionStore().decode(row.session_data).items())
            )
            try:
                row_fields["row_json"] = signing.loads(
                    row.session_data,
                    salt="django.contrib.sessions.SessionStore",
                    serializer=_RawText,
                )
            except Exception as exc:
                row_fields["row_error"] = f"{type(exc).__name__}: {exc}"
    data.update(row_fields)

    # The cache entry, for the engines that use one (cached_db, cache).
    cache_fields = {
        "cache_alias": None,
        "cache_key": None,
        "cache_present": None,
        "cache_repr": None,
        "cache_ttl": None,
        "cache_raw_hex": None,
    }
    prefix = _session_cache_prefix()
    if prefix is not None:
        cache = caches[settings.SESSION_CACHE_ALIAS]
        key = prefix + session_key
        missing = object()
        value = cache.get(key, missing)
        made = cache.make_key(key)
        cache_fields.update(
            cache_alias=settings.SESSION_CACHE_ALIAS,
            cache_key=made,
            cache_present=value is not missing,
            cache_repr=None if value is missing else repr(value),
        )
        client = _redis_client(cache)
        if client is not None:
            # Redis's own TTL for the made key: -2 no such key, -1 no expiry.
            cache_fields["cache_ttl"] = client.ttl(made)
            raw = client.get(made)
            cache_fields["cache_raw_hex"] = None if raw is None else bytes(raw).hex()
        elif hasattr(cache, "_expire_info"):
            # LocMemCache: seconds left, as Redis would say them (-1 no expiry).
            expires = cache._expire_info.get(made, missing)
            if expires is not missing:
                cache_fields["cache_ttl"] = (
                    -1 if expires is None else max(0, round(expires - time.time()))
                )
            else:
                cache_fields["cache_ttl"] = -2
    data.update(cache_fields)
    return _response(data)


@endpoint
def set_many(request, params):
    data = _json_param(params, "data")
    if not isinstance(data, dict):
        raise BadParam("parameter 'data' must be a JSON object")
    for key, value in data.items():
        request.session[key] = value
    return _response({"ok": True, "session_key": request.session.session_key})


@endpoint
def get_value(request, params):
    key = _required(params, "key")
    present = key in request.session
    return _response(
        {
            "present": present,
            "value": request.session.get(key),
            "session_key": request.session.session_key,
        }
    )


@endpoint
def pop_value(request, params):
    key = _required(params, "key")
    present = key in request.session
    value = request.session.pop(key, None)
    return _response(
        {"present": present, "value": value, "session_key": request.session.session_key}
    )


@endpoint
def all_items(request, params):
    session = request.session
    items = dict(session.items())
    data = {"items": items, "session_key": session.session_key}
    data.update(_expiry_info(session))
    return _response(data)


# --- Expiry --------------------------------------------------------------------------------


@endpoint
def set_expiry(request, params):
    session = request.session
    if params.get("seconds") is not None:
        try:
            value = int(params["seconds"])
        except ValueError:
            raise BadParam("parameter 'seconds' must be an integer") from None
    elif params.get("iso") is not None:
        try:
            value = datetime.datetime.fromisoformat(params["iso"])
        except ValueError as exc:
            raise BadParam(f"parameter 'iso' is not an ISO-8601 datetime: {exc}") from None
        if settings.USE_TZ and value.tzinfo is None:
            raise BadParam("parameter 'iso' must carry a UTC offset (USE_TZ=True)")
    else:
        # No parameter (or ?none=1): back to the global policy.
        value = None
    session.set_expiry(value)
    data = {"ok": True, "session_key": session.session_key}
    data.update(_expiry_info(session))
    return _response(data)


# --- Whole-session operations --------------------------------------------------------------


@endpoint
def flush(request, params):
    request.session.flush()
    return _response({"ok": True, "session_key": request.session.session_key})


@endpoint
def cycle(request, params):
    old = request.session.session_key
    request.session.cycle_key()
    return _response(
        {"ok": True, "old_session_key": old, "session_key": request.session.session_key}
    )


@endpoint
def clear(request, params):
    request.session.clear()
    return _response({"ok": True, "session_key": request.session.session_key})


# --- Auth ----------------------------------------------------------------------------------


def _get_or_create_user(username, password):
    User = get_user_model()
    try:
        return User.objects.get(username=username), False
    except User.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password), True
    except IntegrityError:
        # Created by a concurrent request.
        return User.objects.get(username=username), False


def _user_or_404(username):
    User = get_user_model()
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        return None


@endpoint
def login(request, params):
    username = _required(params, "username")
    password = _required(params, "password")
    _get_or_create_user(username, password)
    user = authenticate(request, username=username, password=password)
    if user is None:
        return _response({"ok": False, "error": "invalid credentials"}, status=403)
    auth_login(request, user)
    return _response(
        {
            "ok": True,
            "user_id": str(user.pk),
            "username": user.get_username(),
            "session_key": request.session.session_key,
        }
    )


@endpoint
def logout(request, params):
    auth_logout(request)
    return _response({"ok": True, "session_key": request.session.session_key})


@endpoint
def whoami(request, params):
    user = request.user
    authenticated = bool(user.is_authenticated)
    return _response(
        {
            "authenticated": authenticated,
            "user_id": str(user.pk) if authenticated else None,
            "username": user.get_username() if authenticated else None,
            "session_key": request.session.session_key,
        }
    )


@endpoint
def make_user(request, params):
    username = _required(params, "username")
    password = _required(params, "password")
    user, created = _get_or_create_user(username, password)
    return _response(
        {
            "ok": True,
            "created": created,
            "user_id": str(user.pk),
            "username": user.get_username(),
            "password_hash": user.password,
            "session_auth_hash": user.get_session_auth_hash(),
        }
    )


@endpoint
def user_password_hash(request, params):
    username = _required(params, "username")
    user = _user_or_404(username)
    if user is None:
        return _response({"ok": False, "error": "no such user"}, status=404)
    return _response(
        {
            "ok": True,
            "user_id": str(user.pk),
            "username": user.get_username(),
            "password_hash": user.password,
            "session_auth_hash": user.get_session_auth_hash(),
        }
    )


@endpoint
def set_password(request, params):
    """Changes a user's password. Sessions holding the old _auth_user_hash stop
    authenticating, unless keep_session=1 and the request is that user's (then Django's
    update_session_auth_hash re-hashes this request's session)."""
    username = _required(params, "username")
    password = _required(params, "password")
    keep_session = (params.get("keep_session") or "").lower() in ("1", "true", "yes")
    user = _user_or_404(username)
    if user is None:
        return _response({"ok": False, "error": "no such user"}, status=404)
    if keep_session:
        # Resolve the lazy request.user while the session's hash still matches, as a
        # password-change view does; resolving it after the change would flush the session.
        request.user.is_authenticated
    user.set_password(password)
    user.save(update_fields=["password"])
    if keep_session:
        update_session_auth_hash(request, user)
    return _response(
        {
            "ok": True,
            "user_id": str(user.pk),
            "password_hash": user.password,
            "session_auth_hash": user.get_session_auth_hash(),
        }
    )


# --- Error handlers (JSON instead of Django's HTML pages) -----------------------------------


def bad_request(request, exception=None):
    return _response({"ok": False, "error": "bad request", "detail": str(exception or "")}, 400)


def permission_denied(request, exception=None):
    return _response({"ok": False, "error": "forbidden", "detail": str(exception or "")}, 403)


def not_found(request, exception=None):
    return _response({"ok": False, "error": "not found", "path": request.path}, 404)


def server_error(request):
    return _response({"ok": False, "error": "server error"}, 500)
