from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"

    def ready(self):
        from . import signals  # noqa: F401  (logins and failed logins into the audit log)
