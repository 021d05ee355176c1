"""Reader calls: a reader's benign/malignant call and confidence on a lesion, each change audited.

Recording, autosaving, locking and revising a call, with the rules of the reading
sessions (the aided read after the unaided one, the crossover washout) and of the
reader study's state. Apart from the other annotation services because a call is the
reader's own judgement, with its own life cycle (autosave, lock, revisions), not a change
to the shared lesion, ROI and pathology data. Who may call these is
:mod:`annotations.access`'s business, checked by the caller.
"""

from __future__ import annotations

import math

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import access
from .audit import apply_audited, audit_created
from .errors import Conflict, Invalid
from .models import ReaderCall, ReaderStudy, Session, Subtype

CALL_FIELDS = [
    "session",
    "malignant",
    "probability",
    "subtype_guess",
    "time_spent_s",
    "locked_at",
    "is_current",
    "blinded",
]


def _check_call_values(values: dict):
    if "malignant" in values and not isinstance(values["malignant"], bool):
        raise Invalid("malignant must be true or false", "malignant")
    if "probability" in values:
        p = values["probability"]
        if (
            isinstance(p, bool)
            or not isinstance(p, (int, float))
            or not math.isfinite(p)
            or not 0 <= p <= 100
            or p != int(p)
        ):
            raise Invalid(
                "probability must be a whole number from 0 to 100 (probability of malignancy, %)",
                "probability",
            )
        values["probability"] = int(p)
    if (
        values.get("subtype_guess") not in (None, "")
        and values["subtype_guess"] not in Subtype.values
    ):
        raise Invalid(
            f"subtype_guess must be empty or one of {', '.join(Subtype.values)}", "subtype_guess"
        )
    if values.get("subtype_guess") is None and "subtype_guess" in values:
        values["subtype_guess"] = ""
    t = values.get("time_spent_s")
    if t is not None and (
        isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0
    ):
        raise Invalid("time_spent_s must be a non-negative number of seconds", "time_spent_s")


def _check_reader_study_open(reader_study):
    if reader_study.state != ReaderStudy.State.OPEN:
        raise Conflict(
            f"reader study {reader_study.name!r} is {reader_study.state}; calls are recorded only while it is open"
        )


def locked_message(call):
    """Why a locked call cannot be changed, and how to record a new revision instead."""
    return (
        f"call {call.pk} is locked; POST /api/v1/calls/{call.pk}/revise/ to record a new revision"
    )


def _check_session(reader_study, lesion, reader, session):
    """A call's session must be the reader's next read of the lesion.

    Unaided-only studies have the unaided session only. Sequential: the aided call needs
    the reader's unaided call locked. Crossover: the first read of a case is the session
    :meth:`ReaderStudy.first_session` names for the reader; the second read needs the
    first one locked and ``washout_days`` passed since (:class:`Conflict` naming the date).
    """
    if session not in Session.values:
        raise Invalid(f"session must be one of {', '.join(Session.values)}", "session")
    if not reader_study.aided:
        if session == Session.AIDED:
            raise Invalid(
                f"reader study {reader_study.name!r} has no aided session (design {reader_study.design}); "
                "record the call with session unaided",
                "session",
            )
        return
    first = reader_study.first_session(reader, lesion.study_id)
    if session == first:
        return
    previous = ReaderCall.objects.filter(
        reader_study=reader_study,
        lesion=lesion,
        reader=reader,
        session=first,
        is_current=True,
        locked_at__isnull=False,
    ).first()
    if previous is None:
        raise Conflict(
            f"lock your {first} call on this lesion before recording the {session} call", "session"
        )
    if reader_study.design == ReaderStudy.Design.CROSSOVER:
        opens = access.second_read_opens(reader_study, previous.locked_at)
        if timezone.now() < opens:
            raise Conflict(
                f"washout: your {session} read of this lesion opens on {opens:%Y-%m-%d %H:%M} UTC, "
                f"{reader_study.washout_days} days after your {first} call was locked",
                "session",
            )


@transaction.atomic
def record_call(
    reader_study,
    lesion,
    reader,
    malignant,
    probability,
    subtype_guess="",
    time_spent_s=None,
    simulated=False,
    lock=True,
    blinded=None,
    changed_by=None,
    session=Session.UNAIDED,
) -> ReaderCall:
    """Create the reader's current call on ``lesion`` in ``session``, or update it while unlocked (autosave).

    ``blinded`` defaults to what :mod:`annotations.access` says of ``reader`` now.
    A locked current call is not changed: :class:`Conflict` (use :func:`revise_call`);
    the same locked call sent again (a retry) is returned as it is, so a retry never fails or duplicates.
    An ``aided`` call needs a sequential reader study and the reader's unaided call locked (:class:`Conflict`).
    """
    if not access.lesion_in_reader_study(lesion, reader_study):
        raise Invalid(
            f"lesion {lesion.pk} is not in a case of reader study {reader_study.name!r}", "lesion"
        )
    _check_reader_study_open(reader_study)
    values = {
        "malignant": malignant,
        "probability": probability,
        "subtype_guess": subtype_guess or "",
        "time_spent_s": time_spent_s,
    }
    _check_call_values(values)
    _check_session(reader_study, lesion, reader, session)
    actor = changed_by or reader
    current = (
        ReaderCall.objects.select_for_update()
        .filter(
            reader_study=reader_study,
            lesion=lesion,
            reader=reader,
            session=session,
            is_current=True,
        )
        .first()
    )
    if current is not None:
        if current.locked:
            if lock and all(getattr(current, name) == value for name, value in values.items()):
                return current  # the same locked call sent again: a client's retry whose answer was lost
            raise Conflict(locked_message(current))
        call = update_call(current, actor, **values)
    else:
        if blinded is None:
            blinded = access.call_would_be_blinded(reader, lesion)
        try:
            with transaction.atomic():
                call = ReaderCall.objects.create(
                    reader_study=reader_study,
                    lesion=lesion,
                    reader=reader,
                    session=session,
                    blinded=blinded,
                    simulated=simulated,
                    changed_by=actor,
                    **values,
                )
        except IntegrityError:
            raise Conflict(
                "another request created this call at the same moment; send it again"
            ) from None
        audit_created(actor, call, CALL_FIELDS)
    if lock:
        call = lock_call(call, actor)
    return call


@transaction.atomic
def update_call(call, user, **values) -> ReaderCall:
    """Autosave: change an unlocked current call."""
    call = ReaderCall.objects.select_for_update().get(pk=call.pk)
    if not call.is_current:
        raise Conflict(f"call {call.pk} is an old revision; change the current one")
    if call.locked:
        raise Conflict(locked_message(call))
    _check_reader_study_open(call.reader_study)
    unknown = set(values) - {"malignant", "probability", "subtype_guess", "time_spent_s"}
    if unknown:
        raise Invalid(
            f"{', '.join(sorted(unknown))} cannot be changed on a call", sorted(unknown)[0]
        )
    _check_call_values(values)
    values["changed_by"] = user
    if call.blinded and not call.simulated and access.may_see_truth(user, call.lesion):
        values["blinded"] = False
    apply_audited(user, call, CALL_FIELDS, values)
    return call


@transaction.atomic
def lock_call(call, user) -> ReaderCall:
    """Lock a call (idempotent); afterwards the reader sees the lesion's truth."""
    call = ReaderCall.objects.select_for_update().get(pk=call.pk)
    if not call.is_current:
        raise Conflict(f"call {call.pk} is an old revision")
    if call.locked:
        return call
    _check_reader_study_open(call.reader_study)
    apply_audited(user, call, CALL_FIELDS, {"locked_at": timezone.now(), "changed_by": user})
    return call


@transaction.atomic
def revise_call(call, user, **values) -> ReaderCall:
    """A new locked revision of a locked call; the old row stays with ``is_current`` False.

    The reader has seen the truth since locking, so a revision by them is not blinded.
    """
    call = ReaderCall.objects.select_for_update().get(pk=call.pk)
    if not call.is_current:
        raise Conflict(f"call {call.pk} is an old revision; revise the current one")
    if not call.locked:
        raise Conflict(
            f"call {call.pk} is not locked yet; change it directly (PATCH) instead of revising"
        )
    reader_study = call.reader_study
    first_read = reader_study.aided and call.session == reader_study.first_session(
        call.reader, call.lesion.study_id
    )
    if reader_study.aided and (call.session == Session.UNAIDED or first_read):
        raise Conflict(
            f"call {call.pk} is the {call.session} call of a reader study with an aided session"
            + (
                " and the reader's first read of the case (the washout counts from its lock)"
                if first_read
                else ""
            )
            + "; once locked it cannot change"
        )
    _check_reader_study_open(call.reader_study)
    unknown = set(values) - {"malignant", "probability", "subtype_guess", "time_spent_s"}
    if unknown:
        raise Invalid(
            f"{', '.join(sorted(unknown))} cannot be changed on a call", sorted(unknown)[0]
        )
    new_values = {
        "malignant": call.malignant,
        "probability": call.probability,
        "subtype_guess": call.subtype_guess,
        "time_spent_s": call.time_spent_s,
        **values,
    }
    _check_call_values(new_values)
    could_see_truth = access.may_see_truth(call.reader, call.lesion)
    apply_audited(user, call, CALL_FIELDS, {"is_current": False, "changed_by": user})
    revision = ReaderCall.objects.create(
        reader_study=call.reader_study,
        lesion=call.lesion,
        reader=call.reader,
        session=call.session,
        revision=call.revision + 1,
        supersedes=call,
        blinded=call.blinded and not could_see_truth,
        simulated=call.simulated,
        changed_by=user,
        locked_at=timezone.now(),
        **new_values,
    )
    audit_created(user, revision, CALL_FIELDS + ["revision"])
    return revision
