"""The model registry: training runs, model versions (artifacts + metrics), predictions.

No TensorFlow here: the web process imports this module.
"""

from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotations.models import Lesion, ReaderStudy


class RunState(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


FINISHED_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


class ModelFamily(models.TextChoices):
    CNN = "cnn", "CNN"
    RADIOMICS = "radiomics", "radiomics"


class TrainingRunQuerySet(models.QuerySet):
    def stale(self, minutes=None, now=None):
        """Running runs whose worker has not written a heartbeat for ``minutes`` (default: settings)."""
        minutes = heartbeat_timeout_minutes() if minutes is None else minutes
        cutoff = (now or timezone.now()) - timedelta(minutes=minutes)
        return self.filter(state=RunState.RUNNING).filter(
            Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
        )


def heartbeat_timeout_minutes():
    return getattr(settings, "INFERENCE_HEARTBEAT_TIMEOUT_MINUTES", 15)


class TrainingRun(models.Model):
    """One training of one experiment variant: patient-grouped k-fold, then a final model on all lesions."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    experiment_name = models.CharField(max_length=100)
    experiment = models.JSONField(
        help_text="the resolved experiment (inference.experiments.Experiment.as_dict())"
    )
    variant = models.CharField(max_length=32)
    state = models.CharField(
        max_length=10, choices=RunState.choices, default=RunState.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    progress = models.JSONField(
        default=dict, blank=True, help_text="fold, epoch, loss, per-fold validation AUC, history"
    )
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="seconds per stage")
    device = models.CharField(max_length=200, blank=True)
    worker = models.CharField(
        max_length=200, blank=True, help_text="host:pid of the process that ran it"
    )
    celery_task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one queued or running run per experiment and variant (services.start_training).
            models.UniqueConstraint(
                fields=["experiment_name", "variant"],
                condition=Q(state__in=["queued", "running"]),
                name="one_live_run_per_experiment_variant",
            ),
        ]

    def __str__(self):
        return f"run {self.pk} {self.experiment_name}/{self.variant} {self.state}"

    @property
    def finished(self):
        return self.state in FINISHED_STATES

    def append_log(self, line):
        """Append a time-stamped line to the log (in memory; the caller saves)."""
        self.log += f"{timezone.now():%Y-%m-%d %H:%M:%S} {line}\n"


class ModelVersion(models.Model):
    """A trained model: final artifact, out-of-fold metrics and the data it was trained on.

    One version per experiment and variant is active (it scores new lesions); a CM CNN
    and a CM radiomics model are different experiments, so both can be active.
    """

    training_run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version"
    )
    experiment_name = models.CharField(max_length=100)
    experiment = models.JSONField()
    family = models.CharField(max_length=10, choices=ModelFamily.choices, default=ModelFamily.CNN)
    variant = models.CharField(max_length=32)
    phases = models.JSONField(
        help_text="phases it reads, in order (stacked as channels, or concatenated features)"
    )
    builder = models.CharField(max_length=50, help_text="Keras builder, or radiomics-<classifier>")
    version = models.PositiveIntegerField(help_text="1, 2, ... per experiment and variant")
    metrics = models.JSONField(default=dict, help_text="out-of-fold AUC, per-fold AUC, counts")
    artifact = models.FileField(
        max_length=200, help_text="final model (all lesions): .keras file, or .joblib for radiomics"
    )
    artifact_sha256 = models.CharField(max_length=64)
    training_data = models.JSONField(
        default=dict, help_text="lesion ids, pathology revisions, fold of each lesion"
    )
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment_name", "variant", "version"], name="one_version_number"
            ),
            models.UniqueConstraint(
                fields=["experiment_name", "variant"],
                condition=Q(is_active=True),
                name="one_active_model_per_experiment_variant",
            ),
        ]

    def __str__(self):
        return f"{self.experiment_name}/{self.variant} v{self.version}"

    @cached_property
    def _trained_pathology_revisions(self):
        return {e["lesion"]: e["pathology_revision"] for e in self.training_data.get("lesions", [])}

    def trained_on(self, lesion) -> bool:
        """True when the final model was trained on ``lesion`` with the pathology it has now.

        Its final score of such a lesion is not a held-out score; a lesion whose pathology
        was revised since counts as unseen.
        """
        pathology = getattr(lesion, "pathology", None)
        revisions = self._trained_pathology_revisions
        return lesion.pk in revisions and revisions[lesion.pk] == (
            pathology.revision if pathology else None
        )


class PredictionKind(models.TextChoices):
    OUT_OF_FOLD = "out_of_fold", "out of fold (model never saw the patient)"
    FINAL = "final", "final model"


class Prediction(models.Model):
    """A model's probability of malignancy for a lesion.

    ``out_of_fold`` scores (with their ``fold``) are the ones compared with readers;
    ``final`` scores come from the final model (lesions it trained on, or new ones).
    """

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="predictions"
    )
    lesion = models.ForeignKey(Lesion, on_delete=models.CASCADE, related_name="predictions")
    kind = models.CharField(max_length=12, choices=PredictionKind.choices)
    fold = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="1..k for out-of-fold scores"
    )
    score = models.FloatField()
    in_training_data = models.BooleanField(
        default=False, help_text="the final model trained on this lesion"
    )
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_version_id", "lesion_id", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "lesion", "kind"], name="one_prediction_per_kind"
            )
        ]


class PendingScoring(models.Model):
    """A lesion whose ROI or pathology changed, waiting for its scoring task: one row and one task per lesion.

    The row is written in the transaction that saved the change; only the save that
    creates it enqueues :func:`inference.tasks.score_lesion` (after commit, with a
    countdown). The task deletes the row before it reads the lesion, so a burst of saves
    becomes one task, and a save after the task began queues the next one.
    """

    lesion = models.OneToOneField(Lesion, on_delete=models.CASCADE, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)


class HeatMapMethod(models.TextChoices):
    GRAD_CAM = "grad_cam", "Grad-CAM on the last convolutional block (Selvaraju et al. 2017)"
    OCCLUSION = "occlusion", "occlusion sensitivity (Zeiler & Fergus 2014)"


# The largest map stored (rows, columns): Grad-CAM maps are as coarse as the last block's
# feature map, occlusion maps as coarse as their grid; larger ones are resampled down.
HEAT_MAP_MAX_SIDE = 64


class HeatMap(models.Model):
    """What drove a final-model score on one phase: a 2-D map over the patch the model saw.

    A derived object of the Prediction (no pixels are added to the archive). ``values``
    are ``shape[0]`` rows of ``shape[1]`` floats in [0, 1] (at most
    :data:`HEAT_MAP_MAX_SIDE` a side); they cover the image window ``window_row``,
    ``window_column`` (top-left edge), ``window_rows`` by ``window_columns`` of the
    instance ``sop_instance_uid``, in image pixel units with the image spanning
    ``[0, Rows] x [0, Columns]`` (pixel ``i`` covers ``i .. i + 1``).
    """

    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="heat_maps")
    phase = models.CharField(max_length=8)
    method = models.CharField(max_length=12, choices=HeatMapMethod.choices)
    layer = models.CharField(
        max_length=100, blank=True, help_text="Grad-CAM: the layer whose activations it weighs"
    )
    series_instance_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64)
    window_row = models.FloatField()
    window_column = models.FloatField()
    window_rows = models.FloatField()
    window_columns = models.FloatField()
    shape = models.JSONField(help_text="[rows, columns] of values")
    values = models.JSONField(help_text="rows of floats in [0, 1]")
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["prediction_id", "phase"]
        constraints = [
            models.UniqueConstraint(
                fields=["prediction", "phase"], name="one_heat_map_per_prediction_phase"
            )
        ]

    def __str__(self):
        return f"heat map {self.phase} of prediction {self.prediction_id} ({self.method})"


class ReaderStudyModel(models.Model):
    """The model version a reader study shows its readers in the aided session, frozen by the coordinator.

    A retrain or another activation during the study does not change it; the comparison
    names it. (In the inference app: annotations may not import inference.)
    """

    reader_study = models.OneToOneField(
        ReaderStudy, on_delete=models.CASCADE, related_name="frozen_model"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="reader_studies"
    )
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.reader_study} shows {self.model_version}"
