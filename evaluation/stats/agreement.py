"""Chance-corrected agreement between readers' categorical calls."""

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class CohenKappa:
    """Cohen's kappa for two readers.

    ``standard_error`` is the large-sample SE of Fleiss, Cohen & Everitt
    (1969), used for ``ci_low``/``ci_high``; ``standard_error_null`` is
    their SE under kappa = 0, used for ``z`` and ``p_value``.
    """

    kappa: float
    observed_agreement: float
    expected_agreement: float
    standard_error: float
    ci_low: float
    ci_high: float
    standard_error_null: float
    z: float
    p_value: float
    n_subjects: int


@dataclass(frozen=True)
class FleissKappa:
    kappa: float
    observed_agreement: float
    expected_agreement: float
    n_subjects: int
    n_raters: int
    categories: list


def cohen_kappa(first_calls, second_calls, confidence: float = 0.95) -> CohenKappa:
    """Unweighted Cohen (1960) kappa of two readers' calls on the same subjects.

    ``kappa = (p_o - p_e) / (1 - p_e)`` from the joint proportions p_ij of
    the categories seen in either reader. Standard error (Fleiss, Cohen &
    Everitt 1969, "Large sample standard errors of kappa and weighted
    kappa", Psychological Bulletin 72):

        var = [sum_i p_ii (1 - (p_i. + p_.i)(1 - k))²
               + (1 - k)² sum_{i!=j} p_ij (p_.i + p_j.)²
               - (k - p_e (1 - k))²] / (N (1 - p_e)²)

    and under the null hypothesis kappa = 0

        var0 = [p_e + p_e² - sum_i p_i. p_.i (p_i. + p_.i)] / (N (1 - p_e)²).

    The CI is the Wald interval with ``var``; the z test uses ``var0``.
    """
    first_calls, second_calls = np.asarray(first_calls), np.asarray(second_calls)
    if first_calls.shape != second_calls.shape or first_calls.ndim != 1:
        raise ValueError("the two readers must have one call each for the same subjects")
    categories, codes = np.unique(np.concatenate((first_calls, second_calls)), return_inverse=True)
    n, k = len(first_calls), len(categories)
    table = np.zeros((k, k))
    np.add.at(table, (codes[:n], codes[n:]), 1)
    p = table / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    observed, expected = np.trace(p), rows @ cols
    if expected == 1:
        raise ValueError("kappa is undefined when both readers use a single category")
    kappa = (observed - expected) / (1 - expected)
    weights = (cols[:, None] + rows[None, :]) ** 2
    off_diagonal = ~np.eye(k, dtype=bool)
    variance = (
        np.sum(np.diag(p) * (1 - (rows + cols) * (1 - kappa)) ** 2)
        + (1 - kappa) ** 2 * np.sum(p[off_diagonal] * weights[off_diagonal])
        - (kappa - expected * (1 - kappa)) ** 2
    ) / (n * (1 - expected) ** 2)
    variance_null = (expected + expected**2 - np.sum(rows * cols * (rows + cols))) / (
        n * (1 - expected) ** 2
    )
    se, se_null = np.sqrt(max(variance, 0.0)), np.sqrt(variance_null)
    z_crit = stats.norm.ppf(0.5 + confidence / 2)
    z = kappa / se_null
    return CohenKappa(
        float(kappa),
        float(observed),
        float(expected),
        float(se),
        float(kappa - z_crit * se),
        float(kappa + z_crit * se),
        float(se_null),
        float(z),
        float(2 * stats.norm.sf(abs(z))),
        n,
    )


def category_counts(labels) -> tuple[np.ndarray, list]:
    """Turn a subjects x raters array of labels into subjects x categories counts."""
    labels = np.asarray(labels)
    categories, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(labels.shape)
    counts = np.stack([(codes == c).sum(axis=1) for c in range(len(categories))], axis=1)
    return counts, categories.tolist()


def fleiss_kappa(labels=None, *, counts=None, categories=None) -> FleissKappa:
    """Fleiss (1971) kappa for a panel rating each subject into one category.

    Give either ``labels`` (subjects x raters, one label per rater) or
    ``counts`` (subjects x categories, how many raters chose each
    category; every row must sum to the same number of raters).
    ``P_i = (sum_j n_ij² - n) / (n (n - 1))``, ``P̄`` their mean,
    ``P_e = sum_j p_j²`` with ``p_j`` the overall share of category j,
    ``kappa = (P̄ - P_e) / (1 - P_e)``. Fleiss (1971), "Measuring nominal
    scale agreement among many raters", Psychological Bulletin 76.
    """
    if (labels is None) == (counts is None):
        raise ValueError("give either labels (subjects x raters) or counts (subjects x categories)")
    if labels is not None:
        counts, categories = category_counts(labels)
    counts = np.asarray(counts, dtype=float)
    raters = counts.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("every subject must be rated by the same number (>= 2) of raters")
    n_subjects, n_raters = counts.shape[0], int(raters[0])
    per_subject = (np.sum(counts**2, axis=1) - n_raters) / (n_raters * (n_raters - 1))
    shares = counts.sum(axis=0) / (n_subjects * n_raters)
    observed, expected = per_subject.mean(), np.sum(shares**2)
    if categories is None:
        categories = list(range(counts.shape[1]))
    return FleissKappa(
        float((observed - expected) / (1 - expected)),
        float(observed),
        float(expected),
        n_subjects,
        n_raters,
        list(categories),
    )
