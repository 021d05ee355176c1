"""Readers versus models on one set of lesions: every analysis of the comparison page.

Framework-free: takes arrays (``ComparisonData``) and returns one JSON-ready dict.
Every number comes from the statistics core (``roc``, ``operating_points``,
``regression``, ``agreement``, ``mrmc``, ``reader_study``); this module only
decides which arrays enter which function, per subgroup of lesions.

Conventions:

* Readers' ratings are their 0–100 probabilities of malignancy; models' ratings
  are their held-out scores (0–1: out-of-fold, or from a model that never trained
  on the patient). Higher = malignant, never flipped.
* A reader's binary call is their operating point; a model's operating point is
  its Youden cut-off chosen on these same lesions (optimistic for new lesions).
* With ``patient_level`` (default: on when some patient has more than one lesion)
  AUC covariances are the clustered DeLong covariances of Obuchowski (1997) and the
  MRMC jackknife leaves out one patient at a time.
* Model-versus-reader DeLong differences are model minus reader; the MRMC sentence
  reports readers minus model, as ``reader_study.model_vs_readers_sentence`` does.
"""

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy import stats

from evaluation.stats import (
    agreement,
    aided_reading,
    mrmc,
    operating_points,
    reader_study,
    regression,
    roc,
    sample_size,
)

SIZE_SUBGROUPS = (
    ("size_le_20", "≤ 2 cm", lambda size: size <= 20.0),
    ("size_20_40", "> 2 to 4 cm", lambda size: (size > 20.0) & (size <= 40.0)),
)
# Regression covariates are scaled so that an odds ratio reads per clinically sized step.
SCORE_STEP, AGE_STEP_YEARS, SIZE_STEP_MM = 0.1, 10.0, 10.0
CURVE_DIGITS = 4


@dataclass(frozen=True)
class Rater:
    """A reader or a model as it appears in tables and plots."""

    key: str
    label: str
    kind: str  # "reader" or "model"
    simulated: bool = False


@dataclass(frozen=True)
class ComparisonData:
    """Complete ratings on the analysed lesions (every rater rated every lesion).

    ``reader_probability`` and ``reader_call`` are [reader, lesion];
    ``model_score`` is [model, lesion]; ``sex`` is 1 male, 0 female, NaN unknown;
    ``age`` and ``size_mm`` are NaN when unknown.
    """

    lesion_ids: list
    truth: np.ndarray
    patients: np.ndarray
    size_mm: np.ndarray
    subtype: list
    age: np.ndarray
    sex: np.ndarray
    readers: list
    reader_probability: np.ndarray
    reader_call: np.ndarray
    models: list
    model_score: np.ndarray
    subtype_labels: dict = field(default_factory=dict)

    def subset(self, mask) -> "ComparisonData":
        mask = np.asarray(mask, dtype=bool)
        pick = np.flatnonzero(mask)
        return ComparisonData(
            [self.lesion_ids[i] for i in pick],
            self.truth[mask],
            self.patients[mask],
            self.size_mm[mask],
            [self.subtype[i] for i in pick],
            self.age[mask],
            self.sex[mask],
            self.readers,
            self.reader_probability[:, mask],
            self.reader_call[:, mask],
            self.models,
            self.model_score[:, mask],
            self.subtype_labels,
        )


def number(value, digits: int | None = None):
    """A finite float (optionally rounded) or None, for JSON."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value


def has_multi_lesion_patients(patients) -> bool:
    patients = np.asarray(patients)
    return len(np.unique(patients)) < len(patients)


def subgroup_masks(data: ComparisonData) -> list[tuple[str, str, np.ndarray]]:
    """(key, label, mask) of every subgroup: all lesions, size bands, each subtype.

    A subtype whose lesions are all malignant is compared against all benign
    lesions (and vice versa), so that an AUC exists; a mixed subtype is on its own.
    """
    n = len(data.lesion_ids)
    groups = [("all", "All lesions", np.ones(n, dtype=bool))]
    size = np.where(np.isnan(data.size_mm), -1.0, data.size_mm)
    known = ~np.isnan(data.size_mm)
    for key, label, rule in SIZE_SUBGROUPS:
        groups.append((key, f"Size {label}", known & rule(size)))
    subtypes = np.asarray(data.subtype, dtype=object)
    for subtype in sorted(
        {s for s in data.subtype if s},
        key=lambda s: (list(data.subtype_labels).index(s) if s in data.subtype_labels else 99, s),
    ):
        members = subtypes == subtype
        name = data.subtype_labels.get(subtype, subtype)
        classes = set(data.truth[members].tolist())
        if classes == {1}:
            groups.append(
                (f"subtype_{subtype}", f"{name} vs all benign", members | (data.truth == 0))
            )
        elif classes == {0}:
            groups.append(
                (f"subtype_{subtype}", f"{name} vs all malignant", members | (data.truth == 1))
            )
        else:
            groups.append((f"subtype_{subtype}", name, members))
    return groups


def _safely(compute):
    try:
        return compute()
    except (ValueError, ZeroDivisionError, np.linalg.LinAlgError) as error:
        return {"error": str(error)}


def _auc_covariance(rows, truth, clusters):
    if clusters is None:
        return roc.delong_covariance(rows, truth)
    result = roc.delong_placements(rows, truth)
    return roc.DelongCovariance(
        result.auc, mrmc.clustered_delong_covariance(rows, truth == 1, clusters)
    )


def _wald(difference, variance, confidence):
    se = math.sqrt(variance) if variance > 0 else 0.0
    z_crit = stats.norm.ppf(0.5 + confidence / 2)
    z = difference / se if se > 0 else float("nan")
    return {
        "difference": number(difference),
        "se": number(se),
        "z": number(z),
        "p": number(2 * stats.norm.sf(abs(z))) if se > 0 else None,
        "ci_low": number(difference - z_crit * se),
        "ci_high": number(difference + z_crit * se),
    }


def _proportion(p: operating_points.Proportion) -> dict:
    return {
        "successes": p.successes,
        "total": p.total,
        "estimate": number(p.estimate),
        "ci_low": number(p.wilson_low),
        "ci_high": number(p.wilson_high),
    }


def _operating_point(point: operating_points.OperatingPoint) -> dict:
    return {
        "cutoff": number(point.cutoff),
        "tp": point.true_positives,
        "fn": point.false_negatives,
        "tn": point.true_negatives,
        "fp": point.false_positives,
        "sensitivity": _proportion(point.sensitivity),
        "specificity": _proportion(point.specificity),
        "accuracy": _proportion(point.accuracy),
        "ppv": _proportion(point.positive_predictive_value),
        "npv": _proportion(point.negative_predictive_value),
    }


def _curves(raters, rows, truth) -> dict:
    curves = {}
    for rater, row in zip(raters, rows):
        curve = roc.roc_curve(row, truth)
        curves[rater.key] = {
            "fpr": np.round(curve.false_positive_rate, CURVE_DIGITS).tolist(),
            "tpr": np.round(curve.true_positive_rate, CURVE_DIGITS).tolist(),
        }
    return curves


def _auc_table(raters, covariance, confidence) -> list[dict]:
    z_crit = stats.norm.ppf(0.5 + confidence / 2)
    table = []
    for i, rater in enumerate(raters):
        auc, variance = float(covariance.auc[i]), float(covariance.covariance[i, i])
        half = z_crit * math.sqrt(max(variance, 0.0))
        table.append(
            {
                "key": rater.key,
                "label": rater.label,
                "kind": rater.kind,
                "simulated": rater.simulated,
                "auc": number(auc),
                "se": number(math.sqrt(max(variance, 0.0))),
                "ci_low": number(max(auc - half, 0.0)),
                "ci_high": number(min(auc + half, 1.0)),
            }
        )
    return table


def _pairwise(covariance, first, second, confidence) -> dict:
    contrast = np.zeros(len(covariance.auc))
    contrast[[first, second]] = (1.0, -1.0)
    return _wald(contrast @ covariance.auc, contrast @ covariance.covariance @ contrast, confidence)


def _model_vs_reader_delong(data, covariance, confidence) -> dict:
    r = len(data.readers)
    return {
        model.key: [
            {
                "reader": reader.key,
                "label": reader.label,
                "simulated": reader.simulated,
                **_pairwise(covariance, r + m, i, confidence),
            }
            for i, reader in enumerate(data.readers)
        ]
        for m, model in enumerate(data.models)
    }


def _phase_comparison(data, covariance, confidence) -> dict | None:
    """Omnibus chi-square that all model AUCs are equal, with Holm-adjusted pairs (DeLong 1988)."""
    k = len(data.models)
    if k < 2:
        return None
    offset = len(data.readers)
    index = np.arange(offset, offset + k)
    auc = covariance.auc[index]
    cov = covariance.covariance[np.ix_(index, index)]
    contrast = np.eye(k)[:-1] - np.eye(k, k=1)[:-1]
    contrasted = contrast @ auc
    contrasted_cov = contrast @ cov @ contrast.T
    chi_square = float(contrasted @ np.linalg.pinv(contrasted_cov) @ contrasted)
    df = int(np.linalg.matrix_rank(contrasted_cov))
    pairs = [
        (a, b, _pairwise(covariance, offset + a, offset + b, confidence))
        for a, b in combinations(range(k), 2)
    ]
    holm = roc.holm_adjust([p["p"] if p["p"] is not None else 1.0 for _, _, p in pairs])
    return {
        "chi_square": number(chi_square),
        "df": df,
        "p": number(stats.chi2.sf(chi_square, df)) if df > 0 else None,
        "pairwise": [
            {
                "first": data.models[a].key,
                "second": data.models[b].key,
                "first_label": data.models[a].label,
                "second_label": data.models[b].label,
                **result,
                "p_holm": number(adjusted),
            }
            for (a, b, result), adjusted in zip(pairs, holm)
        ],
    }


def _operating_points(data, confidence) -> dict:
    readers = {
        reader.key: _safely(
            lambda i=i: _operating_point(
                operating_points.operating_point(data.reader_call[i], data.truth, 0.5, confidence)
            )
        )
        for i, reader in enumerate(data.readers)
    }
    models = {}
    for m, model in enumerate(data.models):

        def youden(m=m):
            cutoff = operating_points.youden_cutoff(data.model_score[m], data.truth)
            point = operating_points.operating_point(
                data.model_score[m], data.truth, cutoff.cutoff, confidence
            )
            return {**_operating_point(point), "youden_index": number(cutoff.youden_index)}

        models[model.key] = _safely(youden)
    return {"readers": readers, "models": models}


def _regression(data, confidence) -> dict:
    """malignancy ~ model score (per 0.1) + age (per 10 y) + sex (male) + long axis (per 10 mm)."""
    known = ~(np.isnan(data.age) | np.isnan(data.sex) | np.isnan(data.size_mm))
    results = {}
    for m, model in enumerate(data.models):

        def fit(m=m):
            if known.sum() < 5:
                raise ValueError(f"only {int(known.sum())} lesions have age, sex and size recorded")
            covariates = {
                "model_score": data.model_score[m][known] / SCORE_STEP,
                "age": data.age[known] / AGE_STEP_YEARS,
                "male_sex": data.sex[known],
                "long_axis": data.size_mm[known] / SIZE_STEP_MM,
            }
            result = regression.logistic_regression(data.truth[known], covariates, confidence)
            return {
                "n": result.n_observations,
                "n_left_out": int((~known).sum()),
                "converged": result.converged,
                "separation": result.separation,
                "log_likelihood": number(result.log_likelihood),
                "coefficients": [
                    {
                        "name": c.name,
                        "estimate": number(c.estimate),
                        "se": number(c.standard_error),
                        "z": number(c.z),
                        "p": number(c.p_value),
                        "odds_ratio": number(c.odds_ratio),
                        "ci_low": number(c.odds_ratio_ci_low),
                        "ci_high": number(c.odds_ratio_ci_high),
                    }
                    for c in result.coefficients
                    if c.name != "const"
                ],
            }

        results[model.key] = _safely(fit)
    return results


def _kappa(data, confidence) -> dict:
    pairs = []
    for a, b in combinations(range(len(data.readers)), 2):

        def cohen(a=a, b=b):
            k = agreement.cohen_kappa(data.reader_call[a], data.reader_call[b], confidence)
            return {
                "kappa": number(k.kappa),
                "ci_low": number(k.ci_low),
                "ci_high": number(k.ci_high),
                "observed_agreement": number(k.observed_agreement),
                "p": number(k.p_value),
            }

        pairs.append(
            {
                "first": data.readers[a].key,
                "second": data.readers[b].key,
                "first_label": data.readers[a].label,
                "second_label": data.readers[b].label,
                **_safely(cohen),
            }
        )
    fleiss = None
    if len(data.readers) >= 2:

        def panel():
            k = agreement.fleiss_kappa(data.reader_call.T.astype(int))
            return {
                "kappa": number(k.kappa),
                "observed_agreement": number(k.observed_agreement),
                "n_subjects": k.n_subjects,
                "n_raters": k.n_raters,
            }

        fleiss = _safely(panel)
    return {"cohen": pairs, "fleiss": fleiss}


def _difference(test: mrmc.DifferenceTest) -> dict:
    return {
        "mean_difference": number(test.mean_difference),
        "se": number(test.se),
        "statistic": number(test.statistic),
        "df": number(test.df),
        "p": number(test.p_value),
        "ci_low": number(test.ci_low),
        "ci_high": number(test.ci_high),
    }


def _mrmc(data, patient_level, confidence) -> dict:
    """Readers versus each model: OR analysis through ``reader_study.analyze_reader_study``."""
    if len(data.readers) < 2:
        return {"error": "an MRMC analysis needs at least two readers with a call on every lesion"}
    results = {}
    case_ids = [str(i) for i in data.lesion_ids]
    reader_labels = [r.key for r in data.readers]
    for m, model in enumerate(data.models):

        def analyse(m=m, model=model):
            study = reader_study.RatingTable(
                readers=reader_labels + [model.key],
                treatments=[reader_study.SINGLE_TREATMENT],
                cases=case_ids,
                truth=data.truth.astype(int),
                ratings=np.vstack((data.reader_probability, data.model_score[m][None]))[None],
                patients=np.asarray(data.patients),
                reader_types={},
            )
            analysis = reader_study.analyze_reader_study(
                study, model_reader=model.key, patient_level=patient_level, confidence=confidence
            )
            comparison = analysis.model_vs_readers
            return {
                "sentence": reader_study.model_vs_readers_sentence(analysis),
                "model_auc": number(comparison.model_metric),
                "mean_reader_auc": number(comparison.mean_reader_metric),
                "rrrc": _difference(comparison.random_readers_random_cases),
                "frrc": _difference(comparison.fixed_readers_random_cases),
                "rrfc": _difference(comparison.random_readers_fixed_cases),
            }

        results[model.key] = _safely(analyse)
    if not data.models:

        def readers_only():
            result = mrmc.or_mrmc(
                data.reader_probability[None],
                data.truth,
                clusters=data.patients if patient_level else None,
                confidence=confidence,
            )
            estimate = result.treatment_estimates[0]
            return {
                "estimate": number(estimate.estimate),
                "ci_low": number(estimate.ci_low),
                "ci_high": number(estimate.ci_high),
                "df": number(estimate.df),
            }

        return {"readers": _safely(readers_only), "models": {}}
    return {"models": results}


def analyse_subgroup(
    data: ComparisonData,
    patient_level: bool,
    confidence: float = 0.95,
    with_regression: bool = True,
) -> dict:
    """Every analysis of the page for one set of lesions (see the module docstring)."""
    truth = data.truth.astype(int)
    summary = {
        "n": int(len(truth)),
        "n_malignant": int(truth.sum()),
        "n_patients": int(len(np.unique(data.patients))) if len(truth) else 0,
    }
    if len(truth) == 0 or truth.all() or not truth.any():
        return {**summary, "error": "this subgroup needs both malignant and benign lesions"}
    raters = list(data.readers) + list(data.models)
    if not raters:
        return {**summary, "error": "no reader or model rated every lesion"}
    rows = np.vstack([data.reader_probability, data.model_score]).astype(float)
    clusters = np.asarray(data.patients) if patient_level else None
    covariance = _safely(lambda: _auc_covariance(rows, truth, clusters))
    if isinstance(covariance, dict):
        return {**summary, **covariance}
    reader_points = {}
    for i, reader in enumerate(data.readers):
        called = data.reader_call[i].astype(bool)
        reader_points[reader.key] = {
            "fpr": number(called[truth == 0].mean(), CURVE_DIGITS),
            "tpr": number(called[truth == 1].mean(), CURVE_DIGITS),
        }
    return {
        **summary,
        "auc": _auc_table(raters, covariance, confidence),
        "curves": _curves(raters, rows, truth),
        "reader_points": reader_points,
        "model_vs_reader_delong": _model_vs_reader_delong(data, covariance, confidence),
        "phase_comparison": _safely(lambda: _phase_comparison(data, covariance, confidence)),
        "operating_points": _operating_points(data, confidence),
        "regression": _regression(data, confidence) if with_regression else {},
        "kappa": _kappa(data, confidence),
        "mrmc": _mrmc(data, patient_level, confidence),
    }


def compare(
    data: ComparisonData, patient_level: bool | None = None, confidence: float = 0.95
) -> dict:
    """Every subgroup's analyses (``analyse_subgroup``), as one JSON-ready dict.

    ``patient_level`` None means on when some patient has more than one lesion.
    """
    if patient_level is None:
        patient_level = has_multi_lesion_patients(data.patients)
    subgroups = []
    for key, label, mask in subgroup_masks(data):
        # A subtype subgroup's case mix is made by selection, so a risk model fitted on it means little.
        with_regression = not key.startswith("subtype_")
        subgroups.append(
            {
                "key": key,
                "label": label,
                **analyse_subgroup(data.subset(mask), patient_level, confidence, with_regression),
            }
        )
    return {
        "confidence": confidence,
        "patient_level": bool(patient_level),
        "readers": [vars(r) for r in data.readers],
        "models": [vars(r) for r in data.models],
        "regression_steps": {
            "model_score": SCORE_STEP,
            "age_years": AGE_STEP_YEARS,
            "long_axis_mm": SIZE_STEP_MM,
        },
        "subgroups": subgroups,
    }


def aided_vs_unaided(
    readers,
    lesion_ids,
    truth,
    patients,
    ratings,
    calls,
    patient_level: bool,
    confidence: float = 0.95,
) -> dict:
    """Aided − unaided OR-MRMC of a sequential reader study (:mod:`evaluation.stats.aided_reading`), JSON-ready.

    ``ratings``/``calls`` are ``[2, reader, lesion]`` (index 0 unaided, 1 aided; calls 1 =
    malignant), ``readers`` the readers' labels. The AUC, sensitivity and specificity at
    the readers' own calls (RRRC, FRRC, RRFC, per reader), the call changes, and each
    metric's sentence under ``sentence``; ``{"error": ...}`` when it cannot be computed.
    """
    if len(readers) < 2:
        return {
            "error": "aided − unaided needs at least two readers with an unaided and an aided call on every lesion"
        }

    def analyse():
        analysis = aided_reading.analyze_aided_reading(
            np.asarray(ratings, dtype=float),
            np.asarray(truth).astype(int),
            np.asarray(calls).astype(int),
            list(readers),
            np.asarray(patients) if patient_level else None,
            confidence=confidence,
        )
        return reader_study.aided_vs_unaided_as_dict(analysis)

    return _safely(analyse)


PLAN_NEEDS_A_PILOT = (
    "Planning the next study needs a pilot with aided and unaided reads: the same readers' unaided and aided "
    "calls on the same cases (a sequential or crossover reader study), or run manage.py plan_reader_study "
    "FILE.csv --effect 0.05 on a long CSV with two treatments."
)
PLAN_POWER, PLAN_ALPHA = 0.8, 0.05
PLAN_SOURCE = (
    "Hillis, Obuchowski & Berbaum (2011), Power estimation for multireader ROC methods, "
    "Acad. Radiol. 18:129–142; validated against RJafroc's SsPowerGivenJK and SsSampleSizeKGivenJ "
    "(Van Dyke and Franken data)"
)


def _finite(value):
    """``value`` with every non-finite float replaced by None (the result is stored as JSON)."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float):
        return number(value)
    return value


def plan_next_study(
    readers,
    truth,
    patients,
    ratings,
    patient_level: bool,
    effect: float,
    target_power: float = PLAN_POWER,
    alpha: float = PLAN_ALPHA,
) -> dict:
    """Power of the next aided-versus-unaided study over readers × cases, with this study as the pilot.

    ``ratings`` is ``[2, reader, lesion]`` (0 unaided, 1 aided), ``readers`` their labels. The OR
    variance components of the readers' AUCs (jackknife; by patient with ``patient_level``, and
    then case counts are patients) go into :func:`sample_size.plan_study` (Hillis, Obuchowski &
    Berbaum 2011): power for RRRC, FRRC and RRFC and the smallest number of cases per reader
    count. JSON-ready: ``StudyPlan.as_dict()`` plus the unit, the observed aided − unaided
    difference, the method and its source; ``{"error": ...}`` when it cannot be computed.
    """
    if len(readers) < 2:
        return {
            "error": "planning the next study needs at least two readers with an unaided and an aided call "
            "on every lesion"
        }

    def plan():
        clusters = np.asarray(patients) if patient_level else None
        pilot = sample_size.pilot_from_ratings(
            np.asarray(ratings, dtype=float), np.asarray(truth).astype(int), clusters=clusters
        )
        study_plan = sample_size.plan_study(pilot, effect, target_power, alpha)
        unit = "patients" if patient_level else "cases"
        payload = study_plan.as_dict()
        payload["pilot"].update(
            treatments=list(aided_reading.MODALITIES),
            patient_level=bool(patient_level),
            covariance="jackknife",
            readers=list(readers),
        )
        payload.update(
            unit=unit,
            observed_difference=number(-pilot.observed_effect),  # aided − unaided
            method=(
                f"Power of the two-sided test (α = {alpha:g}) of an AUC difference of {effect:g} between aided "
                f"and unaided reading, predicted from this study's Obuchowski–Rockette variance components "
                f"({pilot.n_readers} readers, {pilot.n_cases} {unit}, jackknife"
                f"{' by patient' if patient_level else ''}) by the method of Hillis, Obuchowski & Berbaum."
            ),
            source=PLAN_SOURCE,
        )
        return _finite(payload)

    return _safely(plan)
