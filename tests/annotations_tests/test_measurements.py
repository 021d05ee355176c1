"""ROI statistics measured on a slice as the viewer measures them (no database)."""

import math

import numpy as np
import pytest

from annotations.measurements import RoiMaskError, measure_roi

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def test_an_ellipse_reports_the_population_sd_of_the_pixels_whose_centre_is_inside_and_its_drawn_area():
    image = np.arange(100, dtype=float).reshape(10, 10)  # HU = 10 * row + column
    # a circle of radius 1.2 mm around the centre of pixel (4, 5), 1 mm pixels: 5 pixel centres inside
    points = [[5.0, 2.8, 0.0], [5.0, 5.2, 0.0], [3.8, 4.0, 0.0], [6.2, 4.0, 0.0]]
    stats = measure_roi("ellipse", points, image, (0.0, 0.0, 0.0), AXIAL, (1.0, 1.0))
    inside = np.array([35, 44, 45, 46, 55], dtype=float)
    assert stats.pixel_count == 5
    assert stats.mean == pytest.approx(45.0)
    assert stats.std_dev == pytest.approx(
        inside.std(ddof=0)
    )  # divisor n, as Cornerstone3D's BasicStatsCalculator
    assert (stats.minimum, stats.maximum) == (35.0, 55.0)
    assert stats.area == pytest.approx(math.pi * 1.2 * 1.2)  # the drawn circle, not 5 pixels
    assert stats.as_stats() == {
        "mean": 45.0,
        "stdDev": round(inside.std(), 3),
        "min": 35.0,
        "max": 55.0,
        "area": round(math.pi * 1.44, 3),
    }


def test_a_length_roi_has_no_statistics():
    with pytest.raises(RoiMaskError, match="no area"):
        measure_roi(
            "length",
            [[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]],
            np.zeros((4, 4)),
            (0.0, 0.0, 0.0),
            AXIAL,
            (1.0, 1.0),
        )
