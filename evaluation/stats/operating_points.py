"""Operating points: cut-offs, binary diagnostic measures and their intervals.

A case is called positive when ``score >= cut-off`` (higher score =
malignant). A cut-off chosen on the same data that it is then evaluated on
(for example the Youden-optimal one) gives optimistic sensitivity and
specificity; ``bootstrap_youden_operating_point`` re-chooses the cut-off in
every resample so that its intervals include that selection step.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Proportion:
    """A binomial proportion with Wilson and Clopper-Pearson intervals."""

    successes: int
    total: int
    estimate: float
    wilson_low: float
    wilson_high: float
    clopper_pearson_low: float
    clopper_pearson_high: float


@dataclass(frozen=True)
class OperatingPoint:
    """2 x 2 table at one cut-off and the measures derived from it."""

    cutoff: float
    true_positives: int
    false_negatives: int
    true_negatives: int
    false_positives: int
    sensitivity: Proportion
    specificity: Proportion
    accuracy: Proportion
    positive_predictive_value: Proportion
    negative_predictive_value: Proportion


@dataclass(frozen=True)
class YoudenCutoff:
    cutoff: float
    sensitivity: float
    specificity: float
    youden_index: float


@dataclass(frozen=True)
class BootstrapInterval:
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class BootstrapOperatingPoint:
    """Youden operating point with percentile bootstrap intervals.

    Each resample re-chooses the cut-off, so the intervals of sensitivity
    and specificity include the optimism of choosing it on the data.
    """

    cutoff: BootstrapInterval
    sensitivity: BootstrapInterval
    specificity: BootstrapInterval
    n_resamples: int
    seed: int


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval without continuity correction.

    Newcombe (1998), "Two-sided confidence intervals for the single
    proportion", Statistics in Medicine 17, method 3. Returns (nan, nan)
    when ``total`` is 0.
    """
    if total == 0:
        return (np.nan, np.nan)
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / total
    centre = p + z**2 / (2 * total)
    half_width = z * np.sqrt(p * (1 - p) / total + z**2 / (4 * total**2))
    denominator = 1 + z**2 / total
    return (
        max(0.0, float((centre - half_width) / denominator)),
        min(1.0, float((centre + half_width) / denominator)),
    )


def clopper_pearson_interval(
    successes: int, total: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Clopper & Pearson (1934) exact interval from beta quantiles.

    Returns 0 (1) as the lower (upper) limit when there are no successes
    (failures), and (nan, nan) when ``total`` is 0.
    """
    if total == 0:
        return (np.nan, np.nan)
    alpha = 1 - confidence
    low = stats.beta.ppf(alpha / 2, successes, total - successes + 1) if successes > 0 else 0.0
    high = (
        stats.beta.ppf(1 - alpha / 2, successes + 1, total - successes)
        if successes < total
        else 1.0
    )
    return (float(low), float(high))


def proportion(successes: int, total: int, confidence: float = 0.95) -> Proportion:
    """A proportion ``successes / total`` with Wilson and Clopper-Pearson intervals."""
    successes, total = int(successes), int(total)
    estimate = successes / total if total else np.nan
    return Proportion(
        successes,
        total,
        estimate,
        *wilson_interval(successes, total, confidence),
        *clopper_pearson_interval(successes, total, confidence),
    )


def _scores_and_positive(scores, truth):
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth)
    if scores.shape != truth.shape:
        raise ValueError(f"scores have {scores.shape} entries but truth has {truth.shape}")
    if not np.all(np.isin(truth, (0, 1))):
        raise ValueError("truth must contain only 0 (negative) and 1 (positive)")
    return scores, truth == 1


def operating_point(scores, truth, cutoff: float, confidence: float = 0.95) -> OperatingPoint:
    """Sensitivity, specificity, accuracy, PPV and NPV at ``score >= cutoff``.

    Each with Wilson and Clopper-Pearson intervals. PPV and NPV are only
    meaningful when the case mix has the prevalence of the target
    population. If the cut-off was chosen on these same cases the
    estimates are optimistic (see ``bootstrap_youden_operating_point``).
    """
    scores, positive = _scores_and_positive(scores, truth)
    called = scores >= cutoff
    tp = int(np.sum(called & positive))
    fn = int(np.sum(~called & positive))
    tn = int(np.sum(~called & ~positive))
    fp = int(np.sum(called & ~positive))
    return OperatingPoint(
        float(cutoff),
        tp,
        fn,
        tn,
        fp,
        sensitivity=proportion(tp, tp + fn, confidence),
        specificity=proportion(tn, tn + fp, confidence),
        accuracy=proportion(tp + tn, tp + tn + fp + fn, confidence),
        positive_predictive_value=proportion(tp, tp + fp, confidence),
        negative_predictive_value=proportion(tn, tn + fn, confidence),
    )


def youden_cutoff(scores, truth) -> YoudenCutoff:
    """Cut-off that maximises sensitivity + specificity - 1 (Youden 1950).

    pROC convention (Robin et al. 2011): candidate thresholds are -inf, the
    midpoints between consecutive sorted distinct scores, and +inf; a case
    is positive when ``score >= threshold``. When several thresholds reach
    the maximum the lowest one (highest sensitivity) is returned.
    The cut-off is fitted to the data, so sensitivity and specificity at
    it are optimistic for new cases.
    """
    scores, positive = _scores_and_positive(scores, truth)
    if positive.all() or not positive.any():
        raise ValueError("a cut-off needs at least one positive and one negative case")
    distinct = np.unique(scores)
    thresholds = np.concatenate(([-np.inf], (distinct[:-1] + distinct[1:]) / 2, [np.inf]))
    sensitivity, specificity = _rates_at(scores[positive], scores[~positive], thresholds)
    best = int(np.argmax(sensitivity + specificity))
    return YoudenCutoff(
        float(thresholds[best]),
        float(sensitivity[best]),
        float(specificity[best]),
        float(sensitivity[best] + specificity[best] - 1),
    )


def _rates_at(positives, negatives, thresholds):
    positives, negatives = np.sort(positives), np.sort(negatives)
    sensitivity = 1 - np.searchsorted(positives, thresholds, side="left") / len(positives)
    specificity = np.searchsorted(negatives, thresholds, side="left") / len(negatives)
    return sensitivity, specificity


def bootstrap_youden_operating_point(
    scores,
    truth,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    clusters=None,
) -> BootstrapOperatingPoint:
    """Percentile bootstrap of the Youden cut-off and its sensitivity/specificity.

    In each resample the Youden cut-off is chosen again and the apparent
    sensitivity and specificity at it are recorded, so the intervals carry
    the variability of choosing the cut-off. Without ``clusters`` the
    resampling is stratified by truth (as pROC does); with ``clusters``
    (for example patient ids when a patient has several lesions) whole
    clusters are resampled and resamples lacking a class are drawn again.
    Seeded with ``numpy.random.default_rng(seed)``.
    """
    scores, positive = _scores_and_positive(scores, truth)
    point = youden_cutoff(scores, positive.astype(int))
    rng = np.random.default_rng(seed)
    draws = np.empty((n_resamples, 3))
    if clusters is None:
        positive_idx, negative_idx = np.flatnonzero(positive), np.flatnonzero(~positive)
    else:
        _, cluster_codes = np.unique(np.asarray(clusters), return_inverse=True)
        members = np.split(
            np.argsort(cluster_codes, kind="stable"), np.cumsum(np.bincount(cluster_codes))[:-1]
        )
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
            chosen = rng.integers(0, len(members), len(members))
            sample = np.concatenate([members[c] for c in chosen])
            if positive[sample].all() or not positive[sample].any():
                continue
        resampled = youden_cutoff(scores[sample], positive[sample].astype(int))
        draws[done] = (resampled.cutoff, resampled.sensitivity, resampled.specificity)
        done += 1
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    estimates = (point.cutoff, point.sensitivity, point.specificity)
    cutoff, sensitivity, specificity = (
        BootstrapInterval(e, float(lo), float(hi)) for e, lo, hi in zip(estimates, low, high)
    )
    return BootstrapOperatingPoint(
        cutoff, sensitivity, specificity, n_resamples=n_resamples, seed=seed
    )
