"""A synthetic four-phase renal CT (body, spine, aorta, two kidneys, one left renal mass).

Built on :func:`tests.factories.dicom.make_ct_study` so the DICOM attributes
are the factories'; only the pixels are replaced by a phantom whose enhancement follows
the phase, so that screenshots look like a renal CT and ROI statistics mean something.
"""

from __future__ import annotations

import functools

import numpy as np

from tests.factories.dicom import dataset_bytes, make_ct_study

# HU per phase: cortex, medulla, aorta, mass.
ENHANCEMENT = {
    "NC": (30, 30, 40, 35),
    "CM": (190, 70, 320, 130),
    "NG": (150, 150, 170, 95),
    "EX": (120, 120, 110, 70),
}
PIXEL_SPACING_MM = 0.7
ORIGIN_MM = -160.0
MASS_CENTRE = (300, 372)  # (row, column) in a 512 x 512 slice: patient's left kidney
MASS_RADIUS_PX = 18


@functools.lru_cache(maxsize=2)
def _anatomy(size: int):
    """Coordinates (in 512-grid pixels) and the slice-independent masks."""
    scale = size / 512
    rows, columns = np.mgrid[0:size, 0:size] / scale
    body = ((columns - 256) / 210) ** 2 + ((rows - 270) / 160) ** 2
    spine = np.hypot(rows - 340, columns - 256) <= 26
    aorta = np.hypot(rows - 285, columns - 256) <= 13
    mass_distance = np.hypot(rows - MASS_CENTRE[0], columns - MASS_CENTRE[1])
    kidneys = [((columns - c) ** 2, (rows - 300) ** 2) for c in (150, 362)]
    return body, spine, aorta, mass_distance, kidneys


def _slice_hu(phase: str, z_fraction: float, size: int, noise: np.ndarray) -> np.ndarray:
    cortex, medulla, aorta_hu, mass = ENHANCEMENT[phase]
    body, spine, aorta, mass_distance, kidneys = _anatomy(size)
    hu = np.full((size, size), -1000.0)
    hu[body <= 1] = -100  # subcutaneous fat
    hu[body <= 0.85] = 40  # soft tissue
    hu[spine] = 700
    hu[aorta] = aorta_hu
    extent = 1 - ((z_fraction - 0.5) / 0.38) ** 2  # kidneys span the middle three quarters
    if extent > 0:
        for dx2, dy2 in kidneys:
            shape = dx2 / (45**2 * extent) + dy2 / (70**2 * extent)
            hu[shape <= 1] = cortex
            hu[shape <= 0.45] = medulla
    mass_extent = MASS_RADIUS_PX**2 - ((z_fraction - 0.5) * 64) ** 2
    if mass_extent > 0:
        hu[mass_distance <= mass_extent**0.5] = mass
    return hu + noise


@functools.lru_cache(maxsize=4)
def phantom_study_files(n: int = 64, size: int = 512) -> tuple[str, tuple[tuple[str, bytes], ...]]:
    """(StudyInstanceUID, ((file name, Part 10 bytes), ...)) of an ``n``-slice four-phase phantom."""
    study = make_ct_study(
        n=n,
        Rows=size,
        Columns=size,
        PixelData=b"",
        PixelSpacing=[PIXEL_SPACING_MM * 512 / size] * 2,
    )
    rng = np.random.default_rng(7)
    noises = [rng.normal(0, 10, (size, size)) for _ in range(5)]
    files = []
    for phase, slices in study.items():
        for index, ds in enumerate(slices):
            hu = _slice_hu(phase, index / max(n - 1, 1), size, noises[index % len(noises)])
            ds.PixelData = np.clip(np.round(hu + 1024), 0, 4095).astype("<u2").tobytes()
            files.append((f"{phase}/IM{index + 1:04d}.dcm", dataset_bytes(ds)))
    return study["NC"][0].StudyInstanceUID, tuple(files)
