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

from .geometry import area_mm2, patient_to_pixel

__all__ = ["RoiMaskError", "RoiStatistics", "measure_roi", "roi_mask"]


class RoiMaskError(ValueError):
    """An ROI that encloses no pixel of its slice (the message says why)."""


def _inside_polygon(rows, cols, polygon_rc) -> np.ndarray:
    """Even-odd rule for points ``(rows, cols)`` against a closed polygon of ``(row, col)`` vertices."""
    inside = np.zeros(rows.shape, bool)
    vertices = np.asarray(polygon_rc, float)
    for (r1, c1), (r2, c2) in zip(vertices, np.roll(vertices, -1, axis=0)):
        crosses = (r1 > rows) != (r2 > rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            col_at_row = c1 + (rows - r1) * (c2 - c1) / (r2 - r1)
        inside ^= crosses & (cols < col_at_row)
    return inside


def roi_mask(
    tool: str, points, image_position, image_orientation, pixel_spacing, shape
) -> np.ndarray:
    """Boolean mask ``(rows, columns)`` of the pixels of one slice whose centre lies inside an ROI.

    ``points`` are the ROI's stored points in patient coordinates (mm; see
    ``annotations.geometry``): an ``ellipse``'s four axis end points (major 0-1, minor
    2-3; a circle is an ellipse), a ``rectangle``'s four corners or a ``freehand``
    outline (closed, even-odd rule). They are projected onto the slice given by its
    DICOM ImagePositionPatient, ImageOrientationPatient and PixelSpacing. Raises
    :class:`RoiMaskError` for a ``length`` ROI (no area) or an ROI that contains no
    pixel centre of the slice.
    """
    if tool == "length":
        raise RoiMaskError("a length ROI has no area")
    if tool not in ("ellipse", "rectangle", "freehand"):
        raise RoiMaskError(f"unknown ROI tool {tool!r}")
    rc = np.array(
        [patient_to_pixel(p, image_position, image_orientation, pixel_spacing) for p in points],
        float,
    )
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(float)
    if tool == "ellipse":
        if len(rc) != 4:
            raise RoiMaskError(f"an ellipse ROI has 4 points, got {len(rc)}")
        centre = rc.mean(axis=0)
        axes = np.column_stack(
            [(rc[1] - rc[0]) / 2.0, (rc[3] - rc[2]) / 2.0]
        )  # conjugate semi-diameters
        if abs(np.linalg.det(axes)) < 1e-12:
            raise RoiMaskError("the ellipse ROI is degenerate (its axes have no area on the slice)")
        offsets = np.stack([rows - centre[0], cols - centre[1]])
        local = np.linalg.solve(axes, offsets.reshape(2, -1)).reshape(offsets.shape)
        mask = (local**2).sum(
            axis=0
        ) <= 1.0 + 1e-9  # a centre on the outline (up to rounding) is inside
    else:
        if len(rc) < 3:
            raise RoiMaskError(f"a {tool} ROI needs at least 3 points, got {len(rc)}")
        mask = _inside_polygon(rows, cols, rc)
    if not mask.any():
        raise RoiMaskError(
            "the ROI contains no pixel centre of its slice (too small, or outside the image)"
        )
    return mask


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
        values = {
            "mean": self.mean,
            "stdDev": self.std_dev,
            "min": self.minimum,
            "max": self.maximum,
            "area": self.area,
        }
        return {name: round(float(value), 3) for name, value in values.items()}


def measure_roi(
    tool: str, points, image_hu: np.ndarray, image_position, image_orientation, pixel_spacing
) -> RoiStatistics:
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
