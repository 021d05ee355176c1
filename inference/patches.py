"""Lesion-centred CNN patches from CT volumes: pure functions over NumPy arrays.

Conventions: a volume is ``(slices, rows, columns)`` in Hounsfield units, slices in
the order of their position along the slice normal; ``pixel_spacing`` is the DICOM
PixelSpacing ``(row spacing, column spacing)`` in mm, i.e. the distance between
rows, then between columns; an in-plane centre is ``(row, column)`` in (fractional)
pixel indices. Patches are ``(samples, size, size)`` float32 in [0, 1] after
windowing; multi-phase inputs stack phases as the last (channel) axis.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

AIR_HU = -1000.0


def window_hu(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Window Hounsfield units to ``level`` +- ``width``/2 and scale linearly to [0, 1] (clipped)."""
    low = level - width / 2.0
    return np.clip((np.asarray(hu, dtype=np.float32) - low) / width, 0.0, 1.0).astype(np.float32)


def patient_to_pixel(point_mm, image_position, image_orientation, pixel_spacing) -> tuple[float, float]:
    """(row, column) of a patient-coordinate point (mm) projected onto an image plane.

    ``image_position``/``image_orientation``/``pixel_spacing`` are the DICOM
    ImagePositionPatient, ImageOrientationPatient and PixelSpacing of that image.
    """
    offset = np.asarray(point_mm, float) - np.asarray(image_position, float)
    row_direction = np.asarray(image_orientation[:3], float)  # direction of increasing column index
    column_direction = np.asarray(image_orientation[3:], float)  # direction of increasing row index
    column = float(offset @ row_direction) / float(pixel_spacing[1])
    row = float(offset @ column_direction) / float(pixel_spacing[0])
    return row, column


def sampling_grid(
    centre_rc, pixel_spacing, field_of_view_mm: float, size_px: int, rotation_deg: float = 0.0, shift_px=(0.0, 0.0)
) -> np.ndarray:
    """Pixel coordinates ``(2, size, size)`` that sample a square field of view around ``centre_rc``.

    The output pixel pitch is ``field_of_view_mm / size_px`` mm in both directions,
    whatever the image's (possibly anisotropic) pixel spacing. ``rotation_deg`` and
    ``shift_px`` (output pixels) move the grid, for augmentation.
    """
    pitch_mm = field_of_view_mm / size_px
    offsets = (np.arange(size_px, dtype=np.float64) - (size_px - 1) / 2.0) * pitch_mm
    dy, dx = np.meshgrid(offsets + shift_px[0] * pitch_mm, offsets + shift_px[1] * pitch_mm, indexing="ij")
    if rotation_deg:
        angle = np.deg2rad(rotation_deg)
        dy, dx = np.cos(angle) * dy - np.sin(angle) * dx, np.sin(angle) * dy + np.cos(angle) * dx
    rows = centre_rc[0] + dy / float(pixel_spacing[0])
    columns = centre_rc[1] + dx / float(pixel_spacing[1])
    return np.stack([rows, columns])


def resample_patch(image_hu: np.ndarray, pixel_spacing, centre_rc, field_of_view_mm: float, size_px: int) -> np.ndarray:
    """A ``(size, size)`` HU patch of one 2-D image, bilinear, air outside the image."""
    grid = sampling_grid(centre_rc, pixel_spacing, field_of_view_mm, size_px)
    return ndimage.map_coordinates(
        np.asarray(image_hu, np.float32), grid, order=1, mode="constant", cval=AIR_HU
    ).astype(np.float32)


def neighbour_indices(centre_slice: int, neighbours: int, n_slices: int) -> list[int]:
    """Slice indices ``centre - k .. centre + k``, clamped to the volume (edge slices repeat)."""
    return [min(max(centre_slice + offset, 0), n_slices - 1) for offset in range(-neighbours, neighbours + 1)]


def extract_lesion_patches(
    volume_hu: np.ndarray,
    pixel_spacing,
    centre_rc,
    centre_slice: int,
    neighbours: int,
    field_of_view_mm: float,
    size_px: int,
    window_level: float,
    window_width: float,
) -> np.ndarray:
    """Windowed patches ``(2k+1, size, size)`` of the ROI slice and its ``k`` neighbours either side.

    Each slice is resampled to the same mm field of view around the ROI centre;
    slices beyond the volume's ends repeat the edge slice.
    """
    volume_hu = np.asarray(volume_hu)
    if volume_hu.ndim != 3:
        raise ValueError(f"volume must be (slices, rows, columns), got shape {volume_hu.shape}")
    if not 0 <= centre_slice < volume_hu.shape[0]:
        raise ValueError(f"centre slice {centre_slice} is outside a volume of {volume_hu.shape[0]} slices")
    patches = [
        resample_patch(volume_hu[index], pixel_spacing, centre_rc, field_of_view_mm, size_px)
        for index in neighbour_indices(centre_slice, neighbours, volume_hu.shape[0])
    ]
    return window_hu(np.stack(patches), window_level, window_width)


def stack_phases(patches_by_phase: list[np.ndarray]) -> np.ndarray:
    """Stack per-phase ``(samples, size, size)`` patches into ``(samples, size, size, phases)``."""
    shapes = {p.shape for p in patches_by_phase}
    if len(shapes) != 1:
        raise ValueError(f"per-phase patches differ in shape: {sorted(shapes)}")
    return np.stack(patches_by_phase, axis=-1).astype(np.float32)


def augment_batch(
    batch: np.ndarray,
    rng: np.random.Generator,
    window_width: float,
    flip: bool = True,
    max_rotation_deg: float = 10.0,
    max_shift_px: float = 2.0,
    hu_jitter: float = 10.0,
) -> np.ndarray:
    """Randomly flipped, rotated, shifted and intensity-jittered copy of ``(n, size, size, channels)`` patches.

    The same geometric transform applies to every channel of a sample (the phases
    stay registered); the HU jitter is an additive offset with SD ``hu_jitter`` HU,
    converted to the windowed scale by ``window_width``. Edges repeat the nearest
    pixel. Used for training only.
    """
    out = np.array(batch, dtype=np.float32, copy=True)
    n, size = out.shape[0], out.shape[1]
    centre = (size - 1) / 2.0
    for i in range(n):
        if flip:
            if rng.random() < 0.5:
                out[i] = out[i, ::-1, :, :]
            if rng.random() < 0.5:
                out[i] = out[i, :, ::-1, :]
        angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg)) if max_rotation_deg else 0.0
        shift = rng.uniform(-max_shift_px, max_shift_px, size=2) if max_shift_px else np.zeros(2)
        if angle or shift.any():
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            offset = np.array([centre, centre]) - rotation @ np.array([centre, centre]) + shift
            for c in range(out.shape[-1]):
                out[i, :, :, c] = ndimage.affine_transform(out[i, :, :, c], rotation, offset=offset, order=1, mode="nearest")
    if hu_jitter:
        out += (rng.normal(0.0, hu_jitter, size=(n, 1, 1, 1)) / window_width).astype(np.float32)
        np.clip(out, 0.0, 1.0, out=out)
    return out
