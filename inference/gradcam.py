"""Heat maps of a Keras CNN's score for one lesion (worker code: imports Keras, and TensorFlow for gradients).

:func:`lesion_heat_maps` picks the method: Grad-CAM on the last convolutional block
when the model has one at its top level and the backend is TensorFlow, else occlusion
sensitivity (see :mod:`inference.heatmaps` for both, with references).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from .heatmaps import bound_map, normalise_map, occlusion_sensitivity
from .training import predict_lesions


@dataclass(frozen=True)
class LesionHeatMap:
    """One phase's map over the patch: ``values`` in [0, 1], the method and (Grad-CAM) the layer."""

    phase: str
    method: str  # inference.models.HeatMapMethod value
    layer: str
    values: np.ndarray


def last_convolutional_block(model) -> keras.layers.Layer | None:
    """The last top-level layer with a 4-D output at or after the model's last Conv2D (None: no such block).

    For ``small_cnn`` the last block's max-pooling, for ``roi_cnn`` its last activation;
    ``inception_v3`` keeps its convolutions inside a nested backbone model, so it has none.
    """
    last_conv = None
    for index, layer in enumerate(model.layers):
        if isinstance(layer, keras.layers.Conv2D):
            last_conv = index
    if last_conv is None:
        return None
    block = None
    for layer in model.layers[last_conv:]:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):  # a layer used more than once has no single output
            continue
        if len(shape) == 4:
            block = layer
    return block


# (id(model), layer name) -> (model, its two-output feature model); the model is kept so its id stays its own.
_FEATURE_MODELS = {}


def grad_cam(model, layer, patches: np.ndarray) -> np.ndarray:
    """Grad-CAM ``(h, w)`` at ``layer``'s resolution, the mean over a lesion's patches.

    ``patches`` is ``(samples, size, size, channels)``.

    The class score is the logit of the sigmoid output; the map is not yet normalised.
    """
    import tensorflow as tf

    key = (id(model), layer.name)
    if (
        key not in _FEATURE_MODELS
    ):  # built once per loaded model (the worker caches those), not per lesion
        if len(_FEATURE_MODELS) >= 8:
            _FEATURE_MODELS.clear()
        _FEATURE_MODELS[key] = (model, keras.Model(model.inputs, [layer.output, model.outputs[0]]))
    feature_model = _FEATURE_MODELS[key][1]
    x = tf.convert_to_tensor(np.asarray(patches, np.float32))
    with tf.GradientTape() as tape:
        features, output = feature_model(x, training=False)
        probability = tf.clip_by_value(tf.reshape(output, [-1]), 1e-7, 1.0 - 1e-7)
        logit = tf.math.log(probability) - tf.math.log(1.0 - probability)
    gradients = tape.gradient(logit, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
    return np.asarray(cams, np.float64).mean(axis=0)


def lesion_heat_maps(
    model, patches: np.ndarray, phases, max_side: int, occlusion_grid: int = 8
) -> list[LesionHeatMap]:
    """Per phase, a map of what drove ``model``'s score for one lesion's ``(samples, size, size, channels)`` patches.

    Channels are the phases in order (then any ROI mask channels, never occluded).
    """
    block = last_convolutional_block(model) if keras.backend.backend() == "tensorflow" else None
    if block is not None:
        values = bound_map(normalise_map(grad_cam(model, block, patches)), max_side)
        return [LesionHeatMap(phase, "grad_cam", block.name, values) for phase in phases]
    predict = lambda batch: predict_lesions(model, batch)  # noqa: E731
    maps = []
    for channel, phase in enumerate(phases):
        values = normalise_map(occlusion_sensitivity(predict, patches, channel, occlusion_grid))
        maps.append(LesionHeatMap(phase, "occlusion", "", bound_map(values, max_side)))
    return maps
