"""Patch extraction as pure functions over arrays."""

import numpy as np
import pytest

from annotations.geometry import patient_to_pixel
from inference.patches import (
    augment_batch,
    dihedral_views,
    extract_lesion_patches,
    neighbour_indices,
    resample_patch,
    roi_mask_channels,
    roi_statistics,
    stack_phases,
    window_hu,
)


def test_window_hu_maps_the_window_to_zero_one_and_clips():
    out = window_hu(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0]), level=40, width=400)
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])


def test_patient_to_pixel_uses_row_then_column_spacing():
    row, column = patient_to_pixel(
        [-150.0, -140.0, 0.0], [-160.0, -160.0, 0.0], [1, 0, 0, 0, 1, 0], [0.5, 2.0]
    )
    assert (row, column) == (
        40.0,
        5.0,
    )  # y offset 20 mm / 0.5 mm rows; x offset 10 mm / 2 mm columns


def test_resampled_patch_covers_the_same_millimetres_whatever_the_pixel_spacing():
    # A 10 mm bright square centred in two images of different spacing gives the same patch.
    def image(spacing, size):
        centre = (size - 1) / 2
        yy, xx = (np.mgrid[:size, :size] - centre) * spacing
        return np.where((abs(yy) <= 5) & (abs(xx) <= 5), 100.0, 0.0), (centre, centre)

    fine, centre_fine = image(0.5, 101)
    coarse, centre_coarse = image(1.0, 51)
    a = resample_patch(fine, (0.5, 0.5), centre_fine, field_of_view_mm=20.0, size_px=10)
    b = resample_patch(coarse, (1.0, 1.0), centre_coarse, field_of_view_mm=20.0, size_px=10)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert a[5, 5] == 100.0 and a[0, 0] == 0.0


def test_outside_the_image_is_air():
    patch = resample_patch(
        np.zeros((4, 4)), (1.0, 1.0), (0.0, 0.0), field_of_view_mm=40.0, size_px=8
    )
    assert patch[0, 0] == -1000.0


def test_neighbours_repeat_the_edge_slice():
    assert neighbour_indices(0, 2, 5) == [0, 0, 0, 1, 2]
    assert neighbour_indices(4, 1, 5) == [3, 4, 4]


def test_extract_lesion_patches_gives_centre_slice_and_neighbours_windowed():
    volume = np.stack([np.full((16, 16), 10.0 * k) for k in range(5)])
    patches = extract_lesion_patches(
        volume, (1.0, 1.0), (7.5, 7.5), 2, 1, 8.0, 4, window_level=20.0, window_width=40.0
    )
    assert patches.shape == (3, 4, 4) and patches.dtype == np.float32
    np.testing.assert_allclose(patches[:, 0, 0], [0.25, 0.5, 0.75])


def test_extract_rejects_a_centre_outside_the_volume():
    with pytest.raises(ValueError, match="outside"):
        extract_lesion_patches(np.zeros((3, 8, 8)), (1, 1), (4, 4), 5, 1, 8.0, 4, 0, 100)


def test_phases_stack_as_channels():
    stacked = stack_phases([np.zeros((3, 4, 4)), np.ones((3, 4, 4))])
    assert stacked.shape == (3, 4, 4, 2) and stacked[..., 1].min() == 1.0


def test_augmentation_keeps_shape_and_range_and_channels_registered():
    rng = np.random.default_rng(0)
    batch = np.zeros((6, 8, 8, 2), np.float32)
    batch[:, 2:4, 2:4, :] = 1.0
    out = augment_batch(batch, rng, window_width=400, hu_jitter=0.0)
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out[..., 0], out[..., 1])  # same transform for every phase
    assert not np.allclose(out, batch)  # something moved
    np.testing.assert_array_equal(batch[:, 2:4, 2:4, :], 1.0)  # the input is not modified


def test_dihedral_views_are_the_eight_rotations_and_reflections():
    batch = np.arange(2 * 3 * 3 * 1, dtype=np.float32).reshape(2, 3, 3, 1)
    views = dihedral_views(batch)
    assert views.shape == (8, 2, 3, 3, 1)
    assert len({v.tobytes() for v in views}) == 8
    np.testing.assert_array_equal(views[0], batch)


def test_roi_statistics_describe_the_disc_and_its_rim():
    patch = np.full((1, 21, 21, 1), 0.5, np.float32)
    yy, xx = np.mgrid[:21, :21] - 10
    patch[0, np.hypot(yy, xx) <= 4, 0] = 0.2  # a dark core of radius 4 inside a brighter rim
    stats = roi_statistics(patch, np.array([4.0]))
    disc_mean, disc_sd, disc_p10, rim_minus_disc, rim_sd = stats[0, :5]
    assert disc_mean == pytest.approx(0.2) and disc_sd == pytest.approx(0.0, abs=1e-6)
    assert rim_minus_disc == pytest.approx(0.3) and stats[0, -1] == pytest.approx(np.log(4.0))


def test_roi_mask_channels_and_the_patch_mask_follow_the_roi_in_millimetres():
    masks = roi_mask_channels(3, 16, field_of_view_mm=32.0, roi_extent_mm=6.0)
    assert masks.shape == (3, 16, 16, 2)
    assert (
        masks[0, 7, 7, 0] == 1 and masks[0, 7, 7, 1] == 0 and masks[0, 7, 12, 1] == 1
    )  # 5 px = 10 mm: the rim
    assert not (masks[..., 0] * masks[..., 1]).any()
    volume = np.full((3, 40, 40), 100.0)
    blanked = extract_lesion_patches(
        volume, (1.0, 1.0), (20.0, 20.0), 1, 1, 32.0, 16, 40, 400, mask_radius_mm=8.0
    )
    assert blanked[0, 7, 7] > 0 and blanked[0, 0, 0] == 0.0 and blanked[0, 7, 15] == 0.0
