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
        raise ValueError(f"{name} needs inputs of at least {minimum}x{minimum} pixels, got {input_shape[:2]}")
    return BUILDERS[name](tuple(input_shape), **options)


@register("small_cnn")
def build_small_cnn(input_shape, filters=(16, 32, 64), dense_units=32, dropout=0.3, pooling="avg") -> keras.Model:
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
            raise ValueError(f"weights file {weights} does not exist (weights are never downloaded)")
        if channels != 3:
            x = layers.Conv2D(3, 1, name="phases_to_rgb")(x)
        backbone = keras.applications.InceptionV3(
            include_top=False, weights=weights, input_shape=(*input_shape[:2], 3), pooling="avg"
        )
    else:
        backbone = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=input_shape, pooling="avg")
    x = backbone(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="malignant")(x)
    return keras.Model(inputs, outputs, name="inception_v3")
