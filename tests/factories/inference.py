"""Model registry rows (versions, predictions), heat maps placed as the worker places them, a tiny CNN.

Only ``tiny_model_version`` loads Keras (when called), so importing this module stays light.
"""

import json

import factory
import numpy as np

from inference import datasets
from inference.experiments import PatchSpec
from inference.models import HeatMap, ModelVersion, Prediction, PredictionKind

HEAT_MAP_PATCH = PatchSpec(field_of_view_mm=20.0, size_px=16, neighbours=0)

# The smallest training experiment: two variants, one epoch, 8-pixel patches, two folds.
TINY_EXPERIMENT = {
    "name": "tiny",
    "variants": [{"name": "CM", "phases": ["CM"]}, {"name": "CM+NG", "phases": ["CM", "NG"]}],
    "builder": "small_cnn",
    "builder_options": {"filters": [4, 8], "dense_units": 8},
    "patch": {"field_of_view_mm": 10.0, "size_px": 8, "neighbours": 1},
    "augmentation": {
        "enabled": True,
        "max_rotation_deg": 5.0,
        "max_shift_px": 0.5,
        "hu_jitter": 5.0,
    },
    "epochs": 1,
    "batch_size": 8,
    "learning_rate": 0.01,
    "folds": 2,
    "seed": 0,
}


# The smallest radiomics experiment: first-order and GLCM features, three of them kept, two folds.
TINY_RADIOMICS = {
    "name": "tiny-radiomics",
    "family": "radiomics",
    "variants": [{"name": "CM", "phases": ["CM"]}, {"name": "CM+NG", "phases": ["CM", "NG"]}],
    "radiomics": {"families": ["statistics", "glcm"]},
    "classifier": {"max_features": 3},
    "folds": 2,
    "seed": 0,
}


def experiment_file(tmp_path, experiment, **changes):
    """``experiment`` with ``changes`` as a JSON file under ``tmp_path``: what ``start_training`` reads."""
    path = tmp_path / f"{experiment['name']}.json"
    path.write_text(json.dumps({**experiment, **changes}))
    return str(path)


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """Version 1 of the source study's CM CNN, with no artifact file; ``variant`` sets the phases."""

    class Meta:
        model = ModelVersion

    experiment_name = "source-study"
    experiment = factory.Dict({})
    variant = "CM"
    phases = factory.LazyAttribute(lambda version: version.variant.split("+"))
    builder = "small_cnn"
    version = 1
    artifact = ""
    artifact_sha256 = "0" * 64


class PredictionFactory(factory.django.DjangoModelFactory):
    """The final model's score of a lesion."""

    class Meta:
        model = Prediction

    model_version = factory.SubFactory(ModelVersionFactory)
    kind = PredictionKind.FINAL
    score = 0.75


def gradient_values(shape=(4, 4)):
    """A map that rises from the top-left corner (0) to the bottom-right one (1)."""
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    return ((rows + columns) / (shape[0] + shape[1] - 2)).round(4).tolist()


def make_heat_maps(lesion, phases=("CM",), version=None, values=None, active=True):
    """Store heat maps of a (new, by default active) CNN model version's final prediction for ``lesion``."""
    if version is None:
        # Each call is another experiment, so several can be active at once.
        version = ModelVersionFactory(
            experiment_name=f"heat-{ModelVersion.objects.count() + 1}",
            variant="+".join(phases),
            artifact="models/heat.keras",
            is_active=active,
        )
    prediction, _ = Prediction.objects.update_or_create(
        model_version=version, lesion=lesion, kind=PredictionKind.FINAL, defaults={"score": 0.75}
    )
    values = values if values is not None else gradient_values()
    maps = []
    for phase in phases:
        instance, window = datasets.roi_patch_window(
            datasets.reference_roi(lesion, phase), HEAT_MAP_PATCH
        )
        maps.append(
            HeatMap.objects.create(
                prediction=prediction,
                phase=phase,
                method="grad_cam",
                layer="max_pooling2d_1",
                series_instance_uid=instance.series.series_instance_uid,
                sop_instance_uid=instance.sop_instance_uid,
                window_row=window.row,
                window_column=window.column,
                window_rows=window.rows,
                window_columns=window.columns,
                shape=[len(values), len(values[0])],
                values=values,
            )
        )
    return version, maps


def tiny_model_version(phases, builder="small_cnn"):
    """An active version of a freshly initialised (untrained, seeded) 8-pixel CNN, stored as its artifact."""
    import keras

    from inference import services, training
    from inference.networks import build_model

    keras.utils.set_random_seed(1)
    size = 8
    channels = len(phases)
    model = build_model(builder, (size, size, channels), filters=(4, 8), dense_units=8)
    stored, sha256 = services.save_artifact(
        lambda path: training.save_model(model, path), "tiny", "+".join(phases), "t", ".keras"
    )
    return ModelVersionFactory(
        experiment_name="tiny",
        variant="+".join(phases),
        builder=builder,
        experiment={
            "name": "tiny",
            "variants": [{"name": "+".join(phases), "phases": list(phases)}],
            "builder": builder,
            "builder_options": {"filters": [4, 8], "dense_units": 8},
            "patch": {"field_of_view_mm": 10.0, "size_px": size, "neighbours": 1},
        },
        artifact=stored,
        artifact_sha256=sha256,
        is_active=True,
    )
