"""Patches from the archive: lesion-centred, one channel per phase, cached by content."""

from dataclasses import replace

import numpy as np
import pytest

from annotations.models import ROI
from inference import datasets
from inference.experiments import PatchSpec
from tests.factories.annotated_archive import build_archive

pytestmark = pytest.mark.django_db

SPEC = PatchSpec(
    field_of_view_mm=10.0, size_px=8, neighbours=1, window_level=100.0, window_width=400.0
)


def test_training_lesions_need_pathology_and_an_roi_on_every_phase(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    lesions = build_archive(3, phases=("CM", "NG"))
    ROI.objects.filter(lesion=lesions[-1], phase="NG").delete()
    kept, excluded = datasets.lesions_with_phases(("CM", "NG"), require_pathology=True)
    assert [l.pk for l in kept] == [l.pk for l in lesions[:-1]]
    assert excluded == {"no ROI on NG": 1}


def test_patches_stack_phases_and_show_the_lesion_at_the_centre(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    lesions = build_archive(2, phases=("CM", "NG"))
    kept, _ = datasets.lesions_with_phases(("CM", "NG"), require_pathology=True)
    data = datasets.build_lesion_patches(kept, ("CM", "NG"), SPEC)
    assert data.patches.shape == (len(lesions), 3, 8, 8, 2)
    assert data.labels.tolist() == [
        0,
        0,
        1,
        1,
    ]  # patient 0 benign, patient 1 malignant, two lesions each
    malignant = data.patches[2]
    assert (
        malignant[:, 3:5, 3:5, :].mean() > malignant[:, 0, 0, :].mean()
    )  # the bright disc is centred


def test_a_retrain_reads_patches_from_the_cache_and_a_moved_roi_does_not(
    settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path
    (lesion,) = build_archive(3, phases=("CM",))[-1:]
    first = datasets.lesion_patches(lesion, ("CM",), SPEC)
    assert list((tmp_path / "patch-cache").rglob("*.npy"))

    def no_reading(instance):
        raise AssertionError("read a DICOM file although the patches are cached")

    monkeypatch.setattr(datasets, "_read_hu", no_reading)
    np.testing.assert_array_equal(datasets.lesion_patches(lesion, ("CM",), SPEC), first)
    roi = lesion.rois.get(phase="CM")
    roi.points = [[x + 1.0, y, z] for x, y, z in roi.points]
    roi.save()
    lesion.refresh_from_db()
    with pytest.raises(AssertionError, match="read a DICOM"):
        datasets.lesion_patches(lesion, ("CM",), SPEC)


def test_a_field_of_view_scaled_to_the_roi_follows_the_roi_size(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    (lesion,) = build_archive(2, phases=("CM",))[-1:]
    roi = lesion.rois.get(phase="CM")
    assert datasets.roi_extent_mm(roi) == pytest.approx(2.0)
    scaled = PatchSpec(
        size_px=8, neighbours=1, window_level=100.0, window_width=400.0, roi_scale=2.0
    )
    # 2 x the ROI diameter (4 mm) = an 8 mm field, whatever field_of_view_mm says
    np.testing.assert_array_equal(
        datasets.lesion_patches(lesion, ("CM",), scaled),
        datasets.lesion_patches(lesion, ("CM",), replace(SPEC, field_of_view_mm=8.0)),
    )
    centre = np.asarray(roi.centre)
    roi.points = [
        list(centre + 2.0 * (np.asarray(p) - centre)) for p in roi.points
    ]  # the same ROI, twice as large
    roi.save()
    lesion.refresh_from_db()
    np.testing.assert_array_equal(
        datasets.lesion_patches(lesion, ("CM",), scaled),
        datasets.lesion_patches(lesion, ("CM",), replace(SPEC, field_of_view_mm=16.0)),
    )
