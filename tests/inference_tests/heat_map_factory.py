"""A final-model Prediction with heat maps on a lesion's phases, placed as the worker places them (no TensorFlow)."""

import numpy as np

from inference import datasets
from inference.experiments import PatchSpec
from inference.models import HeatMap, ModelVersion, Prediction, PredictionKind

SPEC = PatchSpec(field_of_view_mm=20.0, size_px=16, neighbours=0)


def gradient_values(shape=(4, 4)):
    """A map that rises from the top-left corner (0) to the bottom-right one (1)."""
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    return ((rows + columns) / (shape[0] + shape[1] - 2)).round(4).tolist()


def make_heat_maps(lesion, phases=("CM",), version=None, values=None, active=True):
    """Store heat maps of a (new, by default active) CNN model version's final prediction for ``lesion``."""
    if version is None:
        # Each call is another experiment, so several can be active at once.
        version = ModelVersion.objects.create(
            experiment_name=f"heat-{ModelVersion.objects.count() + 1}",
            experiment={},
            variant="+".join(phases),
            phases=list(phases),
            builder="small_cnn",
            version=1,
            artifact="models/heat.keras",
            artifact_sha256="0" * 64,
            is_active=active,
        )
    prediction, _ = Prediction.objects.update_or_create(
        model_version=version, lesion=lesion, kind=PredictionKind.FINAL, defaults={"score": 0.75}
    )
    values = values if values is not None else gradient_values()
    maps = []
    for phase in phases:
        instance, window = datasets.roi_patch_window(datasets.reference_roi(lesion, phase), SPEC)
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
