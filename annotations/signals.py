"""Logins, logouts and failed logins go to the audit log (Django's auth signals).

A failed login records the username that was tried and the client's address, never
the password: Django sends the credentials with every secret-looking key already
masked (``django.contrib.auth.authenticate``), and only the username is kept.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .models import AuditEvent
from .services import audit, client_address

USERNAME_MAX_CHARS = (
    150  # the attempted name is the client's text: kept at most as long as a username may be
)


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs):
    audit(user, AuditEvent.Action.LOGIN, user, {"address": client_address(request)})


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        audit(user, AuditEvent.Action.LOGOUT, user, {"address": client_address(request)})


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    username = str(
        credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username") or ""
    )
    audit(
        None,
        AuditEvent.Action.LOGIN_FAILED,
        object_type="user",
        changes={
            "username": username[:USERNAME_MAX_CHARS],
            "address": client_address(request),
        },
    )
