from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Imaging archive and accounts"

    def ready(self):
        from .roles import ensure_roles

        post_migrate.connect(ensure_roles, dispatch_uid="portal.ensure_roles")
