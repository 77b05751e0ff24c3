from django.apps import AppConfig


class ArrowAppConfig(AppConfig):
    name = "tests.arrowapp"
    label = "arrowapp"
    default_auto_field = "django.db.models.BigAutoField"
