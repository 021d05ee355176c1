"""CNN models, patch datasets, training and scoring tasks, the model registry."""

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"

    def ready(self):
        from . import signals  # noqa: F401  (connects the receivers; imports no TensorFlow)
