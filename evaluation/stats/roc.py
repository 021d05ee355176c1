"""ROC curves, empirical AUC and DeLong inference.

Conventions used throughout:

* Direction is fixed: a higher score means positive (malignant). A curve is
  never flipped to make the AUC exceed 0.5.
* Ties between a positive and a negative case count one half (midranks).
* DeLong variances are sample covariances of the placement values with
  m - 1 and n - 1 divisors, as in DeLong et al. (1988) and pROC.

The variance computation follows the fast algorithm of Sun & Xu (2014),
"Fast implementation of DeLong's algorithm for comparing the areas under
correlated receiver operating characteristic curves", IEEE Signal Processing
Letters 21(11), which needs only three midrank computations per score.
"""

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC curve: one point per threshold, from (0, 0) to (1, 1)."""

    thresholds: np.ndarray
    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray


@dataclass(frozen=True)
class DelongPlacements:
    """AUCs and DeLong placement values for k scores on the same cases.

    ``positive_placements`` has shape (k, m): for each positive case the
    fraction of negatives it outranks (ties ½). ``negative_placements`` has
    shape (k, n): for each negative case the fraction of positives that
    outrank it.
    """

    auc: np.ndarray
    positive_placements: np.ndarray
    negative_placements: np.ndarray


@dataclass(frozen=True)
class DelongCovariance:
    """AUCs of k scores and the k x k DeLong covariance matrix of the AUCs."""

    auc: np.ndarray
    covariance: np.ndarray


@dataclass(frozen=True)
class AucInterval:
    auc: float
    variance: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class AucComparison:
    """Comparison of two AUCs: ``difference`` is the first minus the second.

    ``df`` is None for a normal (Z) statistic and the Welch degrees of
    freedom for the unpaired test's t statistic.
    """

    difference: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    df: float | None = None


@dataclass(frozen=True)
class PairwiseAucComparison:
    first: int
    second: int
    comparison: AucComparison
    holm_p_value: float


@dataclass(frozen=True)
class OmnibusAucTest:
    """Chi-square test that k correlated AUCs are equal, with pairwise tests."""

    auc: np.ndarray
    chi_square: float
    df: int
    p_value: float
    pairwise: list[PairwiseAucComparison]


def _as_scores_and_truth(scores, truth):
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    truth = np.asarray(truth)
    if scores.shape[1] != truth.shape[0]:
        raise ValueError(f"scores have {scores.shape[1]} cases but truth has {truth.shape[0]}")
    if not np.all(np.isin(truth, (0, 1))):
        raise ValueError("truth must contain only 0 (negative) and 1 (positive)")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    positive = truth == 1
    if positive.all() or not positive.any():
        raise ValueError("an AUC needs at least one positive and one negative case")
    return scores, positive


def roc_curve(scores, truth) -> RocCurve:
    """Empirical ROC curve of one score.

    A case is called positive when ``score >= threshold``; the thresholds are
    the distinct scores in decreasing order, preceded by +inf (nothing called
    positive). Direction is never flipped.
    """
    scores, positive = _as_scores_and_truth(scores, truth)
    score = scores[0]
    thresholds = np.concatenate(([np.inf], np.unique(score)[::-1]))
    called = score[None, :] >= thresholds[:, None]
    tpr = called[:, positive].mean(axis=1)
    fpr = called[:, ~positive].mean(axis=1)
    return RocCurve(thresholds, fpr, tpr)


def delong_placements(scores, truth) -> DelongPlacements:
    """AUCs and placement values of k scores (array k x N or length N).

    Empirical AUC (Mann-Whitney, ties ½) computed from midranks as in
    Sun & Xu (2014): with ``T_z`` the midranks in all cases, ``T_x`` within
    the positives and ``T_y`` within the negatives,
    ``V10 = (T_z - T_x) / n`` and ``V01 = 1 - (T_z - T_y) / m``.
    """
    scores, positive = _as_scores_and_truth(scores, truth)
    positives = scores[:, positive]
    negatives = scores[:, ~positive]
    m, n = positives.shape[1], negatives.shape[1]
    ranks_all = stats.rankdata(np.hstack((positives, negatives)), axis=1)
    ranks_pos = stats.rankdata(positives, axis=1)
    ranks_neg = stats.rankdata(negatives, axis=1)
    v10 = (ranks_all[:, :m] - ranks_pos) / n
    v01 = 1.0 - (ranks_all[:, m:] - ranks_neg) / m
    auc = v10.mean(axis=1)
    return DelongPlacements(auc, v10, v01)


def empirical_auc(score, truth) -> float:
    """Empirical AUC of one score: P(positive > negative) + ½ P(tie).

    Higher score = positive; the direction is never flipped, so a score
    that ranks negatives higher gives an AUC below 0.5.
    """
    return float(delong_placements(score, truth).auc[0])


def delong_covariance(scores, truth) -> DelongCovariance:
    """DeLong et al. (1988) covariance matrix of k AUCs on the same cases.

    ``S = S10 / m + S01 / n`` where S10 and S01 are the sample covariance
    matrices (divisors m - 1 and n - 1) of the positive and negative
    placement values; fast algorithm of Sun & Xu (2014).
    """
    placements = delong_placements(scores, truth)
    v10, v01 = placements.positive_placements, placements.negative_placements
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10, ddof=1)) if m > 1 else np.zeros((len(v10),) * 2)
    s01 = np.atleast_2d(np.cov(v01, ddof=1)) if n > 1 else np.zeros((len(v01),) * 2)
    return DelongCovariance(placements.auc, s10 / m + s01 / n)


def delong_auc_ci(score, truth, confidence: float = 0.95) -> AucInterval:
    """Wald confidence interval of one AUC with the DeLong variance.

    ``AUC ± z * sqrt(var)``, clipped to [0, 1] as pROC does.
    """
    result = delong_covariance(score, truth)
    auc, variance = float(result.auc[0]), float(result.covariance[0, 0])
    half_width = stats.norm.ppf(0.5 + confidence / 2) * np.sqrt(variance)
    return AucInterval(auc, variance, max(auc - half_width, 0.0), min(auc + half_width, 1.0))


def _wald_comparison(difference, variance, confidence, df=None) -> AucComparison:
    reference = stats.norm if df is None else stats.t(df)
    se = np.sqrt(variance)
    statistic = difference / se if se > 0 else np.nan
    p_value = 2 * reference.sf(abs(statistic)) if se > 0 else np.nan
    half_width = reference.ppf(0.5 + confidence / 2) * se
    return AucComparison(
        float(difference),
        float(statistic),
        float(p_value),
        float(difference - half_width),
        float(difference + half_width),
        None if df is None else float(df),
    )


def delong_test(first_score, second_score, truth, confidence: float = 0.95) -> AucComparison:
    """Paired DeLong test of two scores on the same cases.

    ``Z = (AUC1 - AUC2) / sqrt(V1 + V2 - 2 C12)``, two-sided normal p-value,
    Wald CI of the difference (first minus second). DeLong et al. (1988).
    """
    result = delong_covariance(np.vstack((first_score, second_score)), truth)
    contrast = np.array([1.0, -1.0])
    return _wald_comparison(
        contrast @ result.auc, contrast @ result.covariance @ contrast, confidence
    )


def delong_unpaired_test(
    first_score, first_truth, second_score, second_truth, confidence: float = 0.95
) -> AucComparison:
    """Welch-type comparison of two AUCs measured on different cases.

    ``D = (AUC1 - AUC2) / sqrt(V1 + V2)`` with DeLong variances, referred to
    a t distribution with Welch-Satterthwaite degrees of freedom
    ``(V1 + V2)² / (V1² / (N1 - 1) + V2² / (N2 - 1))`` (N = all cases of a
    curve), two-sided. This is what pROC's ``roc.test(..., paired = FALSE,
    method = "delong")`` reports (Robin et al. 2011); a normal reference
    would give a slightly smaller p-value.
    """
    first = delong_covariance(first_score, first_truth)
    second = delong_covariance(second_score, second_truth)
    first_var, second_var = first.covariance[0, 0], second.covariance[0, 0]
    first_cases, second_cases = len(np.asarray(first_truth)), len(np.asarray(second_truth))
    df = (first_var + second_var) ** 2 / (
        first_var**2 / (first_cases - 1) + second_var**2 / (second_cases - 1)
    )
    return _wald_comparison(first.auc[0] - second.auc[0], first_var + second_var, confidence, df)


def holm_adjust(p_values) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, in the input order."""
    p_values = np.asarray(p_values, dtype=float)
    order = np.argsort(p_values)
    k = len(p_values)
    stepped = np.maximum.accumulate((k - np.arange(k)) * p_values[order])
    adjusted = np.empty(k)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def delong_omnibus_test(scores, truth, confidence: float = 0.95) -> OmnibusAucTest:
    """Chi-square test that k AUCs on the same cases are all equal.

    DeLong et al. (1988): with contrast matrix L (rows e_i - e_{i+1}),
    ``X² = (L θ)' (L S L')⁻¹ (L θ)`` on rank(L S L') degrees of freedom.
    Pairwise paired tests (first index minus second) with Holm-adjusted
    p-values are returned alongside.
    """
    result = delong_covariance(scores, truth)
    k = len(result.auc)
    if k < 2:
        raise ValueError("an omnibus test needs at least two scores")
    contrast = np.eye(k)[:-1] - np.eye(k, k=1)[:-1]
    contrasted = contrast @ result.auc
    contrasted_cov = contrast @ result.covariance @ contrast.T
    chi_square = float(contrasted @ np.linalg.pinv(contrasted_cov) @ contrasted)
    df = int(np.linalg.matrix_rank(contrasted_cov))
    comparisons = []
    for first, second in combinations(range(k), 2):
        pair = np.zeros(k)
        pair[[first, second]] = (1.0, -1.0)
        comparisons.append(
            (
                first,
                second,
                _wald_comparison(pair @ result.auc, pair @ result.covariance @ pair, confidence),
            )
        )
    holm = holm_adjust([c.p_value for _, _, c in comparisons])
    pairwise = [
        PairwiseAucComparison(first, second, comparison, float(adjusted))
        for (first, second, comparison), adjusted in zip(comparisons, holm)
    ]
    return OmnibusAucTest(
        result.auc, chi_square, df, float(stats.chi2.sf(chi_square, df)), pairwise
    )
