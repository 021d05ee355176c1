"""Every change to reader studies, lesions, ROIs and pathology, each written with its AuditEvent.

The API, the SR importer, the cohort importer and the inference app call these
functions; they check the data rules (values, consistency, locking) and raise
:mod:`annotations.errors` exceptions. Who may call them is :mod:`annotations.access`'s
business, checked by the caller. Reader calls are in :mod:`annotations.calls`, the
audit log itself in :mod:`annotations.audit`.
"""

from __future__ import annotations

import datetime
import math

from django.db import transaction

from archive.hooks import json_value, snapshot
from archive.models import Instance, Phase, Series
from archive.vocabulary import is_malignant

from . import access
from .audit import apply_audited, audit, audit_created, audit_deleted
from .calls import CALL_FIELDS
from .errors import Conflict, Invalid, NotAllowed
from .geometry import GeometryError, validate_points
from .models import (
    ROI,
    AuditEvent,
    Lesion,
    Pathology,
    ReaderStudy,
    Side,
    Subtype,
)

LESION_FIELDS = ["label", "side", "location", "long_axis_mm"]
ROI_FIELDS = [
    "phase",
    "series_id",
    "sop_instance_uid",
    "frame_number",
    "tool",
    "points",
    "stats",
    "is_reference",
]
PATHOLOGY_FIELDS = ["subtype", "malignant", "source", "date", "revision"]


# --- reader studies --------------------------------------------------------

READER_STUDY_FIELDS = [
    "name",
    "instructions",
    "state",
    "case_order",
    "seed",
    "design",
    "washout_days",
]


def reader_study_snapshot(reader_study) -> dict:
    """The audited state of a reader study: fields, readers, cases (StudyInstanceUIDs in order)."""
    return {
        **snapshot(reader_study, READER_STUDY_FIELDS),
        "readers": sorted(reader_study.readers.values_list("username", flat=True)),
        "cases": list(
            reader_study.cases.order_by("position", "id").values_list(
                "study__study_instance_uid", flat=True
            )
        ),
    }


def audit_reader_study_saved(user, reader_study, before: dict | None) -> dict:
    """Audit a created (``before`` None) or changed reader study, assignments included."""
    after = reader_study_snapshot(reader_study)
    if before is None:
        changes = {f: [None, v] for f, v in after.items()}
        audit(user, AuditEvent.Action.CREATE, reader_study, changes)
        return changes
    changes = {f: [before[f], after[f]] for f in after if before.get(f) != after[f]}
    if changes:
        audit(user, AuditEvent.Action.UPDATE, reader_study, changes)
    return changes


@transaction.atomic
def delete_reader_study(reader_study, user):
    """Delete a reader study without calls (a study with calls is closed instead: :class:`Conflict`)."""
    if reader_study.calls.exists():
        raise Conflict(
            f"reader study {reader_study.name!r} has reader calls; close it instead of deleting it"
        )
    changes = {f: [v, None] for f, v in reader_study_snapshot(reader_study).items()}
    audit(user, AuditEvent.Action.DELETE, reader_study, changes)
    reader_study.delete()


STATE_ACTIONS = {
    ReaderStudy.State.UNBLINDED: (
        AuditEvent.Action.UNBLIND,
        {ReaderStudy.State.OPEN, ReaderStudy.State.CLOSED},
    ),
    ReaderStudy.State.CLOSED: (AuditEvent.Action.CLOSE, {ReaderStudy.State.OPEN}),
    ReaderStudy.State.OPEN: (AuditEvent.Action.REOPEN, {ReaderStudy.State.CLOSED}),
}


@transaction.atomic
def set_reader_study_state(reader_study, user, new_state) -> ReaderStudy:
    """Unblind, close or reopen a reader study (audited); :class:`Conflict` from a state not allowing it.

    Open or closed can be unblinded, open can be closed, closed can be reopened; an
    unblinded study stays unblinded.
    """
    action, allowed_from = STATE_ACTIONS[new_state]
    reader_study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    if reader_study.state not in allowed_from:
        raise Conflict(
            f"reader study {reader_study.name!r} is {reader_study.state}; cannot change it to {new_state}"
        )
    old = reader_study.state
    reader_study.state = new_state
    reader_study.save(update_fields=["state"])
    audit(user, action, reader_study, {"state": [old, new_state]})
    return reader_study


# --- lesions ---------------------------------------------------------------


def _check_lesion_values(values: dict, study=None, lesion=None):
    if "label" in values:
        label = (values["label"] or "").strip()
        if not label:
            raise Invalid("a lesion needs a label, e.g. L1", "label")
        study = study or lesion.study
        clash = Lesion.objects.filter(study=study, label=label).exclude(
            pk=getattr(lesion, "pk", None)
        )
        if clash.exists():
            raise Invalid(f"the study already has a lesion labelled {label!r}", "label")
        values["label"] = label
    if "side" in values and values["side"] not in Side.values:
        raise Invalid(f"side must be one of {', '.join(Side.values)}", "side")
    size = values.get("long_axis_mm")
    if size is not None:
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, float))
            or not math.isfinite(size)
            or not 0 <= size <= 300
        ):
            raise Invalid(
                "long_axis_mm must be a number of millimetres between 0 and 300", "long_axis_mm"
            )


@transaction.atomic
def create_lesion(study, user, label, side=Side.UNKNOWN, location="", long_axis_mm=None) -> Lesion:
    """A new lesion on ``study`` (label unique within the study)."""
    values = {
        "label": label,
        "side": side,
        "location": location or "",
        "long_axis_mm": long_axis_mm,
    }
    _check_lesion_values(values, study=study)
    lesion = Lesion.objects.create(
        study=study, created_by=user if user and user.is_authenticated else None, **values
    )
    audit_created(user, lesion, LESION_FIELDS)
    return lesion


@transaction.atomic
def update_lesion(lesion, user, **values) -> Lesion:
    """Change label, side, location or long-axis size."""
    unknown = set(values) - set(LESION_FIELDS)
    if unknown:
        raise Invalid(
            f"a lesion's {', '.join(sorted(unknown))} cannot be changed", sorted(unknown)[0]
        )
    _check_lesion_values(values, lesion=lesion)
    apply_audited(user, lesion, LESION_FIELDS, values)
    return lesion


@transaction.atomic
def delete_lesion(lesion, user):
    """Delete a lesion with its ROIs, pathology and calls, auditing each."""
    for roi in lesion.rois.all():
        audit_deleted(user, roi, ROI_FIELDS)
    if hasattr(lesion, "pathology"):
        audit_deleted(user, lesion.pathology, PATHOLOGY_FIELDS)
    for call in lesion.calls.all():
        audit_deleted(user, call, CALL_FIELDS)
    audit_deleted(user, lesion, LESION_FIELDS)
    lesion.delete()


# --- ROIs ------------------------------------------------------------------


def _resolve_series(lesion, series) -> Series:
    if isinstance(series, Series):
        found = series if series.study_id == lesion.study_id else None
    else:
        found = Series.objects.filter(
            series_instance_uid=str(series or ""), study_id=lesion.study_id
        ).first()
    if found is None:
        raise Invalid(
            f"series {getattr(series, 'series_instance_uid', series)!r} is not a series of the lesion's study",
            "series",
        )
    return found


def _check_roi(lesion, values: dict) -> dict:
    """Validate a full set of ROI values; returns them cleaned (series resolved, phase from the series)."""
    series = _resolve_series(lesion, values.get("series"))
    if series.phase not in Phase.values or series.phase == Phase.UNKNOWN:
        raise Invalid(
            f"series {series.series_instance_uid} has no known contrast phase; set its phase first",
            "phase",
        )
    requested_phase = values.get("phase")
    if requested_phase not in (None, ""):
        if requested_phase not in Phase.values or requested_phase == Phase.UNKNOWN:
            raise Invalid(
                f"unknown phase {requested_phase!r}; expected one of NC, CM, NG, EX", "phase"
            )
        if requested_phase != series.phase:
            raise Invalid(
                f"phase {requested_phase} contradicts the series' phase {series.phase}", "phase"
            )
    sop_uid = str(values.get("sop_instance_uid") or "")
    instance = Instance.objects.filter(series=series, sop_instance_uid=sop_uid).first()
    if instance is None:
        raise Invalid(
            f"SOPInstanceUID {sop_uid!r} is not an instance of series {series.series_instance_uid}",
            "sop_instance_uid",
        )
    frame = values.get("frame_number", 1)
    if (
        isinstance(frame, bool)
        or not isinstance(frame, int)
        or not 1 <= frame <= instance.number_of_frames
    ):
        raise Invalid(
            f"frame_number must be between 1 and {instance.number_of_frames}", "frame_number"
        )
    tool = values.get("tool")
    if tool not in ROI.Tool.values:
        raise Invalid(f"tool must be one of {', '.join(ROI.Tool.values)}", "tool")
    try:
        points = validate_points(tool, values.get("points"))
    except GeometryError as error:
        raise Invalid(str(error), "points") from None
    stats = values.get("stats") or {}
    if not isinstance(stats, dict) or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        for v in stats.values()
        if v is not None
    ):
        raise Invalid(
            'stats must be an object of finite numbers (or null), e.g. {"mean": 35.2}', "stats"
        )
    stats = {k: v for k, v in stats.items() if v is not None}
    return {
        "series": series,
        "phase": series.phase,
        "sop_instance_uid": sop_uid,
        "frame_number": frame,
        "tool": tool,
        "points": points,
        "stats": stats,
        "is_reference": bool(values.get("is_reference", False)),
    }


def _unmark_previous_reference(lesion_id, phase, user, exclude_pk=None):
    """Un-mark the lesion's reference ROI of ``phase``; only who may change that ROI may replace it.

    The reference ROIs feed training and scoring, so marking a new one is a change to
    the current one (:func:`access.may_change_roi`): a reader cannot displace a
    coordinator's or another reader's reference. Raises :class:`NotAllowed` before
    anything is changed.
    """
    previous = list(
        ROI.objects.filter(lesion_id=lesion_id, phase=phase, is_reference=True)
        .exclude(pk=exclude_pk)
        .select_related("lesion__study")
        .select_for_update(of=("self",))
    )
    for other in previous:
        if not access.may_change_roi(user, other):
            raise NotAllowed(
                f"the lesion's reference ROI of phase {phase} is someone else's; only who may change that ROI "
                "may mark another one as reference (save yours without is_reference)",
                "is_reference",
            )
    for other in previous:
        apply_audited(user, other, ["is_reference"], {"is_reference": False})


@transaction.atomic
def create_roi(lesion, user, **values) -> ROI:
    """A new ROI on ``lesion``; marking it reference un-marks the previous one of that phase."""
    cleaned = _check_roi(lesion, values)
    roi = ROI(lesion=lesion, created_by=user if user and user.is_authenticated else None, **cleaned)
    if roi.is_reference:
        _unmark_previous_reference(lesion.pk, roi.phase, user)
    roi.save()
    audit_created(user, roi, ROI_FIELDS)
    return roi


@transaction.atomic
def update_roi(roi, user, **values) -> ROI:
    """Change an ROI; the full set of values is validated again."""
    if "lesion" in values and values["lesion"] not in (roi.lesion_id, roi.lesion):
        raise Invalid(
            "an ROI cannot move to another lesion; delete it and draw a new one", "lesion"
        )
    values.pop("lesion", None)
    current = {
        "series": roi.series,
        "sop_instance_uid": roi.sop_instance_uid,
        "frame_number": roi.frame_number,
        "tool": roi.tool,
        "points": roi.points,
        "stats": roi.stats,
        "is_reference": roi.is_reference,
    }
    cleaned = _check_roi(roi.lesion, {**current, **values})
    cleaned["series_id"] = cleaned.pop("series").pk
    if cleaned["is_reference"]:
        _unmark_previous_reference(roi.lesion_id, cleaned["phase"], user, exclude_pk=roi.pk)
    apply_audited(user, roi, ROI_FIELDS, cleaned)
    return roi


@transaction.atomic
def delete_roi(roi, user):
    audit_deleted(user, roi, ROI_FIELDS)
    roi.delete()


def create_lesion_with_reference_rois(
    study, label, side, long_axis_mm, rois_by_phase: dict, user, location=""
) -> Lesion:
    """A lesion and one reference ROI per phase, in one transaction.

    ``rois_by_phase`` maps a phase ("NC", "CM", ...) to the ROI values: ``tool``,
    ``points``, ``sop_instance_uid``, optional ``frame_number`` and ``stats``, and
    ``series`` (a Series or its SeriesInstanceUID; if left out, the study's one
    series of that phase).
    """
    with transaction.atomic():
        lesion = create_lesion(
            study, user, label=label, side=side, location=location, long_axis_mm=long_axis_mm
        )
        for phase, values in rois_by_phase.items():
            values = dict(values)
            if values.get("series") is None:
                candidates = list(study.series.filter(phase=phase)[:2])
                if len(candidates) != 1:
                    raise Invalid(
                        f"the study has {len(candidates) or 'no'} series of phase {phase}; name the series",
                        "series",
                    )
                values["series"] = candidates[0]
            create_roi(lesion, user, phase=phase, is_reference=True, **values)
        return lesion


# --- pathology -------------------------------------------------------------


@transaction.atomic
def set_pathology(
    lesion, subtype, malignant=None, source=Pathology.Source.SURGERY, date=None, user=None
) -> Pathology:
    """Enter or change the lesion's pathology; each change increments ``revision``.

    ``malignant`` follows from ``subtype``; passing a contradicting value is an error
    naming ``malignant``.
    """
    if subtype not in Subtype.values:
        raise Invalid(f"subtype must be one of {', '.join(Subtype.values)}", "subtype")
    implied = is_malignant(subtype)
    if malignant is not None and bool(malignant) != implied:
        raise Invalid(
            f"malignant={str(bool(malignant)).lower()} contradicts subtype {subtype} "
            f"({'malignant' if implied else 'benign'})",
            "malignant",
        )
    if source not in Pathology.Source.values:
        raise Invalid(f"source must be one of {', '.join(Pathology.Source.values)}", "source")
    if isinstance(date, str):
        try:
            date = datetime.date.fromisoformat(date)
        except ValueError:
            raise Invalid("date must be YYYY-MM-DD", "date") from None
    values = {"subtype": subtype, "malignant": implied, "source": source, "date": date}
    existing = Pathology.objects.select_for_update().filter(lesion=lesion).first()
    if existing is None:
        pathology = Pathology.objects.create(
            lesion=lesion, entered_by=user if user and user.is_authenticated else None, **values
        )
        audit_created(user, pathology, PATHOLOGY_FIELDS)
        return pathology
    before = snapshot(existing, ["subtype", "malignant", "source", "date"])
    if before != {k: json_value(v) for k, v in values.items()}:
        values["revision"] = existing.revision + 1
        values["entered_by"] = user if user and user.is_authenticated else None
        apply_audited(user, existing, PATHOLOGY_FIELDS, values)
    return existing
