from django.apps import AppConfig


class ActivityappConfig(AppConfig):
    name = "tests.activityapp"
    label = "activityapp"
    default_auto_field = "django.db.models.BigAutoField"
