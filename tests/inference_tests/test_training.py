"""Training core without Django: grouped stratified folds, out-of-fold scores, builders, artifacts."""

import numpy as np
import pytest

from inference.experiments import Experiment

pytest.importorskip("keras")

from inference import training  # noqa: E402
from inference.networks import build_model  # noqa: E402
from inference.patches import roi_mask_channels  # noqa: E402


def test_folds_keep_every_patient_in_one_fold_and_both_labels_in_each():
    patients = np.repeat(np.arange(20), 2)
    labels = np.tile([0, 1], 20)[::1] * 0 + (patients % 2)
    folds = training.assign_folds(labels, patients, n_folds=4, seed=0)
    assert set(folds.tolist()) == {1, 2, 3, 4}
    for patient in range(20):
        assert len(set(folds[patients == patient].tolist())) == 1
    for fold in range(1, 5):
        assert set(labels[folds == fold].tolist()) == {0, 1}


def test_fewer_patients_than_folds_is_an_error():
    with pytest.raises(ValueError, match="3 patients"):
        training.assign_folds([0, 1, 0], [1, 2, 3], n_folds=5, seed=0)


def _toy(n_lesions=24, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n_lesions) % 2
    patches = rng.uniform(0.3, 0.5, size=(n_lesions, 3, 8, 8, 1)).astype(np.float32)
    patches[labels == 1, :, 2:6, 2:6, :] += 0.4  # malignant: a bright centre
    return patches, labels, np.arange(n_lesions) // 2


class Recorder(training.Reporter):
    def __init__(self, stop_after=None):
        self.epochs, self.stages, self.stop_after = [], [], stop_after

    def stage_started(self, fold, n_train, n_validation):
        self.stages.append((fold, n_train, n_validation))

    def epoch_ended(self, fold, epoch, loss, validation_auc):
        self.epochs.append((fold, epoch, loss, validation_auc))
        return self.stop_after is None or len(self.epochs) < self.stop_after


def _experiment(**changes):
    data = {
        "name": "toy",
        "variants": [{"name": "CM", "phases": ["CM"]}],
        "builder": "small_cnn",
        "builder_options": {"filters": [8, 16], "dense_units": 8},
        "patch": {"size_px": 8, "neighbours": 1},
        "epochs": 8,
        "batch_size": 8,
        "learning_rate": 0.01,
        "folds": 3,
        "seed": 1,
    }
    data.update(changes)
    return Experiment.from_dict(data)


@pytest.fixture(scope="module")
def cross_validated():
    patches, labels, patients = _toy()
    recorder = Recorder()
    result = training.cross_validate(
        _experiment(folds=2, epochs=6), patches, labels, patients, recorder
    )
    return patches, labels, recorder, result


def test_cross_validation_gives_out_of_fold_scores_and_learns_a_visible_signal(cross_validated):
    patches, labels, recorder, result = cross_validated
    assert not np.isnan(result.oof_scores).any()
    assert result.oof_auc is not None and result.oof_auc > 0.8
    assert [s[0] for s in recorder.stages] == [1, 2, None]
    assert len(recorder.epochs) == 3 * 6
    assert set(result.fold_aucs) == {1, 2}
    metrics = result.metrics(labels)
    assert metrics["n_lesions"] == 24 and metrics["n_folds"] == 2


def test_a_reporter_saying_stop_cancels_between_epochs():
    patches, labels, patients = _toy()
    recorder = Recorder(stop_after=1)
    with pytest.raises(training.TrainingCancelled):
        training.cross_validate(_experiment(), patches, labels, patients, recorder)
    assert len(recorder.epochs) == 1


def test_saved_model_reloads_with_the_same_predictions_and_checks_its_checksum(
    tmp_path, cross_validated
):
    patches, _, _, result = cross_validated
    path = tmp_path / "m.keras"
    sha = training.save_model(result.final_model, path)
    again = training.load_model(path, sha)
    np.testing.assert_allclose(
        training.predict_lesions(again, patches), result.final_scores, rtol=1e-5
    )
    with pytest.raises(ValueError, match="checksum"):
        training.load_model(path, "0" * 64)


def test_inception_v3_builds_without_downloading_and_refuses_small_inputs():
    model = build_model("inception_v3", (75, 75, 2))
    assert model.output_shape == (None, 1)
    with pytest.raises(ValueError, match="at least 75"):
        build_model("inception_v3", (64, 64, 1))


def test_device_description_names_the_backend():
    assert "backend" in training.describe_devices()


def test_small_cnn_pooling_heads():
    for pooling in ("avg", "flatten"):
        model = build_model("small_cnn", (16, 16, 2), pooling=pooling)
        assert model.output_shape == (None, 1)
    assert any(
        layer.__class__.__name__ == "Flatten"
        for layer in build_model("small_cnn", (16, 16, 1), pooling="flatten").layers
    )
    with pytest.raises(ValueError, match="pooling"):
        build_model("small_cnn", (16, 16, 1), pooling="max")


def _toy_with_roi_masks(n_lesions=24):
    patches, labels, patients = _toy(n_lesions)
    masks = roi_mask_channels(patches.shape[1], 8, 8.0, 2.0)
    return (
        np.concatenate([patches, np.broadcast_to(masks, (n_lesions, *masks.shape))], axis=-1),
        labels,
        patients,
    )


def test_roi_cnn_learns_from_what_lies_inside_the_roi_and_reloads_from_its_file(tmp_path):
    patches, labels, patients = _toy_with_roi_masks()
    experiment = _experiment(
        builder="roi_cnn",
        builder_options={"filters": [8, 8], "dense_units": 8},
        folds=2,
        patch={"size_px": 8, "neighbours": 1, "roi_channels": True},
    )
    result = training.cross_validate(experiment, patches, labels, patients)
    assert result.oof_auc > 0.8
    path = tmp_path / "roi.keras"
    again = training.load_model(path, training.save_model(result.final_model, path))
    np.testing.assert_allclose(
        training.predict_lesions(again, patches), result.final_scores, rtol=1e-5
    )


def test_auxiliary_roi_statistics_train_beside_malignancy_and_the_saved_model_has_one_output(
    tmp_path,
):
    patches, labels, patients = _toy()
    experiment = _experiment(
        folds=2,
        epochs=4,
        auxiliary_weight=0.5,
        test_time_augmentation=True,
        augmentation={"dihedral": True},
    )
    result = training.cross_validate(
        experiment, patches, labels, patients, roi_extent_mm=np.full(len(labels), 2.0)
    )
    assert result.final_model.output_shape == (None, 1)
    assert not np.isnan(result.oof_scores).any() and result.oof_auc > 0.7


def test_test_time_augmentation_scores_a_rotation_invariant_model_like_a_plain_pass():
    patches, _, _ = _toy()
    model = build_model("small_cnn", (8, 8, 1), filters=(4,), dense_units=4, pooling="avg")
    symmetric = (
        patches + patches[:, :, ::-1] + patches[:, :, :, ::-1] + patches[:, :, ::-1, ::-1]
    ) / 4
    symmetric = (symmetric + np.swapaxes(symmetric, 2, 3)) / 2
    plain = training.predict_lesions(model, symmetric)
    augmented = training.predict_lesions(model, symmetric, test_time_augmentation=True)
    np.testing.assert_allclose(plain, augmented, rtol=1e-4)
