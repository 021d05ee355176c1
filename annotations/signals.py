"""What annotations hooks into the rest: logins, logouts and failed logins go to the audit log
(Django's auth signals), and so does every event the archive sends (:mod:`archive.hooks`);
a change of a reader study's readers or cases drops the archive's remembered study access.

A failed login records the username that was tried and the client's address, never
the password: Django sends the credentials with every secret-looking key already
masked (``django.contrib.auth.authenticate``), and only the username is kept.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from archive import hooks
from archive.models import clear_access_cache

from .audit import audit, client_address
from .models import AuditEvent

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


@receiver(hooks.archive_event, dispatch_uid="audit_archive_event")
def audit_archive_event(sender, user, action, obj, changes, object_type, object_id, **kwargs):
    """An archive change or retrieval (ingest, phase override, WADO-RS, admin) into the audit log."""
    if isinstance(obj, AuditEvent):
        return  # the log does not log itself (an admin cascade may list its rows)
    audit(user, action, obj, changes, object_type=object_type, object_id=object_id)


# Adding or removing a reader or a case changes which studies a reader may open.
for _name, _signal, _senders in (
    ("save", post_save, ("annotations.ReaderStudy", "annotations.ReaderStudyCase")),
    ("delete", post_delete, ("annotations.ReaderStudy", "annotations.ReaderStudyCase")),
    ("m2m", m2m_changed, ("annotations.ReaderStudy_readers", "annotations.ReaderStudyCase")),
):
    for _sender in _senders:
        _signal.connect(
            clear_access_cache,
            sender=_sender,
            dispatch_uid=f"annotations.access_cache.{_name}.{_sender}",
        )
