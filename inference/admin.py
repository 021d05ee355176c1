"""The Django admin of the model registry; every change is audited (annotations.admin.AuditedAdmin)."""

from django.contrib import admin

from annotations.admin import AuditedAdmin

from .models import HeatMap, ModelVersion, Prediction, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(AuditedAdmin):
    list_display = [
        "id",
        "experiment_name",
        "variant",
        "state",
        "created_by",
        "created_at",
        "heartbeat_at",
    ]
    list_filter = ["state", "experiment_name", "variant"]
    readonly_fields = ["progress", "log", "timings", "experiment"]


@admin.register(ModelVersion)
class ModelVersionAdmin(AuditedAdmin):
    list_display = [
        "id",
        "experiment_name",
        "family",
        "variant",
        "version",
        "is_active",
        "created_at",
    ]
    list_filter = ["is_active", "family", "variant"]


@admin.register(Prediction)
class PredictionAdmin(AuditedAdmin):
    list_display = ["model_version", "lesion", "kind", "fold", "score"]
    list_filter = ["kind"]


@admin.register(HeatMap)
class HeatMapAdmin(AuditedAdmin):
    list_display = ["prediction", "phase", "method", "layer", "sop_instance_uid", "created_at"]
    list_filter = ["method", "phase"]
    readonly_fields = ["shape", "values"]
