"""Serializers of the inference API: training runs (with progress), model versions, experiments."""

from rest_framework import serializers

from .experiments import EXPERIMENTS, ExperimentError, OverrideError, get_experiment
from .models import ModelVersion, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField()
    model_version = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "experiment_name",
            "variant",
            "state",
            "cancel_requested",
            "progress",
            "log",
            "error",
            "timings",
            "device",
            "worker",
            "celery_task_id",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "experiment",
            "model_version",
        ]
        read_only_fields = fields


class StartTrainingSerializer(serializers.Serializer):
    """``experiment`` (name, default source-study), ``variant`` (one of its variants), optional ``overrides``
    (bounded: :data:`inference.experiments.OVERRIDE_LIMITS`)."""

    experiment = serializers.ChoiceField(choices=sorted(EXPERIMENTS), default="source-study")
    variant = serializers.CharField(max_length=32)
    overrides = serializers.DictField(required=False, default=dict)

    def validate(self, data):
        try:
            experiment = get_experiment(data["experiment"], data["overrides"])
            experiment.variant(data["variant"])
        except (
            OverrideError
        ) as exc:  # {"overrides": {"epochs": ["epochs: must be from 1 to 500 ..."]}}
            raise serializers.ValidationError({"overrides": {exc.field: [str(exc)]}}) from None
        except ExperimentError as exc:
            raise serializers.ValidationError({"experiment": str(exc)}) from None
        return data


class ModelVersionSerializer(serializers.ModelSerializer):
    activated_by = serializers.StringRelatedField()
    n_training_lesions = serializers.SerializerMethodField()
    trained_on = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "experiment_name",
            "family",
            "variant",
            "phases",
            "builder",
            "version",
            "metrics",
            "artifact_sha256",
            "is_active",
            "activated_at",
            "activated_by",
            "created_at",
            "training_run",
            "n_training_lesions",
            "trained_on",
        ]
        read_only_fields = fields

    def get_n_training_lesions(self, version) -> int:
        return len(version.training_data.get("lesions", []))

    def get_trained_on(self, version) -> str:
        # One line: the OpenAPI schema shows this docstring as the field's description.
        """The training data in words: its recorded source (a model trained outside the archive), else the lesion count."""  # noqa: E501
        return (
            version.training_data.get("source")
            or f"{self.get_n_training_lesions(version)} lesions of this archive"
        )


class FreezeModelSerializer(serializers.Serializer):
    """``PUT /reader-studies/{id}/model/``: the model version the aided session shows."""

    model_version = serializers.IntegerField(help_text="id of a model version")
