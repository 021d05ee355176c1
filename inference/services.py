"""Starting, cancelling and sweeping training runs; storing and activating models; enqueuing scoring.

Shared by the API, the models page, the management commands and the tasks, for
every model family. No TensorFlow here: the tasks train and score, and store what they
made through here (a trained ModelVersion with its Predictions, final scores, heat maps).
Tasks are enqueued with ``transaction.on_commit`` and primary keys as keyword arguments.
"""

import logging
import os
import re
import shutil
import socket
import tempfile
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.audit import audit
from annotations.models import AuditEvent

from . import datasets
from .experiments import get_experiment
from .models import (
    HeatMap,
    ModelFamily,
    ModelVersion,
    PendingScoring,
    Prediction,
    PredictionKind,
    RunState,
    TrainingRun,
    heartbeat_timeout_minutes,
)

logger = logging.getLogger(__name__)

# A lesion's pending scoring mark older than the debounce plus this is re-sent (dispatch_waiting_scoring).
SCORING_RESEND_AFTER_S = 120


class RunAlreadyLive(Exception):
    """A variant already has a queued or running run (``run``); the message names it. The API answers 409."""

    def __init__(self, run):
        super().__init__(
            f"{run.experiment_name}/{run.variant} already has a {run.state} training run (run {run.pk}); "
            f"wait for it to finish or cancel it first (one queued or running run per experiment and variant)"
        )
        self.run = run


def _live_run(experiment_name, variant):
    return TrainingRun.objects.filter(
        experiment_name=experiment_name,
        variant=variant,
        state__in=[RunState.QUEUED, RunState.RUNNING],
    ).first()


def start_training(user, experiment_name, variants=None, overrides=None, enqueue=True):
    """Create one queued TrainingRun per variant (all variants when ``variants`` is empty) and enqueue ``train``.

    Raises :class:`inference.experiments.ExperimentError` for an unknown experiment,
    variant or an override out of bounds (:class:`~inference.experiments.OverrideError`),
    and :class:`RunAlreadyLive` when one of the variants has a queued or running run
    (nothing is created then). Each start is audited.
    """
    experiment = get_experiment(experiment_name, overrides)
    names = list(variants) if variants else experiment.variant_names
    for name in names:
        experiment.variant(name)
    runs = []
    by = user.get_username() if user is not None and user.is_authenticated else "command line"
    with transaction.atomic():
        for name in names:
            live = _live_run(experiment.name, name)
            if live is not None:
                raise RunAlreadyLive(live)
            try:
                with transaction.atomic():
                    run = TrainingRun.objects.create(
                        created_by=user if user is not None and user.is_authenticated else None,
                        experiment_name=experiment.name,
                        experiment=experiment.as_dict(),
                        variant=name,
                        celery_task_id=str(uuid.uuid4()),
                        progress={"stage": "queued"},
                    )
            except IntegrityError:  # another request queued one at the same moment
                raise RunAlreadyLive(_live_run(experiment.name, name)) from None
            run.append_log(f"queued by {by}")
            run.save(update_fields=["log"])
            audit(
                user,
                AuditEvent.Action.START,
                run,
                {
                    "experiment": experiment.name,
                    "variant": name,
                    "overrides": overrides or {},
                    "by": by,
                },
            )
            runs.append(run)
            if enqueue:
                transaction.on_commit(lambda run=run: _enqueue_train(run))
    return runs


class TaskQueueUnavailable(Exception):
    """The broker (Redis) refused a task; the message says what was kept. The API answers 503."""

    def __init__(self, message, runs=()):
        super().__init__(message)
        self.runs = list(runs)


def _enqueue_train(run):
    """Send ``train`` for ``run``; when the broker is unreachable the run waits for :func:`dispatch_waiting_runs`.

    A waiting run is a queued run without a task id (the committed row is the outbox):
    nothing is lost while Redis is down, and the caller gets :class:`TaskQueueUnavailable`.
    """
    from kombu.exceptions import OperationalError

    from .tasks import train

    try:
        train.apply_async(kwargs={"training_run_pk": run.pk}, task_id=run.celery_task_id)
    except OperationalError as error:
        logger.warning("training run %s waits for the task queue: %s", run.pk, error)
        TrainingRun.objects.filter(pk=run.pk, celery_task_id=run.celery_task_id).update(
            celery_task_id=""
        )
        run.append_log(
            "the task queue (Redis) was unreachable; the run waits and is sent when it is back"
        )
        run.save(update_fields=["log"])
        raise TaskQueueUnavailable(
            f"the task queue (Redis) is unreachable: training run {run.pk} is saved as queued and is sent "
            "to a worker as soon as the queue is back (within a minute); do not start it again",
            [run],
        ) from error


def dispatch_waiting_runs():
    """Send ``train`` for every queued run that has no task id (its first send failed); returns their keys.

    Run every minute by celery beat (``inference.tasks.dispatch_waiting_runs``). Each run
    is locked while its message is sent and its new task id saved; a failed send leaves it
    waiting for the next call. The ``train`` status guard makes a message sent twice harmless.
    """
    from kombu.exceptions import OperationalError

    from .tasks import train

    sent = []
    waiting = TrainingRun.objects.filter(
        state=RunState.QUEUED, celery_task_id="", cancel_requested=False
    )
    for pk in waiting.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            run = waiting.select_for_update(skip_locked=True).filter(pk=pk).first()
            if run is None:
                continue
            run.celery_task_id = str(uuid.uuid4())
            try:
                train.apply_async(kwargs={"training_run_pk": run.pk}, task_id=run.celery_task_id)
            except OperationalError as error:
                logger.warning("training runs still wait for the task queue: %s", error)
                break
            run.append_log("sent to the task queue")
            run.save(update_fields=["celery_task_id", "log"])
        sent.append(pk)
    if sent:
        logger.info("sent waiting training runs: %s", sent)
    return sent


def request_cancel(run, user=None):
    """Cancel a queued run at once; ask a running one to stop after its epoch (CNN) or fold (radiomics).

    A cancel of a queued or running run is audited (who); a finished run is left as it is.
    """
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        before = run.state
        by = f" by {user.get_username()}" if user is not None and user.is_authenticated else ""
        if run.state == RunState.QUEUED:
            run.state = RunState.CANCELLED
            run.finished_at = timezone.now()
            run.append_log(f"cancelled before it started{by}")
        elif run.state == RunState.RUNNING:
            run.cancel_requested = True
            step = "fold" if run.experiment.get("family") == ModelFamily.RADIOMICS else "epoch"
            run.append_log(f"cancel requested{by}; stops after the current {step}")
        run.save()
        if before in (RunState.QUEUED, RunState.RUNNING):
            changes = {"state": [before, run.state], "cancel_requested": run.cancel_requested}
            audit(user, AuditEvent.Action.CANCEL, run, changes)
    return run


def worker_identity():
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_gone(run) -> bool:
    """True when the process recorded in ``run.worker`` is on this host and no longer alive (or is us)."""
    host, _, pid = run.worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True  # this process is not running it now, so an earlier attempt here died or was interrupted
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def fail_run(run, reason):
    """Mark ``run`` failed with ``reason`` (saved)."""
    run.state = RunState.FAILED
    run.error = reason
    run.finished_at = timezone.now()
    run.append_log(f"failed: {reason}")
    run.save()


def sweep_stale_runs(minutes=None):
    """Mark running runs whose heartbeat is older than ``minutes`` failed; returns their primary keys."""
    minutes = heartbeat_timeout_minutes() if minutes is None else minutes
    swept = []
    for pk in TrainingRun.objects.stale(minutes).values_list("pk", flat=True):
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(pk=pk)
            if run.state == RunState.RUNNING and run in TrainingRun.objects.stale(minutes):
                fail_run(run, f"worker lost: no heartbeat for more than {minutes} minutes")
                swept.append(pk)
    if swept:
        logger.warning("marked stale training runs failed: %s", swept)
    return swept


def next_version_number(experiment_name, variant):
    last = (
        ModelVersion.objects.filter(experiment_name=experiment_name, variant=variant)
        .order_by("-version")
        .first()
    )
    return 1 if last is None else last.version + 1


def activate(version, user=None):
    """Make ``version`` the active model of its experiment and variant, and score every lesion.

    The active model is the one that scores new lesions. Models of other experiments stay
    active: a CM radiomics model does not replace a CM CNN.
    """
    with transaction.atomic():
        replaced = list(
            ModelVersion.objects.filter(
                experiment_name=version.experiment_name, variant=version.variant, is_active=True
            )
            .exclude(pk=version.pk)
            .values_list("pk", flat=True)
        )
        _deactivate_others(version)
        version.is_active = True
        version.activated_at = timezone.now()
        version.activated_by = user if user is not None and user.is_authenticated else None
        version.save()
        audit(
            user,
            AuditEvent.Action.ACTIVATE,
            version,
            {"model": str(version), "deactivated": replaced},
        )
        transaction.on_commit(lambda: enqueue_scoring(version.pk, None))
    return version


def _deactivate_others(version):
    ModelVersion.objects.filter(
        experiment_name=version.experiment_name, variant=version.variant, is_active=True
    ).exclude(pk=version.pk).update(is_active=False)


def save_artifact(save, experiment_name, variant, stem, suffix):
    """Store a model file: ``save(path) -> sha256`` writes it to a temporary path, then it goes into storage.

    The storage name is ``models/<experiment>/<variant>/<stem>-<sha256[:12]><suffix>``;
    returns (storage name, sha256).
    """
    folder = "/".join(
        re.sub(r"[^A-Za-z0-9_-]+", "-", part) for part in ("models", experiment_name, variant)
    )
    workdir = tempfile.mkdtemp(prefix="model-")
    try:
        path = os.path.join(workdir, "model" + suffix)
        sha256 = save(path)
        with open(path, "rb") as handle:
            stored = default_storage.save(f"{folder}/{stem}-{sha256[:12]}{suffix}", File(handle))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return stored, sha256


def register_model_version(
    *,
    experiment,
    variant,
    artifact,
    artifact_sha256,
    metrics,
    training_data,
    predictions=(),
    training_run=None,
    activate=False,
):
    """Store a trained model in the registry: a ModelVersion and its Predictions, in one transaction.

    ``experiment`` is the resolved :class:`inference.experiments.Experiment`, ``variant``
    its :class:`~inference.experiments.Variant`; the version number is the next one of
    the experiment and variant. ``predictions`` are Prediction fields (``lesion_id``,
    ``kind``, ``fold``, ``score``, ``in_training_data``). With ``activate`` the version
    becomes the active model of its experiment and variant (others are deactivated);
    nothing is enqueued: the caller decides what gets scored.
    """
    with transaction.atomic():
        version = ModelVersion(
            training_run=training_run,
            experiment_name=experiment.name,
            experiment=experiment.as_dict(),
            family=experiment.family,
            variant=variant.name,
            phases=list(variant.phases),
            builder=experiment.model_builder,
            version=next_version_number(experiment.name, variant.name),
            metrics=metrics,
            artifact=artifact,
            artifact_sha256=artifact_sha256,
            training_data=training_data,
            is_active=activate,
            activated_at=timezone.now() if activate else None,
        )
        if activate:
            _deactivate_others(version)
        version.save()
        Prediction.objects.bulk_create(
            [Prediction(model_version=version, **fields) for fields in predictions]
        )
    return version


class RunCancelled(Exception):
    """The run was cancelled, or left ``running`` while it trained (the message says when)."""


def store_trained_version(
    run,
    *,
    experiment,
    variant,
    data,
    excluded,
    result,
    metrics,
    artifact,
    artifact_sha256,
    progress,
    timings,
):
    """Store a finished run's ModelVersion, Predictions and final state, in one transaction.

    ``data`` is the run's :mod:`inference.datasets` patches or features (lesions, patients,
    labels, pathology revisions), ``result`` its cross-validation (folds, out-of-fold and
    final scores), ``progress`` and ``timings`` what the run reports. Raises
    :class:`RunCancelled` (and deletes the artifact) when the run left ``running`` meanwhile.
    The first model of its experiment and variant is activated and scores every other
    lesion it can read; a first CNN also gets the heat maps of the lesions it trained on.
    """
    with transaction.atomic():
        current = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if current.state != RunState.RUNNING:
            default_storage.delete(artifact)
            raise RunCancelled(f"the run was {current.state} before its model was stored")
        first = not ModelVersion.objects.filter(
            experiment_name=run.experiment_name, variant=run.variant, is_active=True
        ).exists()
        predictions = []
        for index, lesion_id in enumerate(data.lesion_ids):
            predictions.append(
                {
                    "lesion_id": lesion_id,
                    "kind": PredictionKind.OUT_OF_FOLD,
                    "fold": int(result.folds[index]),
                    "score": float(result.oof_scores[index]),
                    "in_training_data": False,
                }
            )
            predictions.append(
                {
                    "lesion_id": lesion_id,
                    "kind": PredictionKind.FINAL,
                    "score": float(result.final_scores[index]),
                    "in_training_data": True,
                }
            )
        version = register_model_version(
            experiment=experiment,
            variant=variant,
            artifact=artifact,
            artifact_sha256=artifact_sha256,
            metrics=metrics,
            training_run=current,
            predictions=predictions,
            activate=first,
            training_data={
                "lesions": [
                    {
                        "lesion": lid,
                        "patient": pid,
                        "pathology_revision": rev,
                        "malignant": bool(label),
                        "fold": int(fold),
                    }
                    for lid, pid, rev, label, fold in zip(
                        data.lesion_ids,
                        data.patient_ids,
                        data.pathology_revisions,
                        data.labels,
                        result.folds,
                    )
                ],
                "excluded": excluded,
            },
        )
        progress["stage"] = "done"
        current.progress = progress
        current.state, current.finished_at, current.heartbeat_at = (
            RunState.SUCCEEDED,
            timezone.now(),
            timezone.now(),
        )
        timings["total_s"] = round((current.finished_at - current.started_at).total_seconds(), 3)
        current.timings = timings
        current.append_log(
            f"stored {version} ({artifact}, sha256 {artifact_sha256[:12]})"
            f"{' and activated it' if first else ''}"
        )
        current.save()
        if first and experiment.family == ModelFamily.CNN:
            # the trained lesions' final scores get their heat maps
            trained = list(data.lesion_ids)
            # robust: a send lost while Redis is down costs these maps only (the next activation makes them)
            transaction.on_commit(lambda: enqueue_heat_maps(version.pk, trained), robust=True)
        if first:
            untrained, _ = datasets.lesions_with_phases(variant.phases, require_pathology=False)
            others = [lesion.pk for lesion in untrained if lesion.pk not in set(data.lesion_ids)]
            if others:
                transaction.on_commit(lambda: enqueue_scoring(version.pk, others))
    return version


def store_final_score(version, lesion, score) -> Prediction:
    """Store (replace) ``version``'s final-model ``score`` of ``lesion``; idempotent.

    The row says whether the model trained on the lesion as it is now
    (:meth:`inference.models.ModelVersion.trained_on`).
    """
    prediction, _ = Prediction.objects.update_or_create(
        model_version=version,
        lesion=lesion,
        kind=PredictionKind.FINAL,
        defaults={"score": score, "in_training_data": version.trained_on(lesion)},
    )
    return prediction


def replace_heat_maps(prediction, lesion, maps, patch) -> list[HeatMap]:
    """Store ``maps`` (:mod:`inference.gradcam` ``LesionHeatMap``) as ``prediction``'s heat maps.

    Each map replaces the prediction's earlier one and is placed on its phase's reference
    ROI slice, in the patch window of the experiment's ``patch``. A window that cannot be
    placed raises ``datasets.PatchError`` or ``ValueError`` before anything is written.
    """
    rows = []
    for heat_map in maps:
        instance, window = datasets.roi_patch_window(
            datasets.reference_roi(lesion, heat_map.phase), patch
        )
        rows.append(
            HeatMap(
                prediction=prediction,
                phase=heat_map.phase,
                method=heat_map.method,
                layer=heat_map.layer[:100],
                series_instance_uid=instance.series.series_instance_uid,
                sop_instance_uid=instance.sop_instance_uid,
                window_row=window.row,
                window_column=window.column,
                window_rows=window.rows,
                window_columns=window.columns,
                shape=list(heat_map.values.shape),
                values=[[round(float(v), 4) for v in row] for row in heat_map.values],
            )
        )
    with transaction.atomic():
        HeatMap.objects.filter(prediction=prediction).delete()
        return HeatMap.objects.bulk_create(rows)


def enqueue_heat_maps(model_version_pk, lesion_pks):
    """Enqueue ``heat_maps`` on the ``gpu`` queue for lesions that already have the version's final score."""
    from .tasks import heat_maps

    heat_maps.apply_async(
        kwargs={"model_version_pk": model_version_pk, "lesion_pks": lesion_pks}, queue="gpu"
    )


def enqueue_scoring(model_version_pk, lesion_pks):
    """Enqueue ``score`` for a model version (``lesion_pks`` None: every lesion it can read)."""
    from .tasks import score

    score.apply_async(kwargs={"model_version_pk": model_version_pk, "lesion_pks": lesion_pks})


def scoring_debounce_seconds() -> float:
    """How long a changed lesion waits before it is scored: saves within it share one task."""
    return float(getattr(settings, "INFERENCE_SCORING_DEBOUNCE_S", 10))


def enqueue_lesion_scoring(lesion_pk, countdown=None):
    """Enqueue ``score_lesion`` for one lesion, to run after the debounce window.

    When the broker is unreachable the save that asked for it still stands: the lesion's
    pending mark stays and :func:`dispatch_waiting_scoring` sends the task later.
    Returns whether the task was sent.
    """
    from kombu.exceptions import OperationalError

    from .tasks import score_lesion

    try:
        score_lesion.apply_async(
            kwargs={"lesion_pk": lesion_pk},
            countdown=scoring_debounce_seconds() if countdown is None else countdown,
        )
    except OperationalError as error:
        logger.warning("scoring of lesion %s waits for the task queue: %s", lesion_pk, error)
        return False
    return True


def dispatch_waiting_scoring(now=None):
    """Send ``score_lesion`` again for lesions pending longer than their task should take; returns their keys.

    A pending mark outlives its task only when the send failed (Redis was down) or the
    message was lost; celery beat runs this every minute (``inference.tasks.dispatch_waiting_scoring``).
    A mark counts as stale ``SCORING_RESEND_AFTER_S`` (120 s) after the debounce; it is
    renewed when sent, so a lesion is sent at most once per that time. Scoring twice is harmless.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=scoring_debounce_seconds() + SCORING_RESEND_AFTER_S)
    sent = []
    for pk in PendingScoring.objects.filter(requested_at__lt=stale_before).values_list(
        "lesion_id", flat=True
    ):
        with transaction.atomic():
            renewed = PendingScoring.objects.filter(
                lesion_id=pk, requested_at__lt=stale_before
            ).update(requested_at=now)
            if not renewed:
                continue
            if not enqueue_lesion_scoring(pk, countdown=0):
                transaction.set_rollback(True)
                break
        sent.append(pk)
    if sent:
        logger.info("sent waiting lesion scoring: %s", sent)
    return sent


def score_changed_lesion(lesion_pk):
    """After a lesion's ROI or pathology was saved: have every active model score it, once per burst of saves.

    The first save marks the lesion pending (:class:`inference.models.PendingScoring`, in
    the saving transaction) and enqueues one ``score_lesion`` task after commit; saves
    while it is pending enqueue nothing, as the task reads the lesion when it runs.
    Returns the active model versions' primary keys (none: nothing is marked).
    """
    versions = list(ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True))
    if not versions:
        return versions
    with transaction.atomic():
        _, created = PendingScoring.objects.get_or_create(lesion_id=lesion_pk)
    if created:
        transaction.on_commit(lambda: enqueue_lesion_scoring(lesion_pk))
    return versions
