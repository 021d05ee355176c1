"""The model a reader study shows in its aided session: freezing it, and what aided readers see of it.

Apart from :mod:`inference.services` (training runs, the model registry, scoring) because
this is the reader study's side of the registry: one frozen version per reader study,
audited and fixed once aided calls exist, and the probability an aided reader is shown.
Who may see that output is decided in ``annotations.access.may_see_model_output``.
"""

from django.db import transaction

from annotations.audit import audit
from annotations.errors import Conflict, Invalid
from annotations.models import AuditEvent, ReaderCall, Session

from .models import ModelVersion, Prediction, PredictionKind, ReaderStudyModel


def frozen_model_version(reader_study):
    """The model version ``reader_study`` shows aided readers, or None when none is frozen."""
    frozen = (
        ReaderStudyModel.objects.filter(reader_study=reader_study)
        .select_related("model_version")
        .first()
    )
    return frozen.model_version if frozen else None


@transaction.atomic
def freeze_model_version(reader_study, model_version_pk, user=None) -> ModelVersion:
    """Freeze the model version ``reader_study`` shows in its aided session (audited).

    :class:`Invalid` (field ``model_version``) for an unknown version; :class:`Conflict`
    when aided calls exist and another version would replace the one they saw.
    """
    if isinstance(model_version_pk, bool) or not isinstance(model_version_pk, int):
        raise Invalid("model_version must be the id of a model version", "model_version")
    version = ModelVersion.objects.filter(pk=model_version_pk).first()
    if version is None:
        raise Invalid(f"no model version {model_version_pk}", "model_version")
    frozen = ReaderStudyModel.objects.select_for_update().filter(reader_study=reader_study).first()
    old = frozen.model_version if frozen else None
    if old == version:
        return version
    aided = ReaderCall.objects.filter(reader_study=reader_study, session=Session.AIDED)
    if old is not None and aided.exists():
        raise Conflict(
            f"aided readers have already seen {old} in reader study {reader_study.name!r}; the frozen model "
            "cannot change during the study",
            "model_version",
        )
    if frozen is None:
        frozen = ReaderStudyModel(reader_study=reader_study)
    frozen.model_version, frozen.set_by = (
        version,
        user if user is not None and user.is_authenticated else None,
    )
    frozen.save()
    audit(
        user,
        AuditEvent.Action.UPDATE,
        reader_study,
        {
            "frozen_model": [str(old) if old else None, str(version)],
            "model_version": [getattr(old, "pk", None), version.pk],
        },
    )
    return version


def model_version_dict(version) -> dict:
    return {
        "id": version.pk,
        "name": str(version),
        "experiment": version.experiment_name,
        "family": version.family,
        "variant": version.variant,
        "version": version.version,
    }


def aided_model_output(reader_study, lesion) -> dict:
    """The frozen model's probability of malignancy for ``lesion`` (who may see it: ``access.may_see_model_output``).

    The held-out score (out-of-fold, from the fold model that never saw the patient) where there
    is one, else the final model's score. :class:`Conflict` without a frozen model,
    ``LookupError`` when the model has not scored the lesion.
    """
    version = frozen_model_version(reader_study)
    if version is None:
        raise Conflict(
            f"no model version is frozen for reader study {reader_study.name!r}; a coordinator sets one"
        )
    predictions = {
        p.kind: p for p in Prediction.objects.filter(model_version=version, lesion=lesion)
    }
    prediction = predictions.get(PredictionKind.OUT_OF_FOLD) or predictions.get(
        PredictionKind.FINAL
    )
    if prediction is None:
        raise LookupError(f"{version} has not scored lesion {lesion.pk} yet")
    return {
        "reader_study": reader_study.pk,
        "lesion": lesion.pk,
        "probability": prediction.score,
        "probability_percent": round(100 * prediction.score),
        "score_kind": prediction.kind,
        "model_version": model_version_dict(version),
    }
