"""Celery tasks on the ``gpu`` queue: ``train`` a run, ``score`` lesions, ``score_lesion`` (debounced);
``sweep_stale_runs``.

Each task takes primary keys as keyword arguments, is ``acks_late`` with
``reject_on_worker_lost`` (a worker that dies hands the message back) and starts
with a status guard, so a redelivered or repeated message never trains twice or
creates a second ModelVersion. Both tasks dispatch on the experiment's family: a
``cnn`` run imports Keras inside the task body, a ``radiomics`` run never does
(features by :mod:`inference.radiomics`, a scikit-learn pipeline from
:mod:`inference.radiomics_training` saved with joblib).
Both families store the same rows through :mod:`inference.services` (the tasks write only
the run's progress, log and status guard): a ModelVersion with its artifact, sha256,
metrics and training-data snapshot, out-of-fold and final Predictions, heat maps.
"""

import logging
import os
import shutil
import tempfile
import time

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from portal.celery import task

from . import datasets, services
from .experiments import Experiment
from .models import (
    HEAT_MAP_MAX_SIDE,
    HeatMap,
    ModelFamily,
    ModelVersion,
    PendingScoring,
    Prediction,
    PredictionKind,
    RunState,
    TrainingRun,
)

logger = logging.getLogger(__name__)


class RunReporter:
    """Writes a run's progress, heartbeat and log to its row; says stop when the run was cancelled or taken away."""

    def __init__(self, run_pk, experiment):
        self.run_pk = run_pk
        self.experiment = experiment
        # A radiomics fold is fitted in one step: shown as one "epoch" per fold.
        self.epochs = 1 if experiment.family == ModelFamily.RADIOMICS else experiment.epochs
        self.progress = {
            "stage": "features" if experiment.family == ModelFamily.RADIOMICS else "patches",
            "fold": None,
            "folds": experiment.folds,
            "epoch": 0,
            "epochs": self.epochs,
            "loss": None,
            "fold_auc": {},
            "history": [],
        }
        self._last_write = 0.0

    def _write(self, log_line=None, **fields):
        updates = {"progress": self.progress, "heartbeat_at": timezone.now(), **fields}
        if log_line:
            updates["log"] = Concat(
                F("log"), Value(f"{timezone.now():%Y-%m-%d %H:%M:%S} {log_line}\n")
            )
        TrainingRun.objects.filter(pk=self.run_pk).update(**updates)

    def log(self, message):
        logger.info("training run %s: %s", self.run_pk, message)
        self._write(message)

    def patches_progress(self, done, total):
        self.progress.update(stage="patches", patches_done=done, patches_total=total)
        self._write_now_and_then(done == total)

    def features_progress(self, done, total):
        self.progress.update(stage="features", features_done=done, features_total=total)
        self._write_now_and_then(done == total)

    def _write_now_and_then(self, last):
        if last or time.monotonic() - self._last_write > 2.0:
            self._last_write = time.monotonic()
            self._write()

    def stage_started(self, fold, n_train, n_validation):
        self.progress.update(stage="fold" if fold else "final", fold=fold, epoch=0, loss=None)
        what = f"fold {fold}/{self.experiment.folds}" if fold else "final model"
        self.log(
            f"{what}: training on {n_train} lesions"
            + (f", validating on {n_validation}" if fold else "")
        )

    def epoch_ended(self, fold, epoch, loss, validation_auc):
        self.progress.update(epoch=epoch, loss=loss)
        self.progress["history"].append(
            {"fold": fold or "final", "epoch": epoch, "loss": loss, "val_auc": validation_auc}
        )
        if fold and epoch == self.epochs:
            self.progress["fold_auc"][str(fold)] = validation_auc
        self._write()
        state, cancel = (
            TrainingRun.objects.filter(pk=self.run_pk)
            .values_list("state", "cancel_requested")
            .get()
        )
        return state == RunState.RUNNING and not cancel


def _claim(training_run_pk, task_id):
    """The status guard: move a queued run to running and return it, or return None (nothing to do)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=training_run_pk).first()
        if run is None:
            logger.warning("train: no training run %s (deleted?); nothing to do", training_run_pk)
            return None
        if task_id and run.celery_task_id and task_id != run.celery_task_id:
            logger.warning(
                "train: message %s is not run %s's task %s; ignored",
                task_id,
                run.pk,
                run.celery_task_id,
            )
            return None
        if run.finished:
            logger.info("train: run %s is already %s; redelivery ignored", run.pk, run.state)
            return None
        if run.state == RunState.RUNNING:
            if services.worker_is_gone(run):
                services.fail_run(
                    run,
                    f"worker lost: the process {run.worker} ended during the run (message redelivered)",
                )
            else:
                logger.info(
                    "train: run %s is running on %s; redelivery ignored", run.pk, run.worker
                )
            return None
        if run.cancel_requested:
            run.state, run.finished_at = RunState.CANCELLED, timezone.now()
            run.save()
            return None
        now = timezone.now()
        run.state, run.started_at, run.heartbeat_at = RunState.RUNNING, now, now
        run.worker = services.worker_identity()
        run.append_log(f"started on {run.worker}")
        run.save()
        return run


def _finish(run_pk, state, message, **fields):
    """Set a final state unless the run already left ``running`` (swept or cancelled meanwhile)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_pk)
        if run.state != RunState.RUNNING:
            return run
        run.state, run.finished_at = state, timezone.now()
        for name, value in fields.items():
            setattr(run, name, value)
        run.append_log(message)
        run.save()
        return run


@task("inference.tasks.train", bind=True)
def train(self, *, training_run_pk):
    """Train a queued TrainingRun: k-fold out-of-fold scores, final model, ModelVersion + Predictions."""
    services.sweep_stale_runs()
    run = _claim(training_run_pk, self.request.id)
    if run is None:
        return "nothing to do"
    try:
        experiment = Experiment.from_dict(run.experiment)
        if experiment.family == ModelFamily.RADIOMICS:
            _train_radiomics(run, experiment)
        else:
            _train_cnn(run, experiment)
    except services.RunCancelled as cancelled:
        _finish(run.pk, RunState.CANCELLED, str(cancelled))
    except (
        Exception
    ) as exc:  # the run records why; the task itself succeeds (no retry of a failed training)
        logger.exception("training run %s failed", run.pk)
        _finish(
            run.pk,
            RunState.FAILED,
            f"failed: {type(exc).__name__}: {exc}",
            error=f"{type(exc).__name__}: {exc}",
        )
    return TrainingRun.objects.get(pk=run.pk).state


def _save_artifact(run, save, suffix):
    """``save(path) -> sha256`` into a temporary file, then into storage; returns (storage name, sha256)."""
    return services.save_artifact(save, run.experiment_name, run.variant, f"run{run.pk}", suffix)


def _describe_data(data, excluded) -> str:
    """The log line of a run's training data: lesions, patients, malignant, exclusions."""
    return (
        f"{len(data.lesion_ids)} lesions of {len(set(data.patient_ids))} patients "
        f"({int((data.labels == 1).sum())} malignant); excluded: {excluded or 'none'}"
    )


def _train_cnn(run, experiment):
    from . import training

    variant = experiment.variant(run.variant)
    reporter = RunReporter(run.pk, experiment)
    device = training.describe_devices()
    TrainingRun.objects.filter(pk=run.pk).update(device=device[:200])
    reporter.log(f"device: {device}")
    timings = {}

    started = time.perf_counter()
    lesions, excluded = datasets.lesions_with_phases(variant.phases, require_pathology=True)
    data = datasets.build_lesion_patches(
        lesions, variant.phases, experiment.patch, progress=reporter.patches_progress
    )
    timings["patches_s"] = round(time.perf_counter() - started, 3)
    reporter.log(f"{_describe_data(data, excluded)}; patches {data.patches.shape[1:]}")

    try:
        result = training.cross_validate(
            experiment,
            data.patches,
            data.labels,
            data.patient_ids,
            reporter,
            roi_extent_mm=data.roi_extent_mm,
        )
    except training.TrainingCancelled:
        raise services.RunCancelled("cancelled between epochs") from None
    timings.update(result.timings)
    metrics = result.metrics(data.labels)
    reporter.log(f"out-of-fold AUC {metrics['oof_auc']}")
    stored, sha256 = _save_artifact(
        run, lambda path: training.save_model(result.final_model, path), ".keras"
    )
    return services.store_trained_version(
        run,
        experiment=experiment,
        variant=variant,
        data=data,
        excluded=excluded,
        result=result,
        metrics=metrics,
        artifact=stored,
        artifact_sha256=sha256,
        progress=reporter.progress,
        timings=timings,
    )


def _train_radiomics(run, experiment):
    from . import radiomics_training

    variant = experiment.variant(run.variant)
    reporter = RunReporter(run.pk, experiment)
    TrainingRun.objects.filter(pk=run.pk).update(device=radiomics_training.describe_runtime()[:200])
    reporter.log(f"radiomics: {experiment.radiomics}; {experiment.classifier}")
    timings = {}

    started = time.perf_counter()
    lesions, excluded = datasets.lesions_with_phases(variant.phases, require_pathology=True)
    data = datasets.build_lesion_features(
        lesions, variant.phases, experiment.radiomics, progress=reporter.features_progress
    )
    timings["features_s"] = round(time.perf_counter() - started, 3)
    reporter.log(f"{_describe_data(data, excluded)}; {len(data.feature_names)} features")

    try:
        result = radiomics_training.cross_validate_features(
            data.features,
            data.labels,
            data.patient_ids,
            data.feature_names,
            experiment.classifier,
            experiment.folds,
            experiment.seed,
            reporter,
        )
    except radiomics_training.TrainingCancelled:
        raise services.RunCancelled("cancelled between folds") from None
    timings.update(result.timings)
    metrics = result.metrics(data.labels)
    reporter.log(
        f"out-of-fold AUC {metrics['oof_auc']}; final model's features {result.selected_features}"
    )
    artifact = radiomics_training.RadiomicsModel(
        result.final_model, data.feature_names, tuple(variant.phases)
    )
    stored, sha256 = _save_artifact(run, artifact.save, ".joblib")
    return services.store_trained_version(
        run,
        experiment=experiment,
        variant=variant,
        data=data,
        excluded=excluded,
        result=result,
        metrics=metrics,
        artifact=stored,
        artifact_sha256=sha256,
        progress=reporter.progress,
        timings=timings,
    )


_MODEL_CACHE = {}


def load_version_model(version):
    """The model of a ModelVersion: a Keras model, or a :class:`inference.radiomics_training.RadiomicsModel`.

    The artifact's sha256 is checked against the recorded one before it is loaded;
    models are cached per process by checksum.
    """
    if version.artifact_sha256 not in _MODEL_CACHE:
        radiomics_family = version.family == ModelFamily.RADIOMICS
        suffix = ".joblib" if radiomics_family else ".keras"
        workdir = tempfile.mkdtemp(prefix="model-")
        try:
            path = os.path.join(workdir, "model" + suffix)
            with version.artifact.open("rb") as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target)
            if len(_MODEL_CACHE) >= 4:
                _MODEL_CACHE.clear()
            if radiomics_family:
                from .radiomics_training import RadiomicsModel

                model = RadiomicsModel.load(path, version.artifact_sha256)
            else:
                from . import training

                model = training.load_model(path, version.artifact_sha256)
            _MODEL_CACHE[version.artifact_sha256] = model
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return _MODEL_CACHE[version.artifact_sha256]


def _lesion_scorer(version, experiment):
    """``score(lesion) -> float`` with the version's final model.

    The scorer raises PatchError/FeatureError for a lesion it cannot read.
    """
    model = load_version_model(version)
    if version.family == ModelFamily.RADIOMICS:
        return lambda lesion: model.predict(
            [datasets.lesion_features(lesion, version.phases, experiment.radiomics)]
        )[0]
    from . import training

    def score_patches(lesion):
        patches = datasets.lesion_patches(lesion, version.phases, experiment.patch)
        return training.predict_lesions(
            model, patches[None], experiment.batch_size, experiment.test_time_augmentation
        )[0]

    return score_patches


def score_lesions(version, lesion_pks=None) -> int:
    """Final-model scores of ``version`` for lesions (``None``: all with ROIs on its phases); idempotent.

    Returns how many lesions were scored; a lesion the model cannot read is logged and skipped.
    """
    lesions, _ = datasets.lesions_with_phases(
        version.phases, require_pathology=False, lesion_ids=lesion_pks
    )
    if not lesions:
        return 0
    scorer = _lesion_scorer(version, Experiment.from_dict(version.experiment))
    scored = 0
    for lesion in lesions:
        try:
            value = float(scorer(lesion))
        except (datasets.PatchError, datasets.FeatureError) as exc:
            logger.warning("score: %s", exc)
            continue
        prediction = services.store_final_score(version, lesion, value)
        if version.family == ModelFamily.CNN:
            make_heat_maps(version, prediction, lesion)
        scored += 1
    return scored


def make_heat_maps(version, prediction, lesion) -> list[HeatMap]:
    """Compute and store (replace) the per-phase heat maps of a CNN's final-model ``prediction``.

    Grad-CAM on the last convolutional block, or occlusion sensitivity for a model
    without one (:mod:`inference.gradcam`); each map is placed on its phase's ROI slice
    (:func:`inference.services.replace_heat_maps`). A lesion whose maps cannot be made is
    logged and keeps its score.
    """
    from .gradcam import lesion_heat_maps

    experiment = Experiment.from_dict(version.experiment)
    try:
        patches = datasets.lesion_patches(lesion, version.phases, experiment.patch)
        maps = lesion_heat_maps(
            load_version_model(version), patches, version.phases, HEAT_MAP_MAX_SIDE
        )
        return services.replace_heat_maps(prediction, lesion, maps, experiment.patch)
    except (datasets.PatchError, ValueError) as exc:
        logger.warning("heat maps of lesion %s with %s: %s", lesion.pk, version, exc)
        return []


@task("inference.tasks.heat_maps")
def heat_maps(*, model_version_pk, lesion_pks):
    """Heat maps of a CNN version's stored final scores (the lesions it trained on, scored during training).

    Scores are left as they are; a repeated message recomputes the same maps. Returns how
    many lesions got maps.
    """
    version = ModelVersion.objects.filter(pk=model_version_pk, family=ModelFamily.CNN).first()
    if version is None:
        return 0
    lesions, _ = datasets.lesions_with_phases(
        version.phases, require_pathology=False, lesion_ids=lesion_pks
    )
    predictions = {
        p.lesion_id: p
        for p in Prediction.objects.filter(
            model_version=version, kind=PredictionKind.FINAL, lesion_id__in=lesion_pks
        )
    }
    stored = [
        make_heat_maps(version, predictions[lesion.pk], lesion)
        for lesion in lesions
        if lesion.pk in predictions
    ]
    return sum(bool(maps) for maps in stored)


@task("inference.tasks.score")
def score(*, model_version_pk, lesion_pks=None):
    """Final-model scores of lesions (``None``: every lesion with ROIs on the model's phases); idempotent."""
    version = ModelVersion.objects.filter(pk=model_version_pk).first()
    if version is None:
        return 0
    return score_lesions(version, lesion_pks)


@task("inference.tasks.score_lesion")
def score_lesion(*, lesion_pk):
    """Score one changed lesion with every active model (debounced: ``services.score_changed_lesion``).

    The lesion's pending mark is removed first, so a save from now on queues the next
    task; a redelivered message scores again (idempotent). Returns {model version: scored}.
    """
    PendingScoring.objects.filter(lesion_id=lesion_pk).delete()
    active = ModelVersion.objects.filter(is_active=True)
    return {version.pk: score_lesions(version, [lesion_pk]) for version in active}


@task("inference.tasks.sweep_stale_runs")
def sweep_stale_runs(minutes=None):
    """Mark running runs without a recent heartbeat failed (run it periodically, e.g. from celery beat)."""
    return services.sweep_stale_runs(minutes)


@task("inference.tasks.dispatch_waiting_scoring")
def dispatch_waiting_scoring():
    """Send the lesion scoring whose first send failed (Redis was down); celery beat runs it every minute."""
    return services.dispatch_waiting_scoring()


@task("inference.tasks.dispatch_waiting_runs")
def dispatch_waiting_runs():
    """Send the queued runs whose first send failed (Redis was down); celery beat runs it every minute."""
    return services.dispatch_waiting_runs()
