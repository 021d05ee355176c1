"""Multi-reader multi-case (MRMC) analysis: Obuchowski-Rockette with Hillis df.

Inputs are a ratings array ``[treatment, reader, case]`` (higher rating =
more suspicious of malignancy) and a 0/1 truth vector over the cases.

Method: Obuchowski & Rockette (1995), "Hypothesis testing of diagnostic
accuracy for multiple readers and multiple tests: an ANOVA approach with
dependent observations", Commun. Stat. Simul. Comput. 24; with the
denominator degrees of freedom of Hillis (2007), "A comparison of
denominator degrees of freedom methods for multiple observer ROC analysis",
Stat. Med. 26, and the fixed-reader / fixed-case analyses and single-
treatment intervals of Hillis, Berbaum & Metz (2008), "Recent developments
in the Dorfman-Berbaum-Metz procedure for multireader ROC study analysis",
Acad. Radiol. 15. These are the analyses of OR-DBM MRMC 2.5, MRMCaov and
RJafroc.

Conventions:

* Metric ``auc`` is the empirical AUC (ties ½); ``sensitivity`` and
  ``specificity`` call a case positive when ``rating >= threshold``.
* Jackknife covariance: ``(K - 1) / K * sum_k (θ_(k) - θ̄)(θ_(k) - θ̄)'`` over
  the K cases that enter the metric (all cases for AUC, the positive cases
  for sensitivity, the negative cases for specificity); with cluster ids
  (patients with several lesions) one cluster is left out at a time and K
  counts clusters.
* Hillis ddf uses ``max(Cov2 - Cov3, 0)``; when that truncates, ddf becomes
  (t - 1)(r - 1).
"""

from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations

import numpy as np
from scipy import stats

from evaluation.stats import roc


class Metric(StrEnum):
    AUC = "auc"
    SENSITIVITY = "sensitivity"
    SPECIFICITY = "specificity"


class CovarianceMethod(StrEnum):
    JACKKNIFE = "jackknife"
    DELONG = "delong"
    BOOTSTRAP = "bootstrap"


@dataclass(frozen=True)
class VarianceComponents:
    """OR error covariances and ANOVA mean squares of the reader metrics."""

    var: float
    cov1: float
    cov2: float
    cov3: float
    ms_treatment: float
    ms_reader: float
    ms_treatment_reader: float


@dataclass(frozen=True)
class TreatmentEstimate:
    """Mean metric of one treatment over readers, with its interval."""

    treatment: int
    estimate: float
    se: float
    df: float | None
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class TreatmentDifference:
    """``difference`` = mean metric of ``first`` minus that of ``second``."""

    first: int
    second: int
    difference: float
    se: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class OrTest:
    """Test that all treatment means are equal.

    ``ddf`` is None for the chi-square statistic of the fixed-reader
    analysis (``ndf`` is then its degrees of freedom).
    """

    analysis: str
    statistic: float
    ndf: int
    ddf: float | None
    p_value: float
    differences: list[TreatmentDifference]
    treatment_estimates: list[TreatmentEstimate]


@dataclass(frozen=True)
class OrMrmcResult:
    """Obuchowski-Rockette analyses. Tests are None with a single treatment."""

    metric: str
    covariance_method: str
    reader_metric: np.ndarray
    covariance: np.ndarray
    components: VarianceComponents
    treatment_estimates: list[TreatmentEstimate]
    random_readers_random_cases: OrTest | None
    fixed_readers_random_cases: OrTest | None
    random_readers_fixed_cases: OrTest | None


@dataclass(frozen=True)
class DifferenceTest:
    """Single-sample test of the mean reader-minus-model difference.

    ``statistic`` is a t statistic (``df`` given) or, for fixed readers, a
    z statistic (``df`` None).
    """

    analysis: str
    mean_difference: float
    se: float
    statistic: float
    df: float | None
    p_value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ModelVsReadersResult:
    metric: str
    covariance_method: str
    model_metric: float
    reader_metric: np.ndarray
    mean_reader_metric: float
    random_readers_random_cases: DifferenceTest
    fixed_readers_random_cases: DifferenceTest
    random_readers_fixed_cases: DifferenceTest


# --- reader metrics and their covariance over cases -------------------------


def _check_inputs(ratings, truth, metric, threshold):
    truth = np.asarray(truth)
    if ratings.shape[-1] != truth.shape[0]:
        raise ValueError(f"ratings have {ratings.shape[-1]} cases but truth has {truth.shape[0]}")
    if not np.all(np.isin(truth, (0, 1))):
        raise ValueError("truth must contain only 0 (negative) and 1 (positive)")
    if np.isnan(ratings).any():
        raise ValueError("ratings contain NaN (every reader must rate every case)")
    positive = truth == 1
    if positive.all() or not positive.any():
        raise ValueError("the cases must include positives and negatives")
    metric = Metric(metric)
    if metric != Metric.AUC and threshold is None:
        raise ValueError(f"metric {metric} needs a threshold (rating >= threshold is positive)")
    return positive, metric


def _metric_rows(rows, positive, metric, threshold):
    """Metric of each row of a [readers, cases] array."""
    if metric == Metric.SENSITIVITY:
        return (rows[:, positive] >= threshold).mean(axis=1)
    if metric == Metric.SPECIFICITY:
        return (rows[:, ~positive] < threshold).mean(axis=1)
    m, n = positive.sum(), (~positive).sum()
    ranks = stats.rankdata(rows, axis=1)
    return (ranks[:, positive].sum(axis=1) - m * (m + 1) / 2) / (m * n)


def reader_metrics(
    ratings, truth, metric: str = "auc", threshold: float | None = None
) -> np.ndarray:
    """Metric of every reader in every treatment: array ``[treatment, reader]``.

    Empirical AUC (ties ½, never flipped) or sensitivity/specificity with
    ``rating >= threshold`` called positive.
    """
    ratings = np.asarray(ratings, dtype=float)
    positive, metric = _check_inputs(ratings, truth, metric, threshold)
    flat = ratings.reshape(-1, ratings.shape[-1])
    return _metric_rows(flat, positive, metric, threshold).reshape(ratings.shape[:-1])


def _cluster_codes(clusters, n_cases):
    if clusters is None:
        return np.arange(n_cases)
    clusters = np.asarray(clusters)
    if clusters.shape != (n_cases,):
        raise ValueError(f"cluster ids must have one entry per case ({n_cases})")
    return np.unique(clusters, return_inverse=True)[1]


def jackknife_metrics(rows, positive, metric, threshold, clusters=None) -> np.ndarray:
    """Leave-one-out metrics ``[K, readers]``, leaving out one case (or cluster).

    Only the K cases (clusters) that enter the metric are left out. For the
    AUC the leave-out values come from the DeLong placement values in
    O(N log N): with S the sum of pair scores ψ, removing positives P_c and
    negatives N_c gives ``(S - n ΣV10 - m ΣV01 + Σ_{P_c x N_c} ψ) /
    ((m - |P_c|)(n - |N_c|))``.
    """
    metric = Metric(metric)
    codes = _cluster_codes(clusters, len(positive))
    n_clusters = codes.max() + 1
    positives_in = np.bincount(codes, weights=positive, minlength=n_clusters)
    negatives_in = np.bincount(codes, weights=~positive, minlength=n_clusters)
    m, n = positive.sum(), (~positive).sum()
    if metric == Metric.AUC:
        placements = roc.delong_placements(rows, positive.astype(int))
        total = placements.auc * m * n
        removed = np.zeros((n_clusters, rows.shape[0]))
        np.add.at(removed, codes[positive], n * placements.positive_placements.T)
        np.add.at(removed, codes[~positive], m * placements.negative_placements.T)
        removed -= _within_cluster_pair_scores(rows, positive, codes, n_clusters)
        remaining = ((m - positives_in) * (n - negatives_in))[:, None]
        if np.any(remaining == 0):
            raise ValueError("leaving out one cluster removes all positive or all negative cases")
        return (total[None, :] - removed) / remaining
    enters = positive if metric == Metric.SENSITIVITY else ~positive
    correct = rows[:, enters] >= threshold
    if metric == Metric.SPECIFICITY:
        correct = ~correct
    sums = np.zeros((n_clusters, rows.shape[0]))
    np.add.at(sums, codes[enters], correct.T.astype(float))
    counted = np.bincount(codes[enters], minlength=n_clusters)
    kept = counted > 0
    if np.any(counted[kept] == enters.sum()):
        raise ValueError("leaving out one cluster removes all cases that enter the metric")
    return (correct.sum(axis=1)[None, :] - sums[kept]) / (enters.sum() - counted[kept])[:, None]


def _within_cluster_pair_scores(rows, positive, codes, n_clusters):
    """Σ ψ over positive-negative pairs inside each cluster: ``[clusters, readers]``."""
    within = np.zeros((n_clusters, rows.shape[0]))
    mixed = np.flatnonzero(
        (np.bincount(codes, weights=positive, minlength=n_clusters) > 0)
        & (np.bincount(codes, weights=~positive, minlength=n_clusters) > 0)
    )
    for cluster in mixed:
        members = np.flatnonzero(codes == cluster)
        pos, neg = members[positive[members]], members[~positive[members]]
        diff = rows[:, pos][:, :, None] - rows[:, neg][:, None, :]
        within[cluster] = ((diff > 0) + 0.5 * (diff == 0)).sum(axis=(1, 2))
    return within


def jackknife_covariance(rows, positive, metric, threshold, clusters=None) -> np.ndarray:
    """Jackknife covariance ``(K-1)/K Σ (θ_(k) - θ̄)(θ_(k) - θ̄)'`` of the row metrics."""
    pseudo = jackknife_metrics(rows, positive, metric, threshold, clusters)
    k = pseudo.shape[0]
    centred = pseudo - pseudo.mean(axis=0)
    return (k - 1) / k * centred.T @ centred


def clustered_delong_covariance(rows, positive, clusters) -> np.ndarray:
    """DeLong covariance of AUCs for clustered data (Obuchowski 1997, Biometrics 53).

    Placement values are summed within each of the I clusters;
    ``S10 = I/((I-1) M) Σ (V10_i - m_i θ)(...)'``, likewise S01 over the
    negatives and the cross term S11, and
    ``cov = S10 / M + S01 / N + 2 S11 / (M N)``.
    """
    placements = roc.delong_placements(rows, positive.astype(int))
    codes = _cluster_codes(clusters, len(positive))
    n_clusters = codes.max() + 1
    big_m, big_n = positive.sum(), (~positive).sum()
    v10 = np.zeros((n_clusters, rows.shape[0]))
    v01 = np.zeros((n_clusters, rows.shape[0]))
    np.add.at(v10, codes[positive], placements.positive_placements.T)
    np.add.at(v01, codes[~positive], placements.negative_placements.T)
    m_i = np.bincount(codes, weights=positive, minlength=n_clusters)[:, None]
    n_i = np.bincount(codes, weights=~positive, minlength=n_clusters)[:, None]
    x = v10 - m_i * placements.auc[None, :]
    y = v01 - n_i * placements.auc[None, :]
    factor = n_clusters / (n_clusters - 1)
    s10 = factor * x.T @ x / big_m
    s01 = factor * y.T @ y / big_n
    s11 = factor * (x.T @ y + y.T @ x) / 2
    return s10 / big_m + s01 / big_n + 2 * s11 / (big_m * big_n)


def bootstrap_covariance(
    rows, positive, metric, threshold, clusters=None, n_resamples=2000, seed=0
) -> np.ndarray:
    """Bootstrap covariance (divisor B - 1) of the row metrics.

    Without clusters the cases are resampled within truth strata; with
    cluster ids whole clusters (patients) are resampled and resamples
    without positives or negatives are drawn again. Seeded
    (``numpy.random.default_rng(seed)``).
    """
    rng = np.random.default_rng(seed)
    codes = _cluster_codes(clusters, len(positive))
    if clusters is not None:
        members = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1])
    positive_idx, negative_idx = np.flatnonzero(positive), np.flatnonzero(~positive)
    draws = np.empty((n_resamples, rows.shape[0]))
    done = 0
    while done < n_resamples:
        if clusters is None:
            sample = np.concatenate(
                (
                    rng.choice(positive_idx, len(positive_idx)),
                    rng.choice(negative_idx, len(negative_idx)),
                )
            )
        else:
            sample = np.concatenate(
                [members[c] for c in rng.integers(0, len(members), len(members))]
            )
            if positive[sample].all() or not positive[sample].any():
                continue
        draws[done] = _metric_rows(rows[:, sample], positive[sample], metric, threshold)
        done += 1
    return np.atleast_2d(np.cov(draws, rowvar=False, ddof=1))


def metric_covariance(
    rows,
    truth,
    metric: str = "auc",
    threshold: float | None = None,
    covariance: str = "jackknife",
    clusters=None,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Covariance over cases of the metrics of each row of ``rows [readers, cases]``.

    ``covariance``: ``jackknife`` (leave one case, or one cluster, out),
    ``delong`` (AUC only; DeLong et al. 1988, or Obuchowski 1997 with
    clusters) or ``bootstrap`` (``n_bootstrap`` resamples, ``seed``).
    """
    rows = np.asarray(rows, dtype=float)
    positive, metric = _check_inputs(rows, truth, metric, threshold)
    method = CovarianceMethod(covariance)
    if method == CovarianceMethod.JACKKNIFE:
        return jackknife_covariance(rows, positive, metric, threshold, clusters)
    if method == CovarianceMethod.BOOTSTRAP:
        return bootstrap_covariance(rows, positive, metric, threshold, clusters, n_bootstrap, seed)
    if metric != Metric.AUC:
        raise ValueError(
            "DeLong covariance is defined for the AUC only; use jackknife or bootstrap"
        )
    if clusters is None:
        return roc.delong_covariance(rows, positive.astype(int)).covariance
    return clustered_delong_covariance(rows, positive, clusters)


# --- Obuchowski-Rockette analyses -------------------------------------------


def _components(theta, cov) -> VarianceComponents:
    t, r = theta.shape
    treatment_of = np.repeat(np.arange(t), r)
    reader_of = np.tile(np.arange(r), t)
    same_t = treatment_of[:, None] == treatment_of[None, :]
    same_r = reader_of[:, None] == reader_of[None, :]

    def mean_where(mask):
        return float(cov[mask].mean()) if mask.any() else 0.0

    grand = theta.mean()
    treatment_means, reader_means = theta.mean(axis=1), theta.mean(axis=0)
    interaction = theta - treatment_means[:, None] - reader_means[None, :] + grand
    return VarianceComponents(
        var=mean_where(same_t & same_r),
        cov1=mean_where(~same_t & same_r),
        cov2=mean_where(same_t & ~same_r),
        cov3=mean_where(~same_t & ~same_r),
        ms_treatment=float(r * np.sum((treatment_means - grand) ** 2) / (t - 1)) if t > 1 else 0.0,
        ms_reader=float(t * np.sum((reader_means - grand) ** 2) / (r - 1)),
        ms_treatment_reader=float(np.sum(interaction**2) / ((t - 1) * (r - 1))) if t > 1 else 0.0,
    )


def _interval(estimate, se, df, confidence):
    critical = (
        stats.norm.ppf(0.5 + confidence / 2)
        if df is None
        else stats.t.ppf(0.5 + confidence / 2, df)
    )
    return estimate - critical * se, estimate + critical * se


# Mean squares and error variances below this are rounding noise: the metrics lie in [0, 1],
# and the smallest real difference of two AUCs on m x n case pairs is 1 / (2 m n).
_ROUNDING_NOISE = 1e-24


def _ratio(numerator, denominator):
    """``numerator / denominator`` for a test statistic. Identical treatments (say, no reader
    changed a binary call) make both 0 up to rounding: no evidence either way (NaN), not an error."""
    if denominator > _ROUNDING_NOISE:
        return numerator / denominator
    return np.inf if numerator > _ROUNDING_NOISE else np.nan


def _satterthwaite_df(denominator, mean_square, df_mean_square):
    if mean_square == 0:
        return np.inf
    return denominator**2 / (mean_square**2 / df_mean_square)


def _treatment_estimates(theta, cov, analysis, confidence) -> list[TreatmentEstimate]:
    """Single-treatment intervals (Hillis et al. 2008) for each treatment."""
    t, r = theta.shape
    estimates = []
    for i in range(t):
        block = cov[i * r : (i + 1) * r, i * r : (i + 1) * r]
        var_i = float(np.mean(np.diag(block)))
        cov2_i = float(block[~np.eye(r, dtype=bool)].mean())
        ms_reader_i = float(np.var(theta[i], ddof=1))
        if analysis == "random_readers_random_cases":
            denominator = ms_reader_i + r * max(cov2_i, 0.0)
            df = _satterthwaite_df(denominator, ms_reader_i, r - 1)
        elif analysis == "fixed_readers_random_cases":
            denominator, df = var_i + (r - 1) * max(cov2_i, 0.0), None
        else:
            denominator, df = ms_reader_i, r - 1
        se = float(np.sqrt(denominator / r))
        estimate = float(theta[i].mean())
        estimates.append(
            TreatmentEstimate(
                i,
                estimate,
                se,
                None if df is None else float(df),
                *map(float, _interval(estimate, se, df, confidence)),
            )
        )
    return estimates


def _or_test(theta, cov, components, analysis, confidence) -> OrTest:
    t, r = theta.shape
    c = components
    ndf = t - 1
    if analysis == "random_readers_random_cases":
        denominator = c.ms_treatment_reader + r * max(c.cov2 - c.cov3, 0.0)
        ddf = float(_satterthwaite_df(denominator, c.ms_treatment_reader, (t - 1) * (r - 1)))
        statistic = _ratio(c.ms_treatment, denominator)
        p_value = stats.f.sf(statistic, ndf, ddf)
    elif analysis == "fixed_readers_random_cases":
        denominator = c.var - c.cov1 + (r - 1) * max(c.cov2 - c.cov3, 0.0)
        ddf = None
        statistic = _ratio((t - 1) * c.ms_treatment, denominator)
        p_value = stats.chi2.sf(statistic, ndf)
    else:
        denominator = c.ms_treatment_reader
        ddf = float((t - 1) * (r - 1))
        statistic = _ratio(c.ms_treatment, denominator)
        p_value = stats.f.sf(statistic, ndf, ddf)
    se = float(np.sqrt(max(2 * denominator / r, 0.0)))
    means = theta.mean(axis=1)
    differences = []
    for first, second in combinations(range(t), 2):
        difference = float(means[first] - means[second])
        low, high = _interval(difference, se, ddf, confidence)
        differences.append(
            TreatmentDifference(first, second, difference, se, float(low), float(high))
        )
    return OrTest(
        analysis,
        float(statistic),
        ndf,
        ddf,
        float(p_value),
        differences,
        _treatment_estimates(theta, cov, analysis, confidence),
    )


def or_mrmc(
    ratings,
    truth,
    metric: str = "auc",
    threshold: float | None = None,
    covariance: str = "jackknife",
    clusters=None,
    n_bootstrap: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> OrMrmcResult:
    """Obuchowski-Rockette MRMC analysis of ``ratings[treatment, reader, case]``.

    Three analyses (Hillis 2007; Hillis, Berbaum & Metz 2008), each testing
    equal treatment means and giving CIs of every pairwise difference
    (first minus second treatment) and of every treatment mean:

    * random readers, random cases: ``F = MS(T) / (MS(T*R) + r max(Cov2 -
      Cov3, 0))`` on t - 1 and Hillis ddf ``(MS(T*R) + r max(Cov2 - Cov3,
      0))² / (MS(T*R)² / ((t-1)(r-1)))``; treatment means with
      single-treatment df ``(MS(R)_i + r max(Cov2_i, 0))² / (MS(R)_i² / (r-1))``;
    * fixed readers, random cases: ``X² = (t-1) MS(T) / (Var - Cov1 + (r-1)
      max(Cov2 - Cov3, 0))`` on t - 1 df, normal intervals;
    * random readers, fixed cases: ``F = MS(T) / MS(T*R)`` on t - 1 and
      (t-1)(r-1) df.

    The covariances come from ``metric_covariance`` (jackknife by default,
    leaving out one cluster at a time when ``clusters`` is given).
    """
    ratings = np.asarray(ratings, dtype=float)
    if ratings.ndim != 3:
        raise ValueError("ratings must be an array [treatment, reader, case]")
    t, r, _ = ratings.shape
    if r < 2:
        raise ValueError("an MRMC analysis needs at least two readers")
    theta = reader_metrics(ratings, truth, metric, threshold)
    rows = ratings.reshape(t * r, -1)
    cov = metric_covariance(rows, truth, metric, threshold, covariance, clusters, n_bootstrap, seed)
    components = _components(theta, cov)
    tests = [
        _or_test(theta, cov, components, analysis, confidence) if t > 1 else None
        for analysis in (
            "random_readers_random_cases",
            "fixed_readers_random_cases",
            "random_readers_fixed_cases",
        )
    ]
    return OrMrmcResult(
        str(Metric(metric)),
        str(CovarianceMethod(covariance)),
        theta,
        cov,
        components,
        _treatment_estimates(theta, cov, "random_readers_random_cases", confidence),
        *tests,
    )


def model_vs_readers(
    reader_ratings,
    model_ratings,
    truth,
    metric: str = "auc",
    threshold: float | None = None,
    covariance: str = "jackknife",
    clusters=None,
    n_bootstrap: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ModelVsReadersResult:
    """Compare readers (``reader_ratings[reader, case]``) with a model on the same cases.

    The model is a fixed comparator: a single-treatment OR analysis (Hillis
    2007, section 5.3 style) of the differences ``D_j = θ_reader_j -
    θ_model``. Their covariance over cases is ``A C A'`` with C the
    covariance of all r + 1 metrics and A the reader-minus-model contrast.
    With ``MS(R)`` the variance of the D_j over readers and Var, Cov2 the
    mean diagonal / off-diagonal of the difference covariance:

    * random readers, random cases: ``se² = (MS(R) + r max(Cov2, 0)) / r``,
      df ``(MS(R) + r max(Cov2, 0))² / (MS(R)² / (r - 1))``, t test;
    * fixed readers, random cases: ``se² = (Var + (r-1) Cov2) / r``, z test;
    * random readers, fixed cases: ``se² = MS(R) / r``, df r - 1, t test.

    ``mean_difference`` is readers minus model.
    """
    reader_ratings = np.asarray(reader_ratings, dtype=float)
    model_ratings = np.asarray(model_ratings, dtype=float)
    if reader_ratings.ndim != 2 or model_ratings.shape != reader_ratings.shape[1:]:
        raise ValueError(
            "reader ratings must be [reader, case] and model ratings [case] on the same cases"
        )
    r = reader_ratings.shape[0]
    if r < 2:
        raise ValueError("a model-versus-readers analysis needs at least two readers")
    rows = np.vstack((reader_ratings, model_ratings))
    theta = reader_metrics(rows, truth, metric, threshold)
    cov = metric_covariance(rows, truth, metric, threshold, covariance, clusters, n_bootstrap, seed)
    contrast = np.hstack((np.eye(r), -np.ones((r, 1))))
    differences = contrast @ theta
    difference_cov = contrast @ cov @ contrast.T
    mean_difference = float(differences.mean())
    ms_reader = float(np.var(differences, ddof=1))
    var = float(np.mean(np.diag(difference_cov)))
    cov2 = float(difference_cov[~np.eye(r, dtype=bool)].mean())

    def single_sample(analysis, variance_of_mean, df):
        se = float(np.sqrt(variance_of_mean))
        statistic = mean_difference / se if se > 0 else np.nan
        reference = stats.norm if df is None else stats.t(df)
        low, high = _interval(mean_difference, se, df, confidence)
        return DifferenceTest(
            analysis,
            mean_difference,
            se,
            float(statistic),
            None if df is None else float(df),
            float(2 * reference.sf(abs(statistic))),
            float(low),
            float(high),
        )

    denominator = ms_reader + r * max(cov2, 0.0)
    return ModelVsReadersResult(
        str(Metric(metric)),
        str(CovarianceMethod(covariance)),
        float(theta[-1]),
        theta[:-1],
        float(theta[:-1].mean()),
        single_sample(
            "random_readers_random_cases",
            denominator / r,
            _satterthwaite_df(denominator, ms_reader, r - 1),
        ),
        single_sample("fixed_readers_random_cases", (var + (r - 1) * cov2) / r, None),
        single_sample("random_readers_fixed_cases", ms_reader / r, r - 1),
    )
