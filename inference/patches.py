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


def sampling_grid(
    centre_rc,
    pixel_spacing,
    field_of_view_mm: float,
    size_px: int,
    rotation_deg: float = 0.0,
    shift_px=(0.0, 0.0),
) -> np.ndarray:
    """Pixel coordinates ``(2, size, size)`` that sample a square field of view around ``centre_rc``.

    The output pixel pitch is ``field_of_view_mm / size_px`` mm in both directions,
    whatever the image's (possibly anisotropic) pixel spacing. ``rotation_deg`` and
    ``shift_px`` (output pixels) move the grid, for augmentation.
    """
    pitch_mm = field_of_view_mm / size_px
    offsets = (np.arange(size_px, dtype=np.float64) - (size_px - 1) / 2.0) * pitch_mm
    dy, dx = np.meshgrid(
        offsets + shift_px[0] * pitch_mm, offsets + shift_px[1] * pitch_mm, indexing="ij"
    )
    if rotation_deg:
        angle = np.deg2rad(rotation_deg)
        dy, dx = np.cos(angle) * dy - np.sin(angle) * dx, np.sin(angle) * dy + np.cos(angle) * dx
    rows = centre_rc[0] + dy / float(pixel_spacing[0])
    columns = centre_rc[1] + dx / float(pixel_spacing[1])
    return np.stack([rows, columns])


def resample_patch(
    image_hu: np.ndarray, pixel_spacing, centre_rc, field_of_view_mm: float, size_px: int
) -> np.ndarray:
    """A ``(size, size)`` HU patch of one 2-D image, bilinear, air outside the image."""
    grid = sampling_grid(centre_rc, pixel_spacing, field_of_view_mm, size_px)
    return ndimage.map_coordinates(
        np.asarray(image_hu, np.float32), grid, order=1, mode="constant", cval=AIR_HU
    ).astype(np.float32)


def neighbour_indices(centre_slice: int, neighbours: int, n_slices: int) -> list[int]:
    """Slice indices ``centre - k .. centre + k``, clamped to the volume (edge slices repeat)."""
    return [
        min(max(centre_slice + offset, 0), n_slices - 1)
        for offset in range(-neighbours, neighbours + 1)
    ]


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
    mask_radius_mm: float = 0.0,
) -> np.ndarray:
    """Windowed patches ``(2k+1, size, size)`` of the ROI slice and its ``k`` neighbours either side.

    Each slice is resampled to the same mm field of view around the ROI centre;
    slices beyond the volume's ends repeat the edge slice. With ``mask_radius_mm`` > 0,
    pixels farther than that from the centre are set to 0 (the window's low end), so the
    network sees the mass and a margin around it, not the rest of the kidney.
    """
    volume_hu = np.asarray(volume_hu)
    if volume_hu.ndim != 3:
        raise ValueError(f"volume must be (slices, rows, columns), got shape {volume_hu.shape}")
    if not 0 <= centre_slice < volume_hu.shape[0]:
        raise ValueError(
            f"centre slice {centre_slice} is outside a volume of {volume_hu.shape[0]} slices"
        )
    patches = [
        resample_patch(volume_hu[index], pixel_spacing, centre_rc, field_of_view_mm, size_px)
        for index in neighbour_indices(centre_slice, neighbours, volume_hu.shape[0])
    ]
    windowed = window_hu(np.stack(patches), window_level, window_width)
    if mask_radius_mm > 0:
        offsets = (np.arange(size_px) - (size_px - 1) / 2.0) * (field_of_view_mm / size_px)
        windowed[:, np.hypot(offsets[:, None], offsets[None, :]) > mask_radius_mm] = 0.0
    return windowed


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
    dihedral: bool = False,
) -> np.ndarray:
    """Randomly flipped, rotated, shifted and intensity-jittered copy of ``(n, size, size, channels)`` patches.

    The same geometric transform applies to every channel of a sample (the phases
    stay registered); the HU jitter is an additive offset with SD ``hu_jitter`` HU,
    converted to the windowed scale by ``window_width``. With ``dihedral`` a sample is
    also turned by 0, 90, 180 or 270 degrees. Edges repeat the nearest pixel. Used for
    training only.
    """
    out = np.array(batch, dtype=np.float32, copy=True)
    n, size = out.shape[0], out.shape[1]
    centre = (size - 1) / 2.0
    for i in range(n):
        if dihedral:
            out[i] = np.rot90(out[i], k=int(rng.integers(4)), axes=(0, 1))
        if flip:
            if rng.random() < 0.5:
                out[i] = out[i, ::-1, :, :]
            if rng.random() < 0.5:
                out[i] = out[i, :, ::-1, :]
        angle = (
            np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
            if max_rotation_deg
            else 0.0
        )
        shift = rng.uniform(-max_shift_px, max_shift_px, size=2) if max_shift_px else np.zeros(2)
        if angle or shift.any():
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            offset = np.array([centre, centre]) - rotation @ np.array([centre, centre]) + shift
            for c in range(out.shape[-1]):
                out[i, :, :, c] = ndimage.affine_transform(
                    out[i, :, :, c], rotation, offset=offset, order=1, mode="nearest"
                )
    if hu_jitter:
        out += (rng.normal(0.0, hu_jitter, size=(n, 1, 1, 1)) / window_width).astype(np.float32)
        np.clip(out, 0.0, 1.0, out=out)
    return out


def dihedral_views(batch: np.ndarray) -> np.ndarray:
    """The 8 rotations and reflections of ``(n, size, size, channels)`` patches, ``(8, n, size, size, channels)``.

    For test-time augmentation: a lesion's score is the mean over its views.
    """
    views = []
    for flipped in (batch, batch[:, :, ::-1]):
        views += [np.rot90(flipped, k=k, axes=(1, 2)) for k in range(4)]
    return np.ascontiguousarray(np.stack(views))


ROI_STATISTICS = ("disc_mean", "disc_sd", "disc_p10", "rim_minus_disc", "rim_sd")


def roi_statistics(patches: np.ndarray, roi_radius_px: np.ndarray) -> np.ndarray:
    """Per sample and channel the :data:`ROI_STATISTICS` of ``(n, size, size, channels)`` windowed patches.

    The disc is the reference ROI (radius ``roi_radius_px[i]`` patch pixels around the
    patch centre); the rim is the annulus from that radius to 1.6 times it (where a
    reference ROI drawn inside the mass meets the mass's edge). Returns
    ``(n, channels * 5 + 1)``: the statistics of each channel, then log(radius). Used as
    auxiliary training targets: they cost no annotation beyond the ROI and make the
    network describe what lies inside the lesion (attenuation, heterogeneity, dark
    necrotic parts, a core differing from its rim) before it learns malignancy.
    """
    patches = np.asarray(patches, np.float32)
    n, size = patches.shape[0], patches.shape[1]
    channels = patches.shape[-1]
    offsets = np.arange(size) - (size - 1) / 2.0
    distance = np.hypot(offsets[:, None], offsets[None, :])
    out = np.zeros((n, channels * len(ROI_STATISTICS) + 1), np.float32)
    for i in range(n):
        radius = max(float(roi_radius_px[i]), 1.0)
        disc = distance <= radius
        rim = (distance > radius) & (distance <= 1.6 * radius)
        for c in range(channels):
            inside, around = patches[i, :, :, c][disc], patches[i, :, :, c][rim]
            mean = inside.mean()
            rim_mean = around.mean() if around.size else mean
            out[i, c * 5 : (c + 1) * 5] = (
                mean,
                inside.std(),
                np.percentile(inside, 10),
                rim_mean - mean,
                around.std() if around.size else 0.0,
            )
        out[i, -1] = np.log(radius)
    return out


def roi_mask_channels(
    samples: int, size_px: int, field_of_view_mm: float, roi_extent_mm: float
) -> np.ndarray:
    """``(samples, size, size, 2)`` masks: the ROI disc (radius ``roi_extent_mm``) and the rim out to 1.6 times it.

    Appended to a lesion's patches as two extra channels when ``patch.roi_channels`` is
    set, so a network (``roi_cnn``) knows where the reference ROI lies on every slice.
    """
    offsets = (np.arange(size_px) - (size_px - 1) / 2.0) * (field_of_view_mm / size_px)
    distance = np.hypot(offsets[:, None], offsets[None, :])
    disc = distance <= roi_extent_mm
    rim = (distance > roi_extent_mm) & (distance <= 1.6 * roi_extent_mm)
    masks = np.stack([disc, rim], axis=-1).astype(np.float32)
    return np.repeat(masks[None], samples, axis=0)
