"""ROI point rules and measures (no database)."""

import math

import pytest

from annotations.geometry import GeometryError, area_mm2, is_rectangle, length_mm, validate_points


def test_valid_points_come_back_as_floats():
    assert validate_points("length", [[0, 0, 0], [3, 4, 0]]) == [[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]]


@pytest.mark.parametrize(
    "tool,points",
    [
        ("ellipse", [[0, 0, 0]] * 3),
        ("rectangle", [[0, 0, 0]] * 5),
        ("length", [[0, 0, 0]] * 3),
        ("freehand", [[0, 0, 0]] * 2),
        ("length", [[0, 0, float("nan")], [0, 0, 0]]),
        ("circle", [[0, 0, 0]] * 4),
    ],
)
def test_invalid_points_raise_with_a_reason(tool, points):
    with pytest.raises(GeometryError):
        validate_points(tool, points)


def test_measures():
    assert length_mm([[0, 0, 0], [3, 4, 0]]) == 5.0
    assert area_mm2("rectangle", [[0, 0, 0], [4, 0, 0], [4, 2, 0], [0, 2, 0]]) == pytest.approx(8.0)
    assert area_mm2("ellipse", [[-2, 0, 0], [2, 0, 0], [0, -1, 0], [0, 1, 0]]) == pytest.approx(
        2 * math.pi
    )
    assert is_rectangle([[0, 0, 0], [4, 0, 0], [4, 2, 0], [0, 2, 0]])
    assert not is_rectangle([[0, 0, 0], [4, 0, 0], [5, 2, 0], [0, 2, 0]])
