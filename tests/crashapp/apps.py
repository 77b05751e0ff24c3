from django.apps import AppConfig


class CrashappConfig(AppConfig):
    name = "tests.crashapp"
    label = "crashapp"
    default_auto_field = "django.db.models.BigAutoField"
