from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"

    def ready(self):
        from archive import hooks

        from . import access, signals  # noqa: F401  (the audit log's receivers, see signals)

        hooks.add_study_visibility(access.assigned_studies_rule)
