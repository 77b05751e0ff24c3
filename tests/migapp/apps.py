from django.apps import AppConfig


class MigappConfig(AppConfig):
    name = "tests.migapp"
    label = "migapp"
    default_auto_field = "django.db.models.BigAutoField"
