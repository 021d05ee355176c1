"""Obuchowski-Rockette MRMC against OR-DBM MRMC 2.51 output on Franken et al. (1992)."""

import numpy as np
import pandas as pd
import pytest

from evaluation.stats import mrmc
from tests.factories.ratings import wide_ratings


@pytest.fixture(scope="module")
def franken(reference_dir):
    return wide_ratings(pd.read_csv(reference_dir / "franken.csv"))


@pytest.fixture(scope="module")
def franken_result(franken):
    return mrmc.or_mrmc(*franken)


@pytest.fixture(scope="module")
def nico(reference_dir):
    frame = pd.read_csv(reference_dir / "nico_cad_dataset09.csv").sort_values(["reader", "case"])
    ratings = frame.rating.to_numpy(dtype=float).reshape(
        frame.reader.nunique(), frame.case.nunique()
    )
    truth = frame[frame.reader == 1].truth.to_numpy()
    return ratings, truth


def test_franken_treatment_mean_aucs_match_or_dbm_mrmc(franken_result):
    np.testing.assert_allclose(
        franken_result.reader_metric.mean(axis=1), [0.84774989, 0.83689507], atol=5e-9
    )


def test_franken_jackknife_cov2_and_cov3_match_or_dbm_mrmc(franken_result):
    assert franken_result.components.cov2 == pytest.approx(0.00048364, abs=5e-9)
    assert franken_result.components.cov3 == pytest.approx(0.00051251, abs=5e-9)


def test_franken_random_readers_random_cases_matches_or_dbm_mrmc(franken_result):
    test = franken_result.random_readers_random_cases
    assert test.statistic == pytest.approx(4.69, abs=0.005)
    assert test.ddf == pytest.approx(3.00, abs=0.005)
    assert test.p_value == pytest.approx(0.1188, abs=0.00005)
    assert test.differences[0].ci_low == pytest.approx(-0.00509, abs=0.000005)
    assert test.differences[0].ci_high == pytest.approx(0.02680, abs=0.000005)


def test_hillis_ddf_truncates_to_t_minus_1_times_r_minus_1_when_cov2_below_cov3(franken_result):
    assert franken_result.components.cov2 < franken_result.components.cov3
    assert franken_result.random_readers_random_cases.ddf == pytest.approx((2 - 1) * (4 - 1))


def test_franken_single_treatment_df_match_or_dbm_mrmc(franken_result):
    dfs = [estimate.df for estimate in franken_result.treatment_estimates]
    assert dfs == pytest.approx([70.12, 253.64], abs=0.005)


def test_franken_fixed_readers_random_cases_matches_or_dbm_mrmc(franken_result):
    test = franken_result.fixed_readers_random_cases
    assert test.statistic == pytest.approx(0.32101, abs=0.000005)
    assert test.p_value == pytest.approx(0.5710, abs=0.00005)
    assert test.ddf is None


def test_random_readers_fixed_cases_uses_interaction_mean_square(franken_result):
    test = franken_result.random_readers_fixed_cases
    c = franken_result.components
    assert test.statistic == pytest.approx(c.ms_treatment / c.ms_treatment_reader)
    assert test.ddf == 3


def test_van_dyke_random_readers_random_cases_matches_mrmcaov(reference_dir):
    # MRMCaov's documented VanDyke example: F 4.456, df (1, 15.26), p 0.0517.
    result = mrmc.or_mrmc(*wide_ratings(pd.read_csv(reference_dir / "vandyke.csv")))
    test = result.random_readers_random_cases
    assert test.statistic == pytest.approx(4.456, abs=0.0005)
    assert test.ddf == pytest.approx(15.26, abs=0.005)
    assert test.p_value == pytest.approx(0.0517, abs=0.00005)


def test_delong_covariance_gives_the_same_means_and_nearby_test(franken):
    jackknife = mrmc.or_mrmc(*franken)
    delong = mrmc.or_mrmc(*franken, covariance="delong")
    np.testing.assert_allclose(delong.reader_metric, jackknife.reader_metric)
    assert delong.components.var == pytest.approx(jackknife.components.var, rel=0.05)


def test_cluster_jackknife_equals_case_jackknife_when_every_cluster_has_one_case(franken):
    ratings, truth = franken
    by_case = mrmc.or_mrmc(ratings, truth)
    by_cluster = mrmc.or_mrmc(ratings, truth, clusters=np.arange(len(truth))[::-1] + 1000)
    np.testing.assert_allclose(by_cluster.covariance, by_case.covariance, atol=1e-15)


def test_cluster_jackknife_leaves_out_whole_patients(franken):
    ratings, truth = franken
    patients = np.arange(len(truth)) // 2
    rows = ratings.reshape(-1, len(truth))
    expected = []
    for patient in np.unique(patients):
        keep = patients != patient
        expected.append(mrmc.reader_metrics(rows[:, keep], truth[keep]))
    got = mrmc.jackknife_metrics(rows, truth == 1, "auc", None, clusters=patients)
    np.testing.assert_allclose(got, np.array(expected), atol=1e-12)


def test_sensitivity_jackknife_uses_positive_cases_only(franken):
    ratings, truth = franken
    rows = ratings.reshape(-1, len(truth))
    pseudo = mrmc.jackknife_metrics(rows, truth == 1, "sensitivity", 3.0)
    assert pseudo.shape[0] == truth.sum() == 67
    positives = (rows[:, truth == 1] >= 3.0).astype(float)
    k = positives.shape[1]
    # Jackknife of a mean equals the sample variance of the mean: (K-1)/K Σ(θ_(k)-θ̄)² = s²/K.
    expected = np.cov(positives) / k
    result = mrmc.or_mrmc(ratings, truth, metric="sensitivity", threshold=3.0)
    np.testing.assert_allclose(result.covariance, expected, atol=1e-15)


def test_specificity_calls_rating_below_threshold_negative(franken):
    ratings, truth = franken
    result = mrmc.or_mrmc(ratings, truth, metric="specificity", threshold=3.0)
    expected = (ratings[:, :, truth == 0] < 3.0).mean(axis=2)
    np.testing.assert_allclose(result.reader_metric, expected)


def test_bootstrap_covariance_is_seeded_and_close_to_jackknife(franken):
    ratings, truth = franken
    first = mrmc.or_mrmc(ratings, truth, covariance="bootstrap", n_bootstrap=200, seed=3)
    again = mrmc.or_mrmc(ratings, truth, covariance="bootstrap", n_bootstrap=200, seed=3)
    np.testing.assert_array_equal(first.covariance, again.covariance)
    assert first.components.var == pytest.approx(
        mrmc.or_mrmc(ratings, truth).components.var, rel=0.25
    )


def test_model_vs_readers_on_nico_cad_gives_sensible_numbers(nico):
    ratings, truth = nico
    result = mrmc.model_vs_readers(ratings[1:], ratings[0], truth)  # reader 1 is CAD
    assert result.model_metric == pytest.approx(0.81693, abs=5e-6)
    assert result.mean_reader_metric == pytest.approx(0.84866, abs=5e-6)
    rrrc = result.random_readers_random_cases
    assert rrrc.mean_difference == pytest.approx(result.mean_reader_metric - result.model_metric)
    assert rrrc.ci_low < rrrc.mean_difference < rrrc.ci_high
    assert 0.05 < rrrc.p_value < 1 and rrrc.df > 8
    rrfc = result.random_readers_fixed_cases
    assert rrfc.df == 8 and rrfc.ci_high - rrfc.ci_low < rrrc.ci_high - rrrc.ci_low


def test_model_vs_readers_equals_two_treatment_analysis_with_model_copied_to_every_reader(nico):
    ratings, truth = nico
    readers, model = ratings[1:], ratings[0]
    paired = mrmc.or_mrmc(np.stack((readers, np.broadcast_to(model, readers.shape))), truth)
    single = mrmc.model_vs_readers(readers, model, truth)
    assert single.random_readers_fixed_cases.statistic**2 == pytest.approx(
        paired.random_readers_fixed_cases.statistic
    )


def test_unbalanced_or_incomplete_ratings_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        mrmc.or_mrmc(np.array([[[1, np.nan, 3, 4], [1, 2, 3, 4]]]), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="threshold"):
        mrmc.or_mrmc(np.ones((1, 2, 4)), [0, 0, 1, 1], metric="sensitivity")


def test_patient_level_bootstrap_resamples_patients_and_is_seeded(franken):
    ratings, truth = franken
    patients = np.arange(len(truth)) // 2
    first = mrmc.or_mrmc(
        ratings, truth, covariance="bootstrap", clusters=patients, n_bootstrap=300, seed=11
    )
    again = mrmc.or_mrmc(
        ratings, truth, covariance="bootstrap", clusters=patients, n_bootstrap=300, seed=11
    )
    np.testing.assert_array_equal(first.covariance, again.covariance)
    assert first.random_readers_random_cases.p_value > 0


def test_clustered_delong_is_close_to_delong_when_every_cluster_has_one_case(franken):
    ratings, truth = franken
    rows = ratings.reshape(-1, len(truth))
    plain = mrmc.metric_covariance(rows, truth, covariance="delong")
    clustered = mrmc.metric_covariance(
        rows, truth, covariance="delong", clusters=np.arange(len(truth))
    )
    # Obuchowski (1997) uses I/(I-1) over all clusters instead of m/(m-1) and n/(n-1).
    np.testing.assert_allclose(clustered, plain, rtol=0.03)
