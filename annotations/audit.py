"""The audit log: who did what to which object, with the values before and after.

Every annotation change (:mod:`annotations.services`, :mod:`annotations.calls`), every
export, login and archive event is written here as one :class:`AuditEvent`. Apart from
the services because the signals, the exports of the other apps and the login lockout
(``AXES_CLIENT_IP_CALLABLE``) need the log without the annotation rules.
"""

from __future__ import annotations

from rest_framework.throttling import BaseThrottle

from archive.hooks import snapshot

from .models import AuditEvent


def _actor(user):
    return user if user is not None and user.is_authenticated else None


def audit(
    user, action, obj=None, changes: dict | None = None, *, object_type=None, object_id=None
) -> AuditEvent:
    """Record one event of ``user`` (None or anonymous: none) on ``obj``.

    ``changes`` maps field -> [old, new] for create/update/delete, and holds what else
    identifies the event for the other actions (e.g. the file of an export). Without
    ``obj``, ``object_type`` names what the event is about (``object_id`` may be None).
    """
    return AuditEvent.objects.create(
        user=_actor(user),
        action=action,
        object_type=obj._meta.model_name if obj is not None else object_type,
        object_id=obj.pk if obj is not None else object_id,
        changes=changes or {},
    )


def audit_export(user, obj, filename, **details) -> AuditEvent:
    """Record that ``user`` downloaded ``filename``, an export of ``obj`` (a table, a plot, an SR)."""
    return audit(user, AuditEvent.Action.EXPORT, obj, {"file": filename, **details})


def client_address(request) -> str | None:
    """The client's IP address, as the login lockout (django-axes) and the API throttles see it.

    ``REMOTE_ADDR``, or behind ``TRUSTED_PROXY_COUNT`` reverse proxies the address the
    outermost one saw: DRF's rule for its throttles (``NUM_PROXIES``, the entry that many
    from the right of ``X-Forwarded-For``), so one address is locked out and throttled
    alike, and a client cannot pick its address by sending its own ``X-Forwarded-For``.
    """
    return BaseThrottle().get_ident(request) if request is not None else None


def audit_created(user, obj, fields):
    """Audit the creation of ``obj``: each of ``fields`` from None to its value."""
    audit(
        user,
        AuditEvent.Action.CREATE,
        obj,
        {f: [None, v] for f, v in snapshot(obj, fields).items()},
    )


def audit_deleted(user, obj, fields):
    """Audit the deletion of ``obj`` (before it is deleted): each of ``fields`` to None."""
    audit(
        user,
        AuditEvent.Action.DELETE,
        obj,
        {f: [v, None] for f, v in snapshot(obj, fields).items()},
    )


def apply_audited(user, obj, fields, values: dict) -> dict:
    """Set ``values`` on ``obj``, save, and audit the fields that really changed."""
    before = snapshot(obj, fields)
    for name, value in values.items():
        setattr(obj, name, value)
    after = snapshot(obj, fields)
    changes = {f: [before[f], after[f]] for f in fields if before[f] != after[f]}
    if changes:
        obj.save()
        audit(user, AuditEvent.Action.UPDATE, obj, changes)
    return changes
