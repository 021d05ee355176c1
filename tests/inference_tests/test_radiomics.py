"""The radiomics family without a database: ROI masks, IBSI features from the ROI's pixels only,
the fold-fitted classifier."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from annotations.measurements import roi_mask
from inference import radiomics, radiomics_training
from inference.folds import assign_folds

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
ORIGIN = (-20.0, -20.0, 5.0)  # centre of pixel (0, 0), mm
SPACING = (0.8, 0.8)  # row, column spacing, mm
ROOT = Path(__file__).resolve().parents[2]


def _mm(row, col, z=5.0):
    """Patient coordinates of pixel (row, col) on the test slice."""
    return [ORIGIN[0] + col * SPACING[1], ORIGIN[1] + row * SPACING[0], z]


def _circle(row, col, radius_px):
    """An ellipse ROI as the ellipse tool stores a circle: top, bottom, left, right."""
    r = radius_px * SPACING[0]
    centre = _mm(row, col)
    return [
        [centre[0], centre[1] - r, 5.0],
        [centre[0], centre[1] + r, 5.0],
        [centre[0] - r, centre[1], 5.0],
        [centre[0] + r, centre[1], 5.0],
    ]


def _mask(tool, points, shape=(48, 48)):
    return roi_mask(tool, points, ORIGIN, AXIAL, SPACING, shape)


def _lesion_slice(seed=0, shape=(48, 48)):
    """Noisy kidney-like background with a textured disc of radius 9 px at (24, 22)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(30.0, 15.0, shape)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    disc = (rows - 24) ** 2 + (cols - 22) ** 2 <= 81
    image[disc] = 120.0 + 40.0 * np.sin(cols[disc] / 2.0) + rng.normal(0.0, 10.0, int(disc.sum()))
    return image.astype(np.float32)


SMALL = radiomics.RadiomicsSettings(families=("morphology", "statistics", "glcm", "glszm"))


# --- masks ---------------------------------------------------------------------------


def test_an_ellipse_roi_covers_the_pixels_whose_centres_lie_inside_it():
    mask = _mask("ellipse", _circle(24, 22, 5))
    rows, cols = np.mgrid[:48, :48]
    assert np.array_equal(mask, (rows - 24) ** 2 + (cols - 22) ** 2 <= 25)


def test_an_elongated_ellipse_follows_its_axes():
    centre = _mm(20, 20)
    points = [
        [centre[0] - 8 * 0.8, centre[1], 5.0],
        [centre[0] + 8 * 0.8, centre[1], 5.0],  # major axis along columns
        [centre[0], centre[1] - 3 * 0.8, 5.0],
        [centre[0], centre[1] + 3 * 0.8, 5.0],
    ]
    mask = _mask("ellipse", points)
    rows, cols = np.nonzero(mask)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (12, 28, 17, 23)


def test_rectangle_and_freehand_rois_cover_their_polygons():
    rectangle = [_mm(10, 10), _mm(10, 19), _mm(14, 19), _mm(14, 10)]
    mask = _mask("rectangle", rectangle)
    assert (
        mask.sum() == 4 * 9 and mask[10:14, 10:19].all()
    )  # half-open edges: each pixel counted once
    triangle = [_mm(30, 30), _mm(30, 40), _mm(40, 30)]
    freehand = _mask("freehand", triangle)
    assert freehand[31, 31] and not freehand[39, 39] and 40 < freehand.sum() < 60


@pytest.mark.parametrize(
    "tool, points, message",
    [
        ("length", [_mm(5, 5), _mm(5, 15)], "length ROI has no area"),
        ("ellipse", _circle(10.5, 10.5, 0.3), "no pixel centre"),
        ("ellipse", _circle(-30, -30, 4), "no pixel centre"),
        ("freehand", [_mm(5, 5), _mm(5, 9)], "at least 3 points"),
    ],
)
def test_an_roi_without_pixels_is_refused_with_the_reason(tool, points, message):
    with pytest.raises(radiomics.RoiMaskError, match=message):
        _mask(tool, points)


# --- features --------------------------------------------------------------------------


def test_features_depend_only_on_the_pixels_inside_the_roi():
    image = _lesion_slice()
    mask = _mask("ellipse", _circle(24, 22, 7))
    features = radiomics.compute_features(image, SPACING, mask, SMALL)

    outside_changed = image.copy()
    outside_changed[~mask] = np.random.default_rng(1).normal(500.0, 300.0, int((~mask).sum()))
    assert radiomics.compute_features(outside_changed, SPACING, mask, SMALL) == pytest.approx(
        features, nan_ok=True
    )

    inside_changed = image.copy()
    inside_changed[mask] += np.random.default_rng(2).normal(0.0, 30.0, int(mask.sum()))
    changed = radiomics.compute_features(inside_changed, SPACING, mask, SMALL)
    differing = {
        name for name in features if not np.isclose(features[name], changed[name], equal_nan=True)
    }
    assert {"stat_mean", "stat_var"} <= differing
    assert any(name.startswith("cm_") for name in differing) and any(
        name.startswith("szm_") for name in differing
    )
    assert (
        not {"morph_volume", "morph_area_mesh", "morph_sphericity", "morph_diam"} & differing
    )  # same outline


def test_features_are_the_chosen_ibsi_families_of_the_slice_in_mirp_names():
    image = _lesion_slice()
    mask = _mask("ellipse", _circle(24, 22, 7))
    features = radiomics.compute_features(image, SPACING, mask, SMALL)
    families = {name.split("_")[0] for name in features}
    assert families == {"morph", "stat", "cm", "szm"}
    assert "cm_contrast_d1_2d_s_mrg_fbs_w25.0" in features  # 2-D, slice-merged, 25 HU bins
    assert features["stat_mean"] == pytest.approx(float(image[mask].mean()), abs=8.0)
    assert all(isinstance(v, float) for v in features.values())


def test_radiomics_settings_refuse_unknown_options_and_values_naming_the_field():
    with pytest.raises(
        radiomics.SettingsError, match=r"unknown radiomics option\(s\) \['bin_widht'\]"
    ):
        radiomics.RadiomicsSettings.from_dict({"bin_widht": 10})
    with pytest.raises(radiomics.SettingsError, match="radiomics.families: unknown family"):
        radiomics.RadiomicsSettings.from_dict({"families": ["wavelet"]})
    with pytest.raises(radiomics.SettingsError, match="radiomics.spacing_mm"):
        radiomics.RadiomicsSettings.from_dict({"spacing_mm": 0})
    with pytest.raises(radiomics.SettingsError, match="classifier.kind"):
        radiomics.ClassifierSpec.from_dict({"kind": "svm"})


# --- the classifier ---------------------------------------------------------------------


def test_selection_drops_constant_and_correlated_features_and_keeps_the_most_discriminating():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    strong = y + rng.normal(0, 0.5, 100)
    weak = y + rng.normal(0, 2.0, 100)
    x = np.column_stack([np.ones(100), weak, strong, 2 * strong + 1, rng.normal(size=100)])
    selector = radiomics_training.RankedDecorrelatedSelector(
        max_features=2, max_correlation=0.8
    ).fit(x, y)
    assert list(selector.support_) in (
        [2, 1],
        [3, 1],
    )  # strong (or its copy), then weak; never both copies


def test_on_noise_features_out_of_fold_auc_stays_near_chance_because_selection_is_fitted_inside_the_folds():
    rng = np.random.default_rng(0)
    n, p = 80, 400
    x = rng.normal(size=(n, p))
    y = np.tile([0, 1, 1], n)[:n]
    patients = np.arange(n) // 2
    names = [f"noise_{j}" for j in range(p)]
    result = radiomics_training.cross_validate_features(
        x, y, patients, names, radiomics.ClassifierSpec(), n_folds=5, seed=0
    )
    assert 0.3 < result.oof_auc < 0.7  # selecting on all lesions first would give ~0.9 here

    folds = assign_folds(y, patients, 5, 0)
    assert np.array_equal(result.folds, folds)
    for fold in range(1, 6):
        assert not set(patients[folds == fold]) & set(patients[folds != fold])


def test_a_stored_radiomics_model_round_trips_and_a_changed_file_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    rows = [
        {"CM:stat_mean": float(v), "CM:stat_var": float(w)}
        for v, w in zip(y * 2 + rng.normal(size=40), rng.normal(size=40))
    ]
    x, names = radiomics.feature_matrix(rows)
    pipeline = radiomics_training.build_classifier(radiomics.ClassifierSpec(max_features=2)).fit(
        x, y
    )
    model = radiomics_training.RadiomicsModel(pipeline, names, ("CM",))
    path = tmp_path / "model.joblib"
    sha256 = model.save(path)
    loaded = radiomics_training.RadiomicsModel.load(path, sha256)
    assert np.allclose(loaded.predict(rows), pipeline.predict_proba(x)[:, 1])
    assert 0.0 <= loaded.predict([{"CM:stat_mean": 1.0}])[0] <= 1.0  # a missing feature is imputed
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="sha256"):
        radiomics_training.RadiomicsModel.load(path, sha256)


def test_the_radiomics_core_never_imports_tensorflow_or_keras():
    script = (
        "import json, sys, numpy as np\n"
        "from inference import radiomics, radiomics_training, experiments\n"
        "image = np.random.default_rng(0).normal(50, 10, (32, 32))\n"
        "mask = np.zeros((32, 32), bool); mask[10:20, 10:20] = True\n"
        "radiomics.compute_features(image, (1.0, 1.0), mask, radiomics.RadiomicsSettings())\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
