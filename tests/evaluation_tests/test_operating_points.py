"""Cut-offs and binomial intervals."""

import numpy as np
import pytest

from evaluation.stats import operating_points as op


def test_youden_cutoff_for_s100b_reproduces_proc_table(asah):
    best = op.youden_cutoff(asah.s100b, asah.poor_outcome)
    assert best.sensitivity == pytest.approx(0.6341463414634146, abs=1e-12)
    assert best.specificity == pytest.approx(0.8055555555555556, abs=1e-12)
    point = op.operating_point(asah.s100b, asah.poor_outcome, best.cutoff)
    assert (point.true_positives, point.false_negatives) == (26, 15)
    assert (point.true_negatives, point.false_positives) == (58, 14)


def test_youden_cutoff_lies_between_observed_scores(asah):
    best = op.youden_cutoff(asah.s100b, asah.poor_outcome)
    assert best.cutoff not in set(asah.s100b)
    assert best.cutoff == pytest.approx(0.205)


@pytest.mark.parametrize(
    "successes, total, low, high",
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombe_1998_table_1(successes, total, low, high):
    got_low, got_high = op.wilson_interval(successes, total)
    assert got_low == pytest.approx(low, abs=0.00005)
    assert got_high == pytest.approx(high, abs=0.00005)


def test_clopper_pearson_interval_matches_newcombe_1998_table_1():
    # Newcombe (1998) Table I, method 5 (exact): 81/263 → 0.2527–0.3676, 0/20 → 0–0.1684.
    assert op.clopper_pearson_interval(81, 263) == pytest.approx((0.2527, 0.3676), abs=0.00005)
    assert op.clopper_pearson_interval(0, 20) == pytest.approx((0.0, 0.1684), abs=0.00005)


def test_operating_point_reports_all_five_measures_with_intervals():
    truth = np.array([1, 1, 1, 0, 0, 0, 0])
    point = op.operating_point([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.3], truth, cutoff=0.5)
    assert point.sensitivity.estimate == pytest.approx(2 / 3)
    assert point.specificity.estimate == pytest.approx(3 / 4)
    assert point.accuracy.estimate == pytest.approx(5 / 7)
    assert point.positive_predictive_value.estimate == pytest.approx(2 / 3)
    assert point.negative_predictive_value.estimate == pytest.approx(3 / 4)
    assert point.sensitivity.wilson_low < 2 / 3 < point.sensitivity.wilson_high


def test_score_equal_to_cutoff_is_called_positive():
    point = op.operating_point([0.5, 0.4], [1, 0], cutoff=0.5)
    assert point.true_positives == 1 and point.true_negatives == 1


def test_bootstrap_of_youden_point_is_seeded_and_its_intervals_cover_the_apparent_point(asah):
    first = op.bootstrap_youden_operating_point(
        asah.s100b, asah.poor_outcome, n_resamples=300, seed=7
    )
    again = op.bootstrap_youden_operating_point(
        asah.s100b, asah.poor_outcome, n_resamples=300, seed=7
    )
    assert first == again
    assert first.sensitivity.estimate == pytest.approx(0.6341463414634146)
    assert first.cutoff.ci_low <= first.cutoff.estimate <= first.cutoff.ci_high
    assert first.specificity.ci_low < 0.8055555555555556 < first.specificity.ci_high


def test_bootstrap_with_clusters_resamples_whole_patients():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 80)
    scores = truth + rng.normal(size=80)
    patients = np.repeat(np.arange(40), 2)
    result = op.bootstrap_youden_operating_point(
        scores, truth, n_resamples=200, seed=1, clusters=patients
    )
    assert result.sensitivity.ci_low < result.sensitivity.estimate <= result.sensitivity.ci_high
