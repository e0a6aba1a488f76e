from django.apps import AppConfig


class SessionAppConfig(AppConfig):
    name = "sessionapp"
    verbose_name = "sessionbase interop views"
    default_auto_field = "django.db.models.AutoField"
