"""Logistic regression against Stata's glm on the Spector & Mazzeo (1980) data."""

import numpy as np
import pandas as pd
import pytest

from evaluation.stats.regression import Separation, logistic_regression

# Stata stops Newton-Raphson at its default tolerance, about 1e-7 away from the
# exact maximum likelihood estimate; statsmodels' own Stata comparison uses
# rtol 1e-6 for the same reason. The log-likelihood agrees to 1e-10.
STATA_RTOL = 1e-6


@pytest.fixture(scope="module")
def spector(reference_dir):
    return pd.read_csv(reference_dir / "spector.csv")


def test_logistic_regression_matches_stata_glm_on_spector(spector):
    result = logistic_regression(spector.GRADE, spector[["GPA", "TUCE", "PSI"]])
    expected = {
        "GPA": (2.8261124217, 1.2629410222),
        "TUCE": (0.0951576500, 0.1415542014),
        "PSI": (2.3786875041, 1.0645642079),
        "const": (-13.0213459126, 4.9313238908),
    }
    for name, (estimate, se) in expected.items():
        assert result.coefficient(name).estimate == pytest.approx(estimate, rel=STATA_RTOL)
        assert result.coefficient(name).standard_error == pytest.approx(se, rel=STATA_RTOL)
    assert result.log_likelihood == pytest.approx(-12.889634222, abs=5e-10)
    assert result.converged
    assert result.separation == Separation.NONE


def test_odds_ratio_and_its_interval_are_exponentiated_wald_limits(spector):
    gpa = logistic_regression(spector.GRADE, spector[["GPA", "TUCE", "PSI"]]).coefficient("GPA")
    assert gpa.odds_ratio == pytest.approx(np.exp(gpa.estimate))
    assert gpa.odds_ratio_ci_low == pytest.approx(
        np.exp(gpa.estimate - 1.959963984540054 * gpa.standard_error)
    )
    assert gpa.odds_ratio_ci_low < gpa.odds_ratio < gpa.odds_ratio_ci_high


def test_covariates_can_be_given_as_a_dict_of_named_vectors():
    rng = np.random.default_rng(0)
    size, age, sex, score = (
        rng.normal(10, 3, 200),
        rng.normal(60, 10, 200),
        rng.integers(0, 2, 200),
        rng.random(200),
    )
    malignant = (rng.random(200) < 1 / (1 + np.exp(-(4 * score - 2)))).astype(int)
    result = logistic_regression(
        malignant, {"model_score": score, "age": age, "sex": sex, "lesion_size": size}
    )
    assert [c.name for c in result.coefficients] == [
        "model_score",
        "age",
        "sex",
        "lesion_size",
        "const",
    ]
    assert result.coefficient("model_score").estimate > 0


def test_complete_separation_is_reported_not_raised():
    x = np.arange(10.0)
    result = logistic_regression((x > 4.5).astype(int), {"x": x})
    assert result.separation == Separation.COMPLETE
    assert not result.converged


def test_quasi_separation_is_reported():
    x = np.array([1, 2, 3, 4, 5, 5, 6, 7, 8, 9.0])
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    assert logistic_regression(y, {"x": x}).separation == Separation.QUASI
