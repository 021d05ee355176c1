"""Patient-grouped, label-stratified k-fold training with out-of-fold scores (no Django here).

:func:`cross_validate` trains one model per fold on the other folds' patients,
scores the held-out lesions (their out-of-fold scores, the ones compared with
readers), then trains the final model on every lesion. Progress goes to a
*reporter* (any object with the :class:`Reporter` methods); a reporter that
answers ``False`` from ``epoch_ended`` cancels the run between epochs.

Imports Keras: only Celery tasks, management commands and benchmarks import this.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from .experiments import Experiment
from .folds import assign_folds, file_sha256, out_of_fold_metrics, safe_auc  # noqa: F401  (re-exported for callers of training)
from .networks import build_model
from .patches import augment_batch, dihedral_views, roi_statistics


class TrainingCancelled(Exception):
    """The reporter asked to stop (run cancelled, or taken away from this worker)."""


class Reporter:
    """Where training reports; the default does nothing and never cancels."""

    def log(self, message: str) -> None:
        pass

    def stage_started(self, fold: int | None, n_train: int, n_validation: int) -> None:
        """``fold`` 1..k, or ``None`` for the final model."""

    def epoch_ended(
        self, fold: int | None, epoch: int, loss: float, validation_auc: float | None
    ) -> bool:
        """Return False to cancel."""
        return True


class PatchSequence(keras.utils.PyDataset):
    """Batches of ``(samples, size, size, channels)`` patches and labels, reshuffled and augmented each epoch."""

    def __init__(
        self,
        x,
        y,
        batch_size,
        augmentation=None,
        window_width=400.0,
        seed=0,
        auxiliary=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.x, self.y = x, np.asarray(y, np.float32)
        self.auxiliary = auxiliary  # (samples, k) standardised ROI statistics, or None
        self.batch_size = batch_size
        self.augmentation = (
            augmentation if augmentation is not None and augmentation.enabled else None
        )
        self.window_width = window_width
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        chosen = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        batch = self.x[chosen]
        if self.augmentation is not None:
            a = self.augmentation
            batch = augment_batch(
                batch,
                self.rng,
                self.window_width,
                a.flip,
                a.max_rotation_deg,
                a.max_shift_px,
                a.hu_jitter,
                a.dihedral,
            )
        if self.auxiliary is not None:
            return batch, {"malignant": self.y[chosen], "roi_statistics": self.auxiliary[chosen]}
        return batch, self.y[chosen]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))


class _ProgressCallback(keras.callbacks.Callback):
    def __init__(self, reporter, fold, validation=None, batch_size=64, scoring_model=None):
        super().__init__()
        self.reporter, self.fold, self.validation, self.batch_size = (
            reporter,
            fold,
            validation,
            batch_size,
        )
        self.scoring_model = scoring_model
        self.cancelled = False

    def on_epoch_end(self, epoch, logs=None):
        auc = None
        if self.validation is not None:
            patches, labels = self.validation
            auc = safe_auc(
                labels, predict_lesions(self.scoring_model or self.model, patches, self.batch_size)
            )
        loss = float((logs or {}).get("loss", float("nan")))
        if not self.reporter.epoch_ended(self.fold, epoch + 1, loss, auc):
            self.cancelled = True
            self.model.stop_training = True


class WeightAveraging(keras.callbacks.Callback):
    """Stochastic weight averaging (Izmailov et al. 2018): the mean of the weights after each epoch from ``start``.

    At the end of training the model takes the averaged weights: one model whose
    predictions swing far less from epoch to epoch than the last epoch's (with ~30
    benign lesions per training set, held-out AUC moves by +-0.2 between epochs).
    Batch-normalisation statistics are averaged like any other weight.
    """

    def __init__(self, start: int):
        super().__init__()
        self.start, self.count, self.mean = start, 0, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.start:
            return
        weights = [np.asarray(w, np.float64) for w in self.model.get_weights()]
        self.count += 1
        if self.mean is None:
            self.mean = weights
        else:
            self.mean = [m + (w - m) / self.count for m, w in zip(self.mean, weights)]

    def on_train_end(self, logs=None):
        if self.mean is not None:
            self.model.set_weights([m.astype(np.float32) for m in self.mean])


def predict_lesions(
    model, patches: np.ndarray, batch_size: int = 64, test_time_augmentation: bool = False
) -> np.ndarray:
    """Per-lesion score: the mean of the model's outputs over a lesion's samples (slices).

    ``patches`` is ``(lesions, samples, size, size, channels)``; no random augmentation.
    With ``test_time_augmentation`` every slice is also scored in its 8 rotations and
    reflections (:func:`inference.patches.dihedral_views`) and the mean taken over all.
    """
    if len(patches) == 0:
        return np.zeros(0, np.float32)
    if test_time_augmentation:
        n = patches.shape[0]
        views = dihedral_views(patches.reshape(-1, *patches.shape[2:]))  # (8, n * samples, ...)
        patches = views.transpose(1, 0, 2, 3, 4).reshape(n, -1, *patches.shape[2:])
    n, samples = patches.shape[:2]
    flat = patches.reshape(n * samples, *patches.shape[2:])
    if (
        len(flat) <= 256
    ):  # a direct call avoids predict()'s per-call dataset set-up (scoring one lesion)
        outputs = keras.ops.convert_to_numpy(model(flat, training=False))
    else:
        outputs = model.predict(flat, batch_size=batch_size, verbose=0)
    outputs = np.asarray(outputs, np.float64).reshape(n, samples)
    return outputs.mean(axis=1)


def describe_devices() -> str:
    """The accelerator(s) the backend sees (tf.config.list_physical_devices on TensorFlow)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        devices = [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()]
    elif backend == "torch":
        import torch

        devices = [
            f"cuda:{torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())
        ] or ["cpu"]
    elif backend == "jax":
        import jax

        devices = [str(d) for d in jax.devices()]
    else:
        devices = ["unknown"]
    return f"keras {keras.__version__} backend {backend}: " + ", ".join(devices)


def distribution_scope():
    """``tf.distribute.MirroredStrategy`` scope when TensorFlow sees several GPUs, else a no-op."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if len(tf.config.list_physical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def compiled_model(experiment: Experiment, input_shape, seed: int):
    """A freshly initialised, compiled model of the experiment's builder (seeded)."""
    keras.utils.set_random_seed(seed)
    with distribution_scope():
        model = build_model(experiment.builder, input_shape, **experiment.builder_options)
        model.compile(
            optimizer=keras.optimizers.Adam(experiment.learning_rate),
            loss="binary_crossentropy",
            jit_compile=False,
        )
    return model


def flatten_samples(patches: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """``(lesions, samples, ...)`` patches to ``(lesions * samples, ...)`` with each lesion's label repeated."""
    n, samples = patches.shape[:2]
    return patches.reshape(n * samples, *patches.shape[2:]), np.repeat(
        np.asarray(labels, np.float32), samples
    )


def with_auxiliary_head(model, n_targets: int, weight: float, learning_rate: float):
    """A two-output training model sharing ``model``'s layers: malignancy and the ROI statistics.

    The auxiliary head is a linear layer on the features the malignancy output reads
    (the input of ``model``'s last layer); its loss (mean squared error on standardised
    targets) is weighted by ``weight``. ``model`` itself stays the one-output scoring model.
    """
    features = model.layers[-1].input
    auxiliary = keras.layers.Dense(n_targets, name="roi_statistics")(features)
    trainer = keras.Model(
        model.inputs, {"malignant": model.outputs[0], "roi_statistics": auxiliary}
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={"malignant": "binary_crossentropy", "roi_statistics": "mse"},
        loss_weights={"malignant": 1.0, "roi_statistics": weight},
        jit_compile=False,
    )
    return trainer


def roi_radius_px(experiment: Experiment, roi_extent_mm) -> np.ndarray:
    """Each lesion's reference-ROI radius in patch pixels (field of view as the patch spec sets it)."""
    spec = experiment.patch
    return np.array(
        [e * spec.size_px / spec.field_of_view_for(e) for e in np.asarray(roi_extent_mm, float)]
    )


def fit_model(
    experiment: Experiment,
    patches,
    labels,
    seed,
    reporter,
    fold=None,
    validation=None,
    workers=1,
    roi_extent_mm=None,
):
    """Train a new model on ``patches``/``labels``; raises TrainingCancelled when the reporter says stop.

    With ``experiment.auxiliary_weight`` > 0 and each lesion's ``roi_extent_mm``, the
    network also learns to report the ROI statistics of each sample
    (:func:`inference.patches.roi_statistics`); the returned model outputs malignancy only.
    """
    x, y = flatten_samples(patches, labels)
    model = compiled_model(experiment, x.shape[1:], seed)
    trainer, auxiliary = model, None
    if experiment.auxiliary_weight > 0 and roi_extent_mm is not None:
        samples = patches.shape[1]
        targets = roi_statistics(x, np.repeat(roi_radius_px(experiment, roi_extent_mm), samples))
        auxiliary = (targets - targets.mean(axis=0)) / np.maximum(targets.std(axis=0), 1e-6)
        trainer = with_auxiliary_head(
            model, auxiliary.shape[1], experiment.auxiliary_weight, experiment.learning_rate
        )
    sequence = PatchSequence(
        x,
        y,
        experiment.batch_size,
        experiment.augmentation,
        experiment.patch.window_width,
        seed=seed,
        workers=workers,
        auxiliary=auxiliary,
    )
    callback = _ProgressCallback(
        reporter, fold, validation, experiment.batch_size, scoring_model=model
    )
    callbacks = [callback]
    if experiment.weight_averaging_from:
        callbacks.insert(0, WeightAveraging(experiment.weight_averaging_from))
    trainer.fit(sequence, epochs=experiment.epochs, verbose=0, callbacks=callbacks)
    if callback.cancelled:
        raise TrainingCancelled()
    return model


@dataclass
class CrossValidationResult:
    folds: np.ndarray  # fold 1..k of each lesion
    oof_scores: np.ndarray  # score of each lesion from the model of its fold
    fold_aucs: dict  # fold -> validation AUC (None if one class)
    oof_auc: float | None
    final_model: object
    final_scores: np.ndarray  # final model on every (training) lesion
    timings: dict = field(default_factory=dict)

    def metrics(self, labels) -> dict:
        return out_of_fold_metrics(labels, self.folds, self.oof_scores, self.fold_aucs)


def cross_validate(
    experiment: Experiment,
    patches,
    labels,
    patient_ids,
    reporter: Reporter | None = None,
    final: bool = True,
    roi_extent_mm=None,
) -> CrossValidationResult:
    """k-fold (patient-grouped, stratified) out-of-fold scores, then the final model on all lesions.

    ``final=False`` skips the final model (benchmarks that only need out-of-fold scores);
    ``roi_extent_mm`` (per lesion) feeds the auxiliary targets when the experiment has them.
    """
    extent = None if roi_extent_mm is None else np.asarray(roi_extent_mm, float)
    tta = experiment.test_time_augmentation
    reporter = reporter or Reporter()
    labels = np.asarray(labels)
    folds = assign_folds(labels, patient_ids, experiment.folds, experiment.seed)
    oof = np.full(len(labels), np.nan)
    fold_aucs, timings = {}, {}
    for fold in range(1, experiment.folds + 1):
        started = time.perf_counter()
        train, held_out = folds != fold, folds == fold
        reporter.stage_started(fold, int(train.sum()), int(held_out.sum()))
        model = fit_model(
            experiment,
            patches[train],
            labels[train],
            experiment.seed + fold,
            reporter,
            fold,
            (patches[held_out], labels[held_out]),
            roi_extent_mm=None if extent is None else extent[train],
        )
        oof[held_out] = predict_lesions(model, patches[held_out], experiment.batch_size, tta)
        fold_aucs[fold] = safe_auc(labels[held_out], oof[held_out])
        timings[f"fold_{fold}_s"] = round(time.perf_counter() - started, 3)
        reporter.log(
            f"fold {fold}: {int(train.sum())} training / {int(held_out.sum())} held-out lesions, AUC {fold_aucs[fold]}"
        )
        del model
        keras.backend.clear_session()
    final_model, final_scores = None, np.full(len(labels), np.nan)
    if final:
        started = time.perf_counter()
        reporter.stage_started(None, len(labels), 0)
        final_model = fit_model(
            experiment, patches, labels, experiment.seed, reporter, None, None, roi_extent_mm=extent
        )
        timings["final_s"] = round(time.perf_counter() - started, 3)
        final_scores = predict_lesions(final_model, patches, experiment.batch_size, tta)
    return CrossValidationResult(
        folds=folds,
        oof_scores=oof,
        fold_aucs=fold_aucs,
        oof_auc=safe_auc(labels, oof),
        final_model=final_model,
        final_scores=final_scores,
        timings=timings,
    )


def save_model(model, path) -> str:
    """Save ``model`` as a ``.keras`` file at ``path``; returns its sha256."""
    model.save(path)
    return file_sha256(path)


def load_model(path, expected_sha256: str | None = None):
    """Load a ``.keras`` file, refusing one whose checksum differs from ``expected_sha256``."""
    if expected_sha256 is not None and file_sha256(path) != expected_sha256:
        raise ValueError(f"model file {path} does not match its recorded sha256 checksum")
    return keras.saving.load_model(path, compile=False)
