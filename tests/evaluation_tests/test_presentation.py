"""Numbers as the comparison page prints them (journal style)."""

from evaluation.presentation import fmt, fmt_ci


def test_negative_values_get_a_true_minus_sign_and_a_value_that_rounds_to_zero_gets_none():
    assert fmt(-0.5) == "−0.50"
    assert fmt(-0.004) == "0.00"
    assert fmt(0.004) == "0.00"
    assert fmt(-0.0004, 3) == "0.000" and fmt(-0.0006, 3) == "−0.001"
    assert fmt(float("nan")) == "n/a" and fmt(None) == "n/a"


def test_an_interval_uses_a_dash_unless_a_bound_is_negative():
    assert fmt_ci(0.80, 0.93) == "0.80–0.93"
    assert fmt_ci(-0.04, 0.10) == "−0.04 to 0.10"
