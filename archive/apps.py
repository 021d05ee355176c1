from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "archive"
    verbose_name = "Imaging archive"

    def ready(self):
        import pydicom.config

        # pydicom's reading validation logs offending values verbatim; uploads may carry identifiers.
        pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
