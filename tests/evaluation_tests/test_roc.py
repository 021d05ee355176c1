"""ROC/AUC/DeLong against pROC on the aSAH data (Robin et al. 2011)."""

import numpy as np
import pytest

from evaluation.stats import roc

PROC_TOLERANCE = 1e-9


def test_auc_matches_proc_for_wfns_ndka_s100b(asah):
    result = roc.delong_covariance(asah[["wfns", "ndka", "s100b"]].to_numpy().T, asah.poor_outcome)
    np.testing.assert_allclose(
        result.auc, [0.823678861788618, 0.611957994579946, 0.73136856], atol=PROC_TOLERANCE
    )


def test_delong_covariance_matrix_matches_proc(asah):
    result = roc.delong_covariance(asah[["wfns", "ndka", "s100b"]].to_numpy().T, asah.poor_outcome)
    expected = np.array(
        [
            [0.00146991470882363, -0.000532967856762438, 0.00119615567376754],
            [-0.000532967856762438, 0.0031908105493913, -0.000756164938056579],
            [0.00119615567376754, -0.000756164938056579, 0.00266868245717244],
        ]
    )
    np.testing.assert_allclose(result.covariance, expected, atol=PROC_TOLERANCE)


def test_delong_ci_of_ndka_auc_matches_proc(asah):
    interval = roc.delong_auc_ci(asah.ndka, asah.poor_outcome)
    assert interval.ci_low == pytest.approx(0.501244999271703, abs=PROC_TOLERANCE)
    assert interval.ci_high == pytest.approx(0.722670989888189, abs=PROC_TOLERANCE)


def test_delong_paired_test_matches_proc_for_wfns_vs_s100b(asah):
    result = roc.delong_test(asah.wfns, asah.s100b, asah.poor_outcome)
    assert result.statistic == pytest.approx(2.20898359144091, abs=PROC_TOLERANCE)
    assert result.p_value == pytest.approx(0.0271757822291882, abs=PROC_TOLERANCE)
    assert result.ci_low == pytest.approx(0.0104061769564846, abs=PROC_TOLERANCE)
    assert result.ci_high == pytest.approx(0.174214419249478, abs=PROC_TOLERANCE)


@pytest.mark.parametrize(
    "first, second, z, p",
    [
        ("wfns", "ndka", 2.79777591868904, 0.00514557970691098),
        ("ndka", "s100b", -1.39077002573558, 0.164295175223054),
    ],
)
def test_delong_paired_test_matches_proc_for_other_pairs(asah, first, second, z, p):
    result = roc.delong_test(asah[first], asah[second], asah.poor_outcome)
    assert result.statistic == pytest.approx(z, abs=PROC_TOLERANCE)
    assert result.p_value == pytest.approx(p, abs=PROC_TOLERANCE)


def test_delong_unpaired_test_matches_proc_welch_for_wfns_vs_s100b(asah):
    y = asah.poor_outcome
    result = roc.delong_unpaired_test(asah.wfns, y, asah.s100b, y)
    assert result.statistic == pytest.approx(1.43490640926908, abs=PROC_TOLERANCE)
    assert result.p_value == pytest.approx(0.152825378808796, abs=PROC_TOLERANCE)


def test_omnibus_test_of_two_scores_equals_squared_paired_z(asah):
    y = asah.poor_outcome
    omnibus = roc.delong_omnibus_test(asah[["wfns", "s100b"]].to_numpy().T, y)
    assert omnibus.df == 1
    assert omnibus.chi_square == pytest.approx(2.20898359144091**2, rel=1e-9)
    assert omnibus.p_value == pytest.approx(0.0271757822291882, rel=1e-9)


def test_omnibus_test_reports_holm_adjusted_pairwise_tests(asah):
    omnibus = roc.delong_omnibus_test(
        asah[["wfns", "ndka", "s100b"]].to_numpy().T, asah.poor_outcome
    )
    assert omnibus.df == 2
    holm = {(pair.first, pair.second): pair.holm_p_value for pair in omnibus.pairwise}
    assert holm[(0, 1)] == pytest.approx(3 * 0.00514557970691098)
    assert holm[(0, 2)] == pytest.approx(2 * 0.0271757822291882)
    assert holm[(1, 2)] == pytest.approx(0.164295175223054)


def test_direction_is_not_flipped_when_auc_is_below_half():
    truth = np.array([0, 0, 0, 1, 1, 1])
    score = np.array([6, 5, 4, 3, 2, 1.0])
    assert roc.empirical_auc(score, truth) == 0.0
    assert roc.empirical_auc(-score + 0.5 * (np.arange(6) == 0), truth) == 1.0


def test_ties_between_positive_and_negative_get_half_credit():
    truth = np.array([0, 1, 0, 1])
    score = np.array([1.0, 1.0, 2.0, 3.0])
    # pairs (pos, neg): (1,1) tie ½, (1,2) 0, (3,1) 1, (3,2) 1 → 2.5 / 4
    assert roc.empirical_auc(score, truth) == pytest.approx(0.625)


def test_auc_equals_pairwise_mann_whitney_count():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 60)
    score = rng.integers(0, 5, 60).astype(float) + truth
    positives, negatives = score[truth == 1], score[truth == 0]
    diff = positives[:, None] - negatives[None, :]
    pairwise = np.mean((diff > 0) + 0.5 * (diff == 0))
    assert roc.empirical_auc(score, truth) == pytest.approx(pairwise, abs=1e-12)


def test_delong_ci_is_clipped_at_one():
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([1, 2, 3, 5, 4, 6, 7, 8.0])
    interval = roc.delong_auc_ci(score, truth)
    assert interval.auc < 1 < interval.auc + 1.96 * np.sqrt(interval.variance)
    assert interval.ci_high == 1.0


def test_roc_curve_runs_from_origin_to_one_one():
    truth = np.array([0, 1, 0, 1, 1])
    curve = roc.roc_curve([0.1, 0.9, 0.4, 0.4, 0.8], truth)
    assert (curve.false_positive_rate[0], curve.true_positive_rate[0]) == (0, 0)
    assert (curve.false_positive_rate[-1], curve.true_positive_rate[-1]) == (1, 1)
    area = np.trapezoid(curve.true_positive_rate, curve.false_positive_rate)
    assert area == pytest.approx(roc.empirical_auc([0.1, 0.9, 0.4, 0.4, 0.8], truth))
