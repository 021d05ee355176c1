"""Cohen's and Fleiss' kappa."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa as statsmodels_cohens_kappa
from statsmodels.stats.inter_rater import to_table

from evaluation.stats.agreement import category_counts, cohen_kappa, fleiss_kappa


def test_fleiss_kappa_matches_fleiss_1971_for_psychiatric_diagnoses(reference_dir):
    # One row per subject, one column per rater, categories 1-5.
    labels = pd.read_csv(reference_dir / "fleiss1971_diagnoses.csv").drop(columns="subject")
    result = fleiss_kappa(labels.to_numpy())
    assert result.kappa == pytest.approx(0.4302445, abs=5e-8)
    assert (result.n_subjects, result.n_raters) == (30, 6)


def test_fleiss_kappa_from_counts_equals_kappa_from_labels(reference_dir):
    labels = (
        pd.read_csv(reference_dir / "fleiss1971_diagnoses.csv").drop(columns="subject").to_numpy()
    )
    counts, _ = category_counts(labels)
    assert fleiss_kappa(counts=counts).kappa == pytest.approx(fleiss_kappa(labels).kappa)


def test_cohen_kappa_and_fleiss_cohen_everitt_standard_errors_agree_with_statsmodels():
    rng = np.random.default_rng(0)
    first = rng.integers(0, 3, 50)
    second = np.where(rng.random(50) < 0.6, first, rng.integers(0, 3, 50))
    ours = cohen_kappa(first, second)
    reference = statsmodels_cohens_kappa(to_table(np.c_[first, second])[0])
    assert ours.kappa == pytest.approx(reference.kappa, abs=1e-12)
    assert ours.standard_error == pytest.approx(reference.std_kappa, abs=1e-12)
    assert ours.standard_error_null == pytest.approx(reference.std_kappa0, abs=1e-12)


def test_cohen_kappa_of_textbook_two_by_two_table():
    # Agreement 0.7 with both readers calling 50 % positive: p_e 0.5, kappa 0.4.
    first = np.array([1] * 35 + [1] * 15 + [0] * 15 + [0] * 35)
    second = np.array([1] * 35 + [0] * 15 + [1] * 15 + [0] * 35)
    result = cohen_kappa(first, second)
    assert result.kappa == pytest.approx(0.4)
    assert result.ci_low < 0.4 < result.ci_high


def test_perfect_agreement_gives_kappa_one_with_zero_standard_error():
    result = cohen_kappa(["benign", "malignant", "benign"], ["benign", "malignant", "benign"])
    assert result.kappa == pytest.approx(1.0)
    assert result.standard_error == pytest.approx(0.0, abs=1e-12)
