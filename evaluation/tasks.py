"""Celery task: compute a reader study's comparison and cache it (default queue)."""

from annotations.models import ReaderStudy
from portal.celery import task

from . import services
from .inputs import ComparisonOptions, default_plan_effect, gather_inputs
from .models import ComparisonResult


@task("evaluation.tasks.compute_comparison")
def compute_comparison(
    *,
    reader_study_pk: int,
    include_unblinded: bool = False,
    patient_level: str = "auto",
    effect: float | None = None,
):
    """Compute and store the comparison for the reader study's current inputs.

    A second run for inputs whose result is already stored is a no-op; if the
    inputs changed since the task was queued, the current inputs are computed.
    ``effect`` is the AUC difference the next study is planned for (None: the setting).
    """
    reader_study = ReaderStudy.objects.filter(pk=reader_study_pk).first()
    if reader_study is None:
        return None
    options = ComparisonOptions(
        include_unblinded=include_unblinded,
        patient_level=patient_level,
        effect=default_plan_effect() if effect is None else effect,
    )
    inputs = gather_inputs(reader_study, options)
    done = ComparisonResult.objects.filter(
        reader_study=reader_study, revision=inputs.revision, state=ComparisonResult.State.DONE
    ).first()
    if done is not None:
        return done.pk
    ComparisonResult.objects.filter(reader_study=reader_study, revision=inputs.revision).update(
        state=ComparisonResult.State.RUNNING
    )
    return services.store_result(inputs).pk
