"""ROI geometry in patient coordinates (mm): validation and simple measures.

Framework-free: plain lists in, plain values out. The serializer, the services and
the SR importer share :func:`validate_points`, so every way in checks the same rules.
"""

from __future__ import annotations

import math

import numpy as np

# Number of points each drawing tool produces (Cornerstone3D annotation handles).
# ellipse: the two ends of each axis (major 0-1, minor 2-3); rectangle: four corners
# in drawing order; length: the two end points; freehand: an open list of vertices.
POINT_COUNTS = {"ellipse": (4, 4), "rectangle": (4, 4), "length": (2, 2), "freehand": (3, None)}


class GeometryError(ValueError):
    """Points that do not describe an ROI of the given tool; the message says why."""


def validate_points(tool: str, points) -> list[list[float]]:
    """Check ``points`` for ``tool`` and return them as lists of three floats.

    Rules: a list of ``[x, y, z]`` lists of finite numbers (booleans and strings are
    not numbers); ellipse and rectangle 4 points, length 2, freehand at least 3.
    Raises :class:`GeometryError` naming the first offending point.
    """
    if tool not in POINT_COUNTS:
        raise GeometryError(f"unknown tool {tool!r}; expected one of {', '.join(POINT_COUNTS)}")
    if not isinstance(points, (list, tuple)):
        raise GeometryError("points must be a list of [x, y, z] lists (patient coordinates, mm)")
    checked = []
    for index, point in enumerate(points):
        if not isinstance(point, (list, tuple)) or len(point) != 3:
            raise GeometryError(f"point {index} is not a list of 3 numbers [x, y, z]")
        for value in point:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise GeometryError(f"point {index} holds {value!r}, which is not a number")
            if not math.isfinite(value):
                raise GeometryError(
                    f"point {index} holds {value!r}; coordinates must be finite numbers"
                )
        checked.append([float(v) for v in point])
    low, high = POINT_COUNTS[tool]
    if high is not None and len(checked) != low:
        raise GeometryError(f"a {tool} ROI has exactly {low} points, got {len(checked)}")
    if len(checked) < low:
        raise GeometryError(f"a {tool} ROI has at least {low} points, got {len(checked)}")
    return checked


def _sub(a, b):
    return [a[i] - b[i] for i in range(3)]


def _norm(v):
    return math.sqrt(sum(c * c for c in v))


def _cross(a, b):
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def length_mm(points) -> float:
    """Distance between the first two points (the length tool's measure)."""
    return _norm(_sub(points[1], points[0]))


def area_mm2(tool: str, points) -> float:
    """Area of a planar ROI: ellipse pi*a*b from its axis end points, polygon area otherwise."""
    if tool == "length":
        return 0.0
    if tool == "ellipse":
        return math.pi * length_mm(points[0:2]) / 2 * length_mm(points[2:4]) / 2
    total = [0.0, 0.0, 0.0]
    origin = points[0]
    for a, b in zip(points[1:], points[2:]):
        c = _cross(_sub(a, origin), _sub(b, origin))
        total = [total[i] + c[i] for i in range(3)]
    return _norm(total) / 2


def is_rectangle(points, tolerance=1e-3) -> bool:
    """True for four points whose consecutive edges meet at right angles."""
    if len(points) != 4:
        return False
    for i in range(4):
        e1 = _sub(points[(i + 1) % 4], points[i])
        e2 = _sub(points[(i + 2) % 4], points[(i + 1) % 4])
        n1, n2 = _norm(e1), _norm(e2)
        if n1 == 0 or n2 == 0 or abs(sum(e1[k] * e2[k] for k in range(3))) > tolerance * n1 * n2:
            return False
    return True


def patient_to_pixel(
    point_mm, image_position, image_orientation, pixel_spacing
) -> tuple[float, float]:
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
