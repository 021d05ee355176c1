"""Aided versus unaided reading: are the readers better with the model than without it?

The same readers read the same cases twice, once without the model's output
(``unaided``) and once with it (``aided``): a fully crossed two-modality
multi-reader multi-case study. Inputs are ``ratings[2, reader, case]`` (index
0 unaided, 1 aided; higher = more suspicious of malignancy), the 0/1 truth
of the cases and, optionally, the readers' binary calls ``calls[2, reader,
case]`` (1 = malignant) and patient ids (several lesions of one patient).

Analyses (all through :func:`evaluation.stats.mrmc.or_mrmc`, so the same method,
conventions and references: Obuchowski & Rockette 1995, Hillis 2007,
Hillis, Berbaum & Metz 2008):

* AUC of the ratings: OR-MRMC with the two modalities as treatments,
  random readers and cases (RRRC), fixed readers (FRRC) and fixed cases
  (RRFC);
* sensitivity and specificity at the readers' own calls: the same OR
  analysis of the calls as 0/1 ratings with threshold 1 (mrmc's
  ``sensitivity``/``specificity`` metrics; the jackknife leaves out only the
  positive, respectively negative, cases). DeLong covariance is defined for
  the AUC only, so with ``covariance="delong"`` these use the jackknife;
* per reader: the reader's difference with a normal interval for a fixed
  reader and random cases, ``se² = Var_unaided + Var_aided - 2 Cov`` from
  the same covariance matrix (MRMCaov's reader-specific differences);
* call changes: per reader and pooled, how often the call stayed, went
  benign → malignant or malignant → benign, and relative to the truth
  whether the change corrected a wrong call or made a right one wrong.

Conventions: every difference is aided minus unaided (positive = the model
helped); the pooled value is the mean over readers; ``mrmc.or_mrmc``
reports first-minus-second treatment, so its unaided-minus-aided
differences and intervals are negated here, p-values are unchanged.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

from archive.vocabulary import SESSIONS
from evaluation.stats import mrmc

MODALITIES = SESSIONS  # the reading sessions: index 0 unaided, 1 aided, as in ``ratings``
UNAIDED, AIDED = MODALITIES
ANALYSES = (
    "random_readers_random_cases",
    "fixed_readers_random_cases",
    "random_readers_fixed_cases",
)
ANALYSIS_KEYS = {
    "random_readers_random_cases": "rrrc",
    "fixed_readers_random_cases": "frrc",
    "random_readers_fixed_cases": "rrfc",
}


@dataclass(frozen=True)
class ModalityTest:
    """One OR analysis of the aided − unaided difference of the readers' mean.

    ``ddf`` is None for the chi-square test of the fixed-reader analysis.
    """

    analysis: str
    difference: float
    se: float
    statistic: float
    ndf: int
    ddf: float | None
    p_value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ReaderDifference:
    """One reader's metric unaided and aided; the interval is for a fixed reader, random cases (normal)."""

    reader: str
    unaided: float
    aided: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class ModalityComparison:
    """A metric unaided and aided: readers' means, per-reader differences and the three OR tests."""

    metric: str
    unaided: float
    aided: float
    difference: float
    readers: list[ReaderDifference]
    random_readers_random_cases: ModalityTest
    fixed_readers_random_cases: ModalityTest
    random_readers_fixed_cases: ModalityTest
    or_result: mrmc.OrMrmcResult


@dataclass(frozen=True)
class CallChangeCounts:
    """Reads of one reader (or all readers) with a call unaided and aided.

    ``unchanged = both_right + both_wrong`` and the changed reads are both
    ``benign_to_malignant + malignant_to_benign`` and ``corrected +
    newly_wrong`` (a binary call that changes always changes its correctness).
    """

    reads: int
    unchanged: int
    benign_to_malignant: int
    malignant_to_benign: int
    corrected: int
    newly_wrong: int
    both_right: int
    both_wrong: int

    @property
    def changed(self) -> int:
        return self.reads - self.unchanged

    def as_dict(self) -> dict:
        return {
            "reads": self.reads,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "changed_fraction": self.changed / self.reads if self.reads else None,
            "benign_to_malignant": self.benign_to_malignant,
            "malignant_to_benign": self.malignant_to_benign,
            "corrected": self.corrected,
            "newly_wrong": self.newly_wrong,
            "both_right": self.both_right,
            "both_wrong": self.both_wrong,
        }


@dataclass(frozen=True)
class CallChanges:
    per_reader: dict[str, CallChangeCounts]
    pooled: CallChangeCounts

    def as_dict(self) -> dict:
        return {
            "pooled": self.pooled.as_dict(),
            "per_reader": {reader: counts.as_dict() for reader, counts in self.per_reader.items()},
        }


@dataclass(frozen=True)
class AidedReadingAnalysis:
    """Everything :func:`analyze_aided_reading` computes; ``as_dict`` is the JSON form.

    ``sensitivity``, ``specificity`` and ``call_changes`` are None without calls.
    """

    readers: list[str]
    n_cases: int
    n_positive: int
    covariance_method: str
    patient_level: bool
    confidence: float
    auc: ModalityComparison
    sensitivity: ModalityComparison | None
    specificity: ModalityComparison | None
    call_changes: CallChanges | None

    def comparisons(self) -> list[ModalityComparison]:
        return [c for c in (self.auc, self.sensitivity, self.specificity) if c is not None]

    def as_dict(self) -> dict:
        return {
            "readers": list(self.readers),
            "n_cases": self.n_cases,
            "n_positive": self.n_positive,
            "covariance": self.covariance_method,
            "patient_level": self.patient_level,
            "confidence": self.confidence,
            "auc": _comparison_as_dict(self.auc),
            "sensitivity": _comparison_as_dict(self.sensitivity),
            "specificity": _comparison_as_dict(self.specificity),
            "call_changes": None if self.call_changes is None else self.call_changes.as_dict(),
        }


def _two_modalities(array, name, n_cases=None):
    array = np.asarray(array, dtype=float)
    if array.ndim != 3 or array.shape[0] != 2:
        raise ValueError(
            f"{name} must be an array [2 (unaided, aided), reader, case]; got shape {array.shape}"
        )
    if n_cases is not None and array.shape[2] != n_cases:
        raise ValueError(f"{name} have {array.shape[2]} cases but truth has {n_cases}")
    return array


def _calls_array(calls, shape):
    calls = _two_modalities(calls, "calls")
    if calls.shape != shape:
        raise ValueError(
            f"calls have shape {calls.shape} but ratings have {shape}; every read needs a call"
        )
    if not np.all(np.isin(calls, (0, 1))):
        raise ValueError("calls must contain only 0 (benign) and 1 (malignant)")
    return calls.astype(bool)


def call_changes(calls, truth, readers=None) -> CallChanges:
    """How the readers' binary calls changed from unaided to aided, per reader and pooled.

    ``calls[2, reader, case]``: 0/1 or bool, 1 = malignant; ``truth``: 0/1
    per case. A read is corrected when the unaided call was wrong and the
    aided call right, newly wrong the other way round.
    """
    truth = np.asarray(truth)
    calls = np.asarray(calls)
    if calls.ndim != 3 or calls.shape[0] != 2 or calls.shape[2] != truth.shape[0]:
        raise ValueError(
            f"calls must be an array [2 (unaided, aided), reader, case] over the {truth.shape[0]} cases"
        )
    calls = _calls_array(calls, calls.shape)
    readers = _reader_names(readers, calls.shape[1])
    malignant = truth.astype(bool)
    unaided, aided = calls[0], calls[1]
    right_before, right_after = unaided == malignant, aided == malignant

    def counts(rows):
        return CallChangeCounts(
            reads=int(unaided[rows].size),
            unchanged=int((unaided[rows] == aided[rows]).sum()),
            benign_to_malignant=int((~unaided[rows] & aided[rows]).sum()),
            malignant_to_benign=int((unaided[rows] & ~aided[rows]).sum()),
            corrected=int((~right_before[rows] & right_after[rows]).sum()),
            newly_wrong=int((right_before[rows] & ~right_after[rows]).sum()),
            both_right=int((right_before[rows] & right_after[rows]).sum()),
            both_wrong=int((~right_before[rows] & ~right_after[rows]).sum()),
        )

    return CallChanges({reader: counts(j) for j, reader in enumerate(readers)}, counts(slice(None)))


def _reader_names(readers, n_readers):
    if readers is None:
        return [str(j + 1) for j in range(n_readers)]
    readers = [str(r) for r in readers]
    if len(readers) != n_readers:
        raise ValueError(f"{len(readers)} reader names for {n_readers} readers")
    return readers


def _modality_test(test: mrmc.OrTest) -> ModalityTest:
    unaided_minus_aided = test.differences[0]
    return ModalityTest(
        test.analysis,
        0.0 - unaided_minus_aided.difference,
        unaided_minus_aided.se,
        test.statistic,
        test.ndf,
        test.ddf,
        test.p_value,
        0.0 - unaided_minus_aided.ci_high,
        0.0 - unaided_minus_aided.ci_low,
    )


def _reader_differences(result: mrmc.OrMrmcResult, readers, confidence) -> list[ReaderDifference]:
    theta, cov = result.reader_metric, result.covariance
    r = theta.shape[1]
    critical = stats.norm.ppf(0.5 + confidence / 2)
    differences = []
    for j, reader in enumerate(readers):
        difference = float(theta[1, j] - theta[0, j])
        se = float(np.sqrt(max(cov[j, j] + cov[r + j, r + j] - 2 * cov[j, r + j], 0.0)))
        p_value = (
            float(2 * stats.norm.sf(abs(difference) / se))
            if se > 0
            else (1.0 if difference == 0 else 0.0)
        )
        differences.append(
            ReaderDifference(
                reader,
                float(theta[0, j]),
                float(theta[1, j]),
                difference,
                se,
                float(difference - critical * se),
                float(difference + critical * se),
                p_value,
            )
        )
    return differences


def compare_modalities(
    ratings, truth, readers=None, metric: str = "auc", threshold: float | None = None, **or_options
) -> ModalityComparison:
    """One metric unaided and aided from ``ratings[2 (unaided, aided), reader, case]``.

    ``or_options`` go to :func:`mrmc.or_mrmc` (covariance, clusters,
    n_bootstrap, seed, confidence). Differences are aided − unaided.
    """
    ratings = _two_modalities(ratings, "ratings", np.asarray(truth).shape[0])
    readers = _reader_names(readers, ratings.shape[1])
    result = mrmc.or_mrmc(ratings, truth, metric=metric, threshold=threshold, **or_options)
    means = result.reader_metric.mean(axis=1)
    random_readers_random_cases, fixed_readers_random_cases, random_readers_fixed_cases = (
        _modality_test(getattr(result, analysis)) for analysis in ANALYSES
    )
    return ModalityComparison(
        str(mrmc.Metric(metric)),
        float(means[0]),
        float(means[1]),
        float(means[1] - means[0]),
        _reader_differences(result, readers, or_options.get("confidence", 0.95)),
        random_readers_random_cases,
        fixed_readers_random_cases,
        random_readers_fixed_cases,
        result,
    )


def analyze_aided_reading(
    ratings,
    truth,
    calls=None,
    readers=None,
    clusters=None,
    covariance: str = "jackknife",
    n_bootstrap: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> AidedReadingAnalysis:
    """Aided − unaided: AUC of the ratings, sensitivity/specificity at the calls, call changes.

    ``ratings[2, reader, case]`` and ``calls[2, reader, case]`` (0/1, 1 =
    malignant; optional) with index 0 unaided and 1 aided; ``truth`` 0/1 per
    case; ``readers`` names (default "1", "2", ...); ``clusters`` patient ids
    per case (the jackknife then leaves out patients, the bootstrap
    resamples them). See the module docstring for the methods.
    """
    truth = np.asarray(truth)
    ratings = _two_modalities(ratings, "ratings", truth.shape[0])
    readers = _reader_names(readers, ratings.shape[1])
    options = dict(clusters=clusters, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
    auc = compare_modalities(ratings, truth, readers, "auc", covariance=covariance, **options)
    sensitivity = specificity = changes = None
    if calls is not None:
        calls = _calls_array(calls, ratings.shape)
        delong = mrmc.CovarianceMethod(covariance) == mrmc.CovarianceMethod.DELONG
        binary_covariance = "jackknife" if delong else covariance
        sensitivity, specificity = (
            compare_modalities(
                calls.astype(float),
                truth,
                readers,
                metric,
                1.0,
                covariance=binary_covariance,
                **options,
            )
            for metric in ("sensitivity", "specificity")
        )
        changes = call_changes(calls, truth, readers)
    return AidedReadingAnalysis(
        readers,
        int(truth.shape[0]),
        int(truth.sum()),
        str(mrmc.CovarianceMethod(covariance)),
        clusters is not None,
        confidence,
        auc,
        sensitivity,
        specificity,
        changes,
    )


# --- JSON form ---------------------------------------------------------------


def _number(value):
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _comparison_as_dict(comparison: ModalityComparison | None) -> dict | None:
    if comparison is None:
        return None
    payload = {
        "metric": comparison.metric,
        "unaided": _number(comparison.unaided),
        "aided": _number(comparison.aided),
        "difference": _number(comparison.difference),
        "per_reader": {
            d.reader: {
                "unaided": _number(d.unaided),
                "aided": _number(d.aided),
                "difference": _number(d.difference),
                "se": _number(d.se),
                "ci_low": _number(d.ci_low),
                "ci_high": _number(d.ci_high),
                "p": _number(d.p_value),
            }
            for d in comparison.readers
        },
    }
    for analysis, key in ANALYSIS_KEYS.items():
        test = getattr(comparison, analysis)
        payload[key] = {
            "difference": _number(test.difference),
            "se": _number(test.se),
            "statistic": _number(test.statistic),
            "ndf": test.ndf,
            "ddf": _number(test.ddf),
            "p": _number(test.p_value),
            "ci_low": _number(test.ci_low),
            "ci_high": _number(test.ci_high),
        }
    return payload
