from django.apps import AppConfig


class ExportappConfig(AppConfig):
    name = "tests.exportapp"
    label = "exportapp"
    default_auto_field = "django.db.models.BigAutoField"
