"""ROI statistics from the pixels of a slice, measured the way the viewer measures them.

The viewer (Cornerstone3D 5.x: EllipticalROITool, RectangleROITool and
PlanarFreehandROITool with BasicStatsCalculator) takes the pixels whose centre lies
inside the ROI and reports their mean, standard deviation (population: divisor n,
not n - 1), minimum and maximum in modality units (HU after the rescale), and the
area of the drawn shape in mm² (an ellipse's pi*a*b from its axes, a polygon's
area: :func:`annotations.geometry.area_mm2`), not the pixel count times the pixel
area. The browser stores each value rounded to 0.001 (``frontend/src/tools.js``);
:meth:`RoiStatistics.as_stats` does the same, so an ROI measured here is "saved"
when the viewer measures it again.

Framework-free: a NumPy image and the DICOM plane geometry in, plain values out.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from inference.radiomics import RoiMaskError, roi_mask

from .geometry import area_mm2

__all__ = ["RoiMaskError", "RoiStatistics", "measure_roi"]


class RoiStatistics(NamedTuple):
    """Pixel statistics (HU) and area (mm²) of one area ROI on one slice."""

    mean: float
    std_dev: float
    minimum: float
    maximum: float
    area: float
    pixel_count: int

    def as_stats(self) -> dict[str, float]:
        """The ``ROI.stats`` object, with the viewer's names and its rounding (0.001)."""
        values = {"mean": self.mean, "stdDev": self.std_dev, "min": self.minimum, "max": self.maximum, "area": self.area}
        return {name: round(float(value), 3) for name, value in values.items()}


def measure_roi(tool: str, points, image_hu: np.ndarray, image_position, image_orientation, pixel_spacing) -> RoiStatistics:
    """Statistics of the pixels of ``image_hu`` (rows, columns; HU) inside an area ROI.

    ``points`` are the ROI's stored points in patient coordinates (mm); the slice is
    placed by its DICOM ImagePositionPatient, ImageOrientationPatient and
    PixelSpacing. Raises :class:`RoiMaskError` for a ``length`` ROI or an ROI that
    contains no pixel centre of the slice.
    """
    image = np.asarray(image_hu, dtype=np.float64)
    mask = roi_mask(tool, points, image_position, image_orientation, pixel_spacing, image.shape)
    inside = image[mask]
    return RoiStatistics(
        mean=float(inside.mean()),
        std_dev=float(inside.std(ddof=0)),
        minimum=float(inside.min()),
        maximum=float(inside.max()),
        area=float(area_mm2(tool, points)),
        pixel_count=int(inside.size),
    )
