from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Accounts and roles"

    def ready(self):
        from .roles import ensure_roles

        post_migrate.connect(ensure_roles, dispatch_uid="portal.ensure_roles")

        from django.contrib.auth.signals import user_logged_in

        from .authentication import forget_failed_logins

        user_logged_in.connect(forget_failed_logins, dispatch_uid="portal.forget_failed_logins")
