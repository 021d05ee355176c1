"""What cohort to generate: :class:`CohortSpec`, its image geometry and the scanner's coordinates.

Coordinates are DICOM patient coordinates (LPS, mm): x to the patient's left, y
posterior, z superior. Image rows run +y, columns +x.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from cohort.figures import SUBTYPES, default_subtype_mix

# The transfer syntaxes a cohort can be written in, by the name ``make_cohort`` takes.
TRANSFER_SYNTAXES = {
    "explicit-le": ExplicitVRLittleEndian,
    "implicit-le": ImplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless,
    "jpeg2000": JPEG2000Lossless,
}


@dataclass(frozen=True)
class CohortSpec:
    """What to generate. ``subtype_mix`` weights are normalised; unknown subtypes are errors."""

    patients: int = 160
    seed: int = 0
    size: int = 512
    slices: int = 64
    slice_mm: float = 2.5
    fov_mm: float = 380.0
    transfer_syntax: str = "explicit-le"
    subtype_mix: Mapping[str, float] = field(default_factory=default_subtype_mix)
    lesions_per_patient: float = 168 / 159

    def __post_init__(self):
        if self.patients < 1:
            raise ValueError("patients must be at least 1")
        if self.size < 64:
            raise ValueError("size must be at least 64 pixels")
        if self.slices < 8:
            raise ValueError(
                "slices must be at least 8 (the lesion and the inter-phase shift must fit)"
            )
        if self.slice_mm <= 0 or self.fov_mm <= 0:
            raise ValueError("slice_mm and fov_mm must be positive")
        if self.transfer_syntax not in TRANSFER_SYNTAXES:
            raise ValueError(f"transfer_syntax must be one of {', '.join(TRANSFER_SYNTAXES)}")
        if not 1.0 <= self.lesions_per_patient <= 2.0:
            raise ValueError("lesions_per_patient must lie in [1, 2]")
        unknown = sorted(set(self.subtype_mix) - set(SUBTYPES))
        if unknown:
            raise ValueError(f"unknown subtypes {unknown}; known: {', '.join(SUBTYPES)}")
        weights = {s: float(self.subtype_mix.get(s, 0.0)) for s in SUBTYPES}
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("subtype_mix weights must be >= 0 with a positive sum")
        total = sum(weights.values())
        object.__setattr__(self, "subtype_mix", {s: w / total for s, w in weights.items()})

    @property
    def pixel_mm(self) -> float:
        return self.fov_mm / self.size

    @property
    def z_top_mm(self) -> float:
        """z of the first (most superior) slice; the scan is centred on z = -120 mm."""
        return -120.0 + (self.slices - 1) * self.slice_mm / 2.0

    def slice_z(self, index: np.ndarray | int) -> np.ndarray | float:
        return self.z_top_mm - np.asarray(index) * self.slice_mm

    @property
    def first_pixel_mm(self) -> float:
        """x (and y) of the centre of the first column (row)."""
        return -self.fov_mm / 2.0 + self.pixel_mm / 2.0
