"""The pixels of a synthetic study: an abdominal anatomy with kidneys and lesions, four phases in HU.

:func:`render_volumes` paints a :class:`Tissue` label map of the patient's latents
(:mod:`cohort.latents`), gives each tissue its per-phase attenuation, draws the lesions,
shifts the patient per phase, and adds partial-volume blur and noise. A phase's image of a
lesion depends on that phase's mean HU only (plus morphology), which keeps the per-phase
oracle (:mod:`cohort.oracle`) an upper bound. Coordinates as in :mod:`cohort.spec`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from archive.vocabulary import PHASES
from cohort.figures import figure
from cohort.latents import PIXELS_STREAM, Kidney, LesionLatents, PatientCase, patient_rng
from cohort.spec import CohortSpec


class Tissue(IntEnum):
    """Labels of the anatomy map; each is a ``tissue.<name>`` row of :data:`FIGURES` (AIR is -1000 HU)."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    LIVER = 3
    SPLEEN = 4
    BOWEL = 5
    GAS = 6
    BONE_CORTICAL = 7
    BONE_CANCELLOUS = 8
    DISC = 9
    CSF = 10
    AORTA = 11
    IVC = 12
    CORTEX = 13
    MEDULLA = 14
    URINE = 15
    TABLE = 16


@dataclass(frozen=True)
class _Grid:
    """The padded base grid: the unshifted patient, larger than the image by the largest shift."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    pad: int
    pad_z: int


def _base_grid(spec: CohortSpec) -> _Grid:
    pad = int(math.ceil(5.0 / spec.pixel_mm)) + 1
    pad_z = int(math.ceil(5.0 / spec.slice_mm)) + 1
    xy = spec.first_pixel_mm + (np.arange(spec.size + 2 * pad) - pad) * spec.pixel_mm
    z = spec.z_top_mm - (np.arange(spec.slices + 2 * pad_z) - pad_z) * spec.slice_mm
    return _Grid(xy, xy.copy(), z, pad, pad_z)


def _ellipse(X, Y, cx, cy, ax, ay, angle=0.0):
    c, s = math.cos(angle), math.sin(angle)
    u = ((X - cx) * c + (Y - cy) * s) / ax
    v = (-(X - cx) * s + (Y - cy) * c) / ay
    return u * u + v * v <= 1.0


def _box(grid: _Grid, centre, half_extent) -> tuple[slice, slice, slice]:
    """Index box (z, y, x) of the base grid covering centre +- half_extent (mm)."""

    def axis(coords, c, h):
        inside = np.nonzero(np.abs(coords - c) <= h)[0]
        return slice(inside[0], inside[-1] + 1) if inside.size else slice(0, 0)

    return (
        axis(grid.z, centre[2], half_extent[2]),
        axis(grid.y, centre[1], half_extent[1]),
        axis(grid.x, centre[0], half_extent[0]),
    )


def _paint(labels, box, mask, tissue: Tissue, allowed: Sequence[Tissue] | None = None) -> None:
    region = labels[box]
    if allowed is not None:
        permitted = np.zeros(len(Tissue), dtype=bool)
        permitted[list(allowed)] = True
        mask = mask & permitted[region]
    region[mask] = tissue


_SOFT = (Tissue.FAT, Tissue.BOWEL, Tissue.GAS)


def anatomy_labels(case: PatientCase, spec: CohortSpec) -> np.ndarray:
    """The :class:`Tissue` label volume (z, y, x) of the unshifted patient on the padded base grid."""
    grid = _base_grid(spec)
    a = case.anatomy
    X, Y = np.meshgrid(grid.x, grid.y)
    cy = 8.0
    cax, cay, m, f = a["cavity_ax"], a["cavity_ay"], a["muscle_mm"], a["subcutaneous_fat_mm"]
    plane = np.full(X.shape, Tissue.AIR, dtype=np.uint8)
    back = cy + cay + m + f
    table_top = back + 6 - 0.0012 * X * X  # the cradle rises at the sides
    plane[(Y >= table_top) & (Y <= table_top + 6) & (np.abs(X) < 0.42 * spec.fov_mm)] = Tissue.TABLE
    plane[_ellipse(X, Y, 0, cy, cax + m + f, cay + m + f)] = Tissue.FAT
    plane[_ellipse(X, Y, 0, cy, cax + m, cay + m)] = Tissue.MUSCLE
    cavity = _ellipse(X, Y, 0, cy, cax, cay)
    plane[cavity] = Tissue.FAT
    for sign in (-1, 1):
        plane[_ellipse(X, Y, sign * 30, 88, 22, 18)] = Tissue.MUSCLE  # erector spinae
        plane[_ellipse(X, Y, sign * 32, 50, 12, 16)] = Tissue.MUSCLE  # psoas
    plane[_ellipse(X, Y, 0, 75, 15, 14) & (Y > 68)] = Tissue.BONE_CORTICAL  # lamina
    plane[_ellipse(X, Y, 0, 96, 5, 13)] = Tissue.BONE_CORTICAL  # spinous process
    plane[_ellipse(X, Y, 0, 75, 8, 8)] = Tissue.CSF
    plane[_ellipse(X, Y, 0, 48, 20, 18)] = Tissue.BONE_CORTICAL
    plane[_ellipse(X, Y, 0, 48, 17.5, 15.5)] = Tissue.BONE_CANCELLOUS
    plane[_ellipse(X, Y, 14, 18, 11, 11)] = Tissue.AORTA
    plane[_ellipse(X, Y, -22, 20, 13, 9)] = Tissue.IVC
    for x0, y0, r in ((-92, 5, 17), (95, -5, 15)):  # ascending and descending colon
        plane[_ellipse(X, Y, x0, y0, r, r)] = Tissue.BOWEL
        plane[_ellipse(X, Y, x0, y0, r - 3, r - 3)] = Tissue.GAS
    labels = np.repeat(plane[None], grid.z.size, axis=0)

    disc = ((grid.z - a["disc_phase_mm"]) % 35.0) < 7.0
    body = _ellipse(X, Y, 0, 48, 20, 18)
    labels[np.ix_(disc, *(np.arange(n) for n in X.shape))] = np.where(body, Tissue.DISC, plane)

    bowel = np.random.default_rng(int(a["bowel_seed"]))
    for _ in range(int(0.35 * (grid.z.max() - grid.z.min())) + 6):
        centre = (
            bowel.uniform(-60, 95),
            bowel.uniform(-85, 5),
            bowel.uniform(grid.z.min(), grid.z.max()),
        )
        radius = bowel.uniform(9, 16)
        box = _box(grid, centre, (radius, radius, radius))
        Xb, Yb, Zb = (
            grid.x[box[2]][None, None, :],
            grid.y[box[1]][None, :, None],
            grid.z[box[0]][:, None, None],
        )
        d2 = ((Xb - centre[0]) ** 2 + (Yb - centre[1]) ** 2 + (Zb - centre[2]) ** 2) / (
            radius * radius
        )
        _paint(labels, box, d2 <= 1, Tissue.BOWEL, (Tissue.FAT,))
        if bowel.random() < 0.4:
            _paint(labels, box, (d2 <= 0.35) & (Yb < centre[1]), Tissue.GAS, (Tissue.BOWEL,))

    for tissue, (x0, y0, ax, ay, angle), bottom, taper in (
        (Tissue.LIVER, (-78, -5, 62, 72, 0.3), a["liver_bottom_mm"], 90.0),
        (Tissue.SPLEEN, (88, 45, 22, 45, -0.5), a["spleen_bottom_mm"], 40.0),
    ):
        # The cross-section shrinks towards the organ's lower tip: inside where q <= scale(z)^2.
        c, s = math.cos(angle), math.sin(angle)
        q = (((X - x0) * c + (Y - y0) * s) / ax) ** 2 + ((-(X - x0) * s + (Y - y0) * c) / ay) ** 2
        q = np.where(cavity, q, np.inf).astype(np.float32)
        scale2 = np.clip((grid.z - bottom) / taper, 0.0, 1.0).astype(np.float32)
        present = np.nonzero(scale2 > 0)[0]
        if present.size:
            zs = slice(present[0], present[-1] + 1)
            _paint(
                labels,
                (zs, slice(None), slice(None)),
                q[None] <= scale2[zs, None, None],
                tissue,
                _SOFT,
            )

    for kidney in case.kidneys:
        _paint_kidney(labels, grid, kidney)
    return labels


def _paint_kidney(labels: np.ndarray, grid: _Grid, kidney: Kidney) -> None:
    au, av, aw = kidney.semi_axes_mm
    reach = 1.3 * max(au, av)
    box = _box(grid, kidney.centre_mm, (reach, reach, 1.3 * aw))
    dx = grid.x[box[2]][None, None, :] - kidney.centre_mm[0]
    dy = grid.y[box[1]][None, :, None] - kidney.centre_mm[1]
    c, s = math.cos(kidney.hilum_angle_rad), math.sin(kidney.hilum_angle_rad)
    u = (dx * c + dy * s) / au  # towards the hilum
    v = (-dx * s + dy * c) / av
    w = (grid.z[box[0]][:, None, None] - kidney.centre_mm[2]) / aw
    rho = np.sqrt(u * u + v * v + w * w)
    everything_but_bone_and_vessels = tuple(
        t
        for t in Tissue
        if t
        not in (
            Tissue.BONE_CORTICAL,
            Tissue.BONE_CANCELLOUS,
            Tissue.DISC,
            Tissue.CSF,
            Tissue.AORTA,
            Tissue.IVC,
        )
    )
    _paint(
        labels, box, rho <= 1.25, Tissue.FAT, _SOFT + (Tissue.LIVER, Tissue.SPLEEN)
    )  # perirenal fat
    _paint(labels, box, rho <= 1.0, Tissue.CORTEX, everything_but_bone_and_vessels)
    phi = np.arctan2(v, -u)
    pyramids = (rho > 0.42) & (rho < 0.8) & (np.cos(5 * phi + 4.0 * w) > -0.3)
    _paint(labels, box, pyramids, Tissue.MEDULLA, (Tissue.CORTEX,))
    sinus = ((u - 0.55) / 0.55) ** 2 + (v / 0.36) ** 2 + (w / 0.6) ** 2 <= 1.0
    _paint(labels, box, sinus, Tissue.FAT, (Tissue.CORTEX, Tissue.MEDULLA))
    pelvis = ((u - 0.45) / 0.32) ** 2 + (v / 0.13) ** 2 + (w / 0.3) ** 2 <= 1.0
    _paint(labels, box, pelvis, Tissue.URINE, (Tissue.FAT, Tissue.CORTEX, Tissue.MEDULLA))


class _LesionGeometry(NamedTuple):
    box: tuple[slice, slice, slice]
    inside: np.ndarray
    texture: np.ndarray  # unit-SD smooth field, heterogeneous enhancement
    necrosis: np.ndarray
    scar: np.ndarray
    core: np.ndarray  # the segment that inverts
    roi: np.ndarray  # ROI disc on the centre slice
    necrosis_hu: float


def _smooth_field(
    rng, a, b, c, waves: int = 6, cycles: tuple[float, float] = (0.75, 1.5)
) -> np.ndarray:
    """Sum of plane waves of ``cycles`` periods per lesion radius, in lesion-normalised coordinates."""
    field_ = np.zeros(np.broadcast_shapes(a.shape, b.shape, c.shape), dtype=np.float32)
    for _ in range(waves):
        direction = rng.normal(size=3)
        direction *= rng.uniform(*cycles) * 2 * np.pi / np.linalg.norm(direction)
        field_ += np.cos(
            direction[0] * a + direction[1] * b + direction[2] * c + rng.uniform(0, 2 * np.pi)
        )
    return field_


def _lesion_geometry(lesion: LesionLatents, grid: _Grid) -> _LesionGeometry:
    r1, r2, r3 = lesion.semi_axes_mm
    cx, cy, cz = lesion.centre_mm
    reach = max(r1, r2) + 2 * abs(grid.x[1] - grid.x[0])
    box = _box(grid, lesion.centre_mm, (reach, reach, r3 + abs(grid.z[1] - grid.z[0])))
    dx = grid.x[box[2]][None, None, :] - cx
    dy = grid.y[box[1]][None, :, None] - cy
    dz = grid.z[box[0]][:, None, None] - cz
    c, s = math.cos(lesion.rotation_rad), math.sin(lesion.rotation_rad)
    a, b, cc = (dx * c + dy * s) / r1, (-dx * s + dy * c) / r2, dz / r3
    rho = np.sqrt(a * a + b * b + cc * cc)
    inside = rho <= 1.0
    rng = np.random.default_rng(lesion.texture_seed)
    texture = _smooth_field(rng, a, b, cc)
    texture = (texture - texture[inside].mean()) / max(float(texture[inside].std()), 1e-6)
    blobs = _smooth_field(rng, a, b, cc, waves=6, cycles=(1.5, 2.5))
    candidates = inside & (rho > 0.1) & (rho < 0.85)
    necrosis = np.zeros_like(inside)
    if lesion.pattern == "necrosis" and candidates.any():
        threshold = np.quantile(blobs[candidates], 1.0 - rng.uniform(0.12, 0.25))
        necrosis = candidates & (blobs > threshold)
    scar = np.zeros_like(inside)
    if lesion.pattern == "scar":
        angle = np.arctan2(b, a)
        scar = inside & (
            (rho < 0.12)
            | ((rho < 0.5) & (np.cos(5 * angle + rng.uniform(0, 2 * np.pi)) > 0.55 + 0.8 * rho))
        )
    centre_row = np.nonzero(np.abs(grid.z[box[0]] - cz) < 0.25 * abs(grid.z[1] - grid.z[0]))[0]
    roi = np.zeros_like(inside)
    if centre_row.size:
        roi[centre_row[0]] = (dx[0] ** 2 + dy[0] ** 2 <= lesion.roi_radius_mm**2) & inside[
            centre_row[0]
        ]
    return _LesionGeometry(
        box,
        inside,
        texture,
        necrosis,
        scar,
        inside & (rho < 0.55),
        roi,
        float(rng.uniform(*figure("lesion.necrosis_hu"))),
    )


def _lesion_hu(lesion: LesionLatents, geometry: _LesionGeometry, phase: str) -> np.ndarray:
    """Attenuation of the lesion box in ``phase``; the ROI mean equals ``lesion.mean_hu[phase]``."""
    # Only this phase's attenuation enters, so one phase's image carries no other phase's latent.
    mean = lesion.mean_hu[phase]
    reference = figure("lesion.enhancement_reference_hu")[0]
    enhancement = max(mean - reference, 0.0)
    amplitude = (0.25 * enhancement + 8.0) if lesion.heterogeneous[phase] else 0.04 * enhancement
    hu = mean + amplitude * geometry.texture
    if lesion.inversion and phase in ("CM", "EX"):
        hu = hu + np.where(geometry.core, (-0.35 if phase == "CM" else 0.4) * enhancement, 0.0)
    fixed = np.zeros_like(geometry.inside)
    if phase != "NC":  # unenhanced masses are drawn homogeneous
        hu = np.where(geometry.necrosis, geometry.necrosis_hu, hu)
        fixed = fixed | geometry.necrosis
        if phase in ("CM", "NG"):  # in EX the scar has filled in
            weight = 0.2 if phase == "CM" else 0.5
            hu = np.where(geometry.scar, reference + weight * enhancement, hu)
            fixed = fixed | geometry.scar
    solid_roi = geometry.roi & ~fixed
    if geometry.roi.any():
        target = geometry.roi.sum() * mean - hu[geometry.roi].sum()
        movable = solid_roi if solid_roi.any() else geometry.roi
        hu = np.where(fixed if solid_roi.any() else False, hu, hu + target / movable.sum())
    return hu.astype(np.float32)


def _gaussian_weights(sigma: float, truncate: float) -> np.ndarray:
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


_TRUNCATE = 2.5


@dataclass(frozen=True)
class RenderedStudy:
    """Four HU volumes (z, y, x; int16) of one case, keyed by phase, on the image grid of ``spec``."""

    case: PatientCase
    spec: CohortSpec
    hu: dict[str, np.ndarray]

    def lesion_slice(self, lesion: LesionLatents, phase: str) -> int:
        """Index (0-based) of the slice through the lesion centre in ``phase``."""
        return lesion.centre_slice + self.case.shift_voxels[phase][0]


def render_volumes(case: PatientCase, spec: CohortSpec) -> RenderedStudy:
    """The four phases of ``case`` in HU: anatomy + lesions, shifted per phase, partial-volume blur and noise."""
    grid = _base_grid(spec)
    labels = anatomy_labels(case, spec)
    geometries = [(lesion, _lesion_geometry(lesion, grid)) for lesion in case.lesions]
    sigma = figure("blur_sigma_px")[0]
    gain = float(
        (_gaussian_weights(sigma, _TRUNCATE) ** 2).sum()
    )  # noise SD factor of the 2-D blur
    noise_rng = patient_rng(spec, case.index, PIXELS_STREAM)
    hu = {}
    for phase in PHASES:
        lut = np.array(
            [-1000.0] + [case.tissue_hu[phase][t.name.lower()] for t in list(Tissue)[1:]],
            np.float32,
        )
        volume = lut[labels]
        for lesion, geometry in geometries:
            region = volume[geometry.box]
            region[geometry.inside] = _lesion_hu(lesion, geometry, phase)[geometry.inside]
        dz, dy, dx = case.shift_voxels[phase]
        z0, y0, x0 = grid.pad_z - dz, grid.pad - dy, grid.pad - dx
        image = volume[z0 : z0 + spec.slices, y0 : y0 + spec.size, x0 : x0 + spec.size]
        image = image + _noise(noise_rng, image.shape, case.noise_sd / gain)
        blurred = ndimage.gaussian_filter1d(image, sigma, axis=1, truncate=_TRUNCATE)
        ndimage.gaussian_filter1d(blurred, sigma, axis=2, truncate=_TRUNCATE, output=image)
        np.rint(image, out=image)
        np.clip(image, -1024, 3071, out=image)
        hu[phase] = image.astype(np.int16)
    return RenderedStudy(case, spec, hu)


def _noise(rng: np.random.Generator, shape: tuple[int, int, int], sd: float) -> np.ndarray:
    # Drawing 16 M normals per phase dominates the render time; instead every slice
    # takes one of a few noise planes, rolled by a random offset. Slices stay independent.
    bank = rng.standard_normal((min(8, shape[0]),) + shape[1:], dtype=np.float32) * np.float32(sd)
    picks = rng.integers(len(bank), size=shape[0])
    offsets = rng.integers(0, shape[1], size=(shape[0], 2))
    out = np.empty(shape, np.float32)
    for k in range(shape[0]):
        out[k] = np.roll(bank[picks[k]], tuple(offsets[k]), axis=(0, 1))
    return out
