"""Keras 3 model builders, registered by name (pure Keras: TensorFlow, torch or JAX backend).

``build_model(name, input_shape, **options)`` returns an uncompiled
``keras.Model`` that maps ``(size, size, phases)`` patches in [0, 1] to a
probability of malignancy. Imported only by training/scoring code (never by the
web process).
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from .experiments import BUILDER_MIN_INPUT_SIZE

BUILDERS = {}


def register(name):
    """Register a builder ``f(input_shape, **options) -> keras.Model`` under ``name``."""

    def decorate(function):
        BUILDERS[name] = function
        return function

    return decorate


def build_model(name: str, input_shape, **options) -> keras.Model:
    """Build the registered network ``name`` for ``input_shape`` = ``(size, size, channels)``."""
    if name not in BUILDERS:
        raise ValueError(f"unknown builder {name!r}; choose one of {sorted(BUILDERS)}")
    minimum = BUILDER_MIN_INPUT_SIZE[name]
    if min(input_shape[:2]) < minimum:
        raise ValueError(
            f"{name} needs inputs of at least {minimum}x{minimum} pixels, got {input_shape[:2]}"
        )
    return BUILDERS[name](tuple(input_shape), **options)


@register("small_cnn")
def build_small_cnn(
    input_shape, filters=(16, 32, 64), dense_units=32, dropout=0.3, pooling="avg"
) -> keras.Model:
    """A small CPU-friendly CNN: (conv-BN-ReLU, max-pool) blocks, a pooling head, sigmoid output.

    ``pooling`` is ``"avg"`` (global average pooling: translation invariant, averages the
    lesion with its surroundings) or ``"flatten"`` (keeps where a feature is, e.g. the
    lesion's core versus its rim, since patches are centred on the ROI).
    """
    if pooling not in ("avg", "flatten"):
        raise ValueError(f"small_cnn pooling must be 'avg' or 'flatten', got {pooling!r}")
    inputs = keras.Input(shape=input_shape, name="patch")
    x = inputs
    for n_filters in filters:
        x = layers.Conv2D(n_filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x) if pooling == "avg" else layers.Flatten()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="malignant")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


@keras.saving.register_keras_serializable(package="renal_portal")
class ImageChannels(layers.Layer):
    """The image channels of a patch whose last ``roi_channels`` channels are ROI masks."""

    def __init__(self, roi_channels=2, **kwargs):
        super().__init__(**kwargs)
        self.roi_channels = roi_channels

    def call(self, inputs):
        return inputs[..., : inputs.shape[-1] - self.roi_channels]

    def get_config(self):
        return {**super().get_config(), "roi_channels": self.roi_channels}


@keras.saving.register_keras_serializable(package="renal_portal")
class RoiPooling(layers.Layer):
    """Average of each feature map over each ROI mask of the input (the input's last ``roi_channels`` channels).

    ``call(features, inputs)`` returns ``(batch, roi_channels * features)``: per mask,
    sum(feature x mask) / sum(mask), like RoIAlign's pooling restricted to the drawn region.
    """

    def __init__(self, roi_channels=2, **kwargs):
        super().__init__(**kwargs)
        self.roi_channels = roi_channels

    def call(self, features, inputs):
        masks = inputs[..., inputs.shape[-1] - self.roi_channels :]
        if features.shape[1] != masks.shape[1]:
            masks = keras.ops.image.resize(masks, features.shape[1:3], interpolation="bilinear")
        pooled = []
        for j in range(self.roi_channels):
            mask = masks[..., j : j + 1]
            total = keras.ops.sum(mask, axis=(1, 2)) + 1e-6
            pooled.append(keras.ops.sum(features * mask, axis=(1, 2)) / total)
        return keras.ops.concatenate(pooled, axis=-1)

    def get_config(self):
        return {**super().get_config(), "roi_channels": self.roi_channels}


@register("roi_cnn")
def build_roi_cnn(
    input_shape, filters=(16, 16, 32), dense_units=16, dropout=0.3, roi_channels=2, batch_norm=True
) -> keras.Model:
    """A CNN that pools its features over the reference ROI and the rim around it.

    The patch's last ``roi_channels`` channels are masks (``patch.roi_channels``: the ROI
    disc and the annulus out to 1.6 times its radius, where a ROI drawn inside the mass
    meets the mass's edge). Convolutions (3x3, the last dilated) run over the image channels
    at full resolution; each feature map is averaged over each mask and over the whole
    patch, so the head reads what lies inside the lesion, at its edge and around it
    (attenuation, texture, dark necrotic parts, a core unlike its rim) with few weights.
    ``batch_norm=False`` drops batch normalisation (biases instead), which lets weight
    averaging (``weight_averaging_from``) average every parameter the model uses.
    """
    inputs = keras.Input(shape=input_shape, name="patch")
    x = ImageChannels(roi_channels)(inputs)
    for index, n_filters in enumerate(filters):
        dilation = 2 if index == len(filters) - 1 and index > 0 else 1
        x = layers.Conv2D(
            n_filters, 3, padding="same", dilation_rate=dilation, use_bias=not batch_norm
        )(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    pooled = layers.Concatenate()(
        [RoiPooling(roi_channels)(x, inputs), layers.GlobalAveragePooling2D()(x)]
    )
    x = layers.Dense(dense_units, activation="relu")(pooled)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="malignant")(x)
    return keras.Model(inputs, outputs, name="roi_cnn")


@register("inception_v3")
def build_inception_v3(input_shape, weights=None, dropout=0.4) -> keras.Model:
    """Inception-v3 (``keras.applications``) with a sigmoid head; inputs of at least 75x75.

    ``weights`` is ``None`` (random initialisation) or the path of a local weights
    file for the 3-channel no-top network; it is never downloaded. With a weights
    file and a channel count other than 3, a learned 1x1 convolution maps the phases
    to three channels.
    """
    inputs = keras.Input(shape=input_shape, name="patch")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)  # [0, 1] -> [-1, 1], Inception's input range
    channels = input_shape[-1]
    if weights is not None:
        if not Path(weights).is_file():
            raise ValueError(
                f"weights file {weights} does not exist (weights are never downloaded)"
            )
        if channels != 3:
            x = layers.Conv2D(3, 1, name="phases_to_rgb")(x)
        backbone = keras.applications.InceptionV3(
            include_top=False, weights=weights, input_shape=(*input_shape[:2], 3), pooling="avg"
        )
    else:
        backbone = keras.applications.InceptionV3(
            include_top=False, weights=None, input_shape=input_shape, pooling="avg"
        )
    x = backbone(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="malignant")(x)
    return keras.Model(inputs, outputs, name="inception_v3")
