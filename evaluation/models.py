"""Cached comparison results, one per reader study, options and input revision."""

from django.db import models

from annotations.models import ReaderStudy


class ComparisonResult(models.Model):
    """The JSON of ``evaluation.stats.comparison.compare`` for one input revision.

    ``revision`` is a hash of everything that entered (calls, pathology revisions,
    lesion sizes, patient age/sex, predictions, the options and the analysis
    version); a result whose revision no longer matches the inputs is stale.
    """

    class State(models.TextChoices):
        PENDING = "pending", "queued"
        RUNNING = "running", "computing"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    reader_study = models.ForeignKey(
        ReaderStudy, on_delete=models.CASCADE, related_name="comparison_results"
    )
    options = models.JSONField(default=dict, help_text="include_unblinded, patient_level")
    revision = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    result = models.JSONField(default=dict, blank=True)
    plots = models.JSONField(
        default=dict, blank=True, help_text="subgroup key -> inline SVG of the ROC plot"
    )
    error = models.TextField(blank=True)
    compute_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reader_study", "revision"], name="one_result_per_revision"
            ),
        ]

    def __str__(self):
        return f"comparison of {self.reader_study_id} at {self.revision[:12]} ({self.state})"
