from django.urls import re_path

from sessionapp import views

_ROUTES = {
    "health": views.health,
    "set": views.set_value,
    "set_many": views.set_many,
    "set_py": views.set_py,
    "session_repr": views.session_repr,
    "stored": views.stored,
    "get": views.get_value,
    "pop": views.pop_value,
    "all": views.all_items,
    "set_expiry": views.set_expiry,
    "flush": views.flush,
    "cycle": views.cycle,
    "clear": views.clear,
    "login": views.login,
    "logout": views.logout,
    "whoami": views.whoami,
    "make_user": views.make_user,
    "user_password_hash": views.user_password_hash,
    "set_password": views.set_password,
}

# Each endpoint answers with and without a trailing slash (no CommonMiddleware redirects).
urlpatterns = [re_path(rf"^{name}/?$", view, name=name) for name, view in _ROUTES.items()]

handler400 = "sessionapp.views.bad_request"
handler403 = "sessionapp.views.permission_denied"
handler404 = "sessionapp.views.not_found"
handler500 = "sessionapp.views.server_error"
