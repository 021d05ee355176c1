"""Where the apps above the archive plug their rules into it; the archive imports none of them.

Two hooks, each filled in by ``annotations`` when Django starts (``AnnotationsConfig.ready``):

- **Study visibility.** A study is visible to coordinators and admins, to whoever uploaded
  it first, and to whom a registered rule adds: :func:`add_study_visibility` takes a
  function ``user -> Q`` over :class:`archive.models.Study` (annotations: the readers of a
  reader study the study is a case of). :meth:`StudyQuerySet.visible_to` ORs them in.
- **The audit log.** Every change the archive makes on someone's behalf, and every whole
  study or series retrieved, is sent as :data:`archive_event`; annotations' receiver writes
  it to its append-only ``AuditEvent`` table in the same transaction. Without a receiver
  nothing is recorded (the archive alone has no audit log).
"""

import datetime

from django.db.models import Q
from django.db.models.fields.files import FieldFile
from django.dispatch import Signal

# Sent with: user, action ("create", "update", "delete", "download"), obj (a model instance
# or None), changes (dict: field -> [old, new], or what else identifies the event),
# object_type and object_id (when obj is None).
archive_event = Signal()

_study_visibility = []


def add_study_visibility(rule):
    """Register ``rule(user) -> Q``: studies ``user`` may open besides their own uploads."""
    if rule not in _study_visibility:
        _study_visibility.append(rule)


def extra_visible_studies(user) -> Q | None:
    """The OR of every registered rule for ``user``, or None when no rule is registered."""
    combined = None
    for rule in _study_visibility:
        combined = rule(user) if combined is None else combined | rule(user)
    return combined


def record(user, action, obj=None, changes=None, *, object_type=None, object_id=None):
    """Send one audit event of the archive (see :data:`archive_event`)."""
    archive_event.send(
        sender=obj.__class__ if obj is not None else None,
        user=user,
        action=action,
        obj=obj,
        changes=changes or {},
        object_type=object_type,
        object_id=object_id,
    )


def json_value(value):
    """A field value as the audit log stores it (dates as ISO text, files by name)."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, FieldFile):
        return value.name or None
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return str(value)


def snapshot(obj, fields) -> dict:
    """``{field: value}`` of ``obj`` in JSON-ready form."""
    return {f: json_value(getattr(obj, f)) for f in fields}
