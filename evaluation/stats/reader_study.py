"""Long-format reader-study data and the one-call analysis the portal and CLI use.

A long table has one row per reader x treatment x case with the columns
``reader, treatment, case, truth, rating`` (``treatment`` optional: without
it there is one treatment), optionally ``reader_type`` (e.g. CAD /
radiologist), ``patient`` (the patient a case/lesion belongs to; when
some patient has several cases, the analysis jackknifes or resamples by
patient) and ``call`` (the reader's binary call: malignant/benign or 1/0).

Aided reading: when the two treatments are named ``unaided`` and ``aided``
the analysis adds aided − unaided (:mod:`evaluation.stats.aided_reading`): the
AUC, and with a ``call`` column sensitivity and specificity at the readers'
own calls and how the calls changed, with the sentence a paper needs.
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.stats import aided_reading, mrmc

REQUIRED_COLUMNS = ("reader", "case", "truth", "rating")
SINGLE_TREATMENT = "1"
CALL_VALUES = {"1": True, "1.0": True, "malignant": True, "0": False, "0.0": False, "benign": False}


class ReaderStudyDataError(ValueError):
    """A problem in the input table, naming the file, row and column."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ):
        self.message, self.file, self.row, self.column = message, file, row, column
        where = ", ".join(
            part
            for part in (
                file and f"file {file}",
                row is not None and f"row {row}",
                column and f"column '{column}'",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class RatingTable:
    """The ratings of a balanced reader study, ``ratings[treatment, reader, case]``, with its truth.

    Named apart from ``annotations.models.ReaderStudy`` (the study being read in the portal).

    ``calls`` (same shape, bool, True = malignant) when the readers' binary
    calls are known.
    """

    readers: list[str]
    treatments: list[str]
    cases: list[str]
    truth: np.ndarray
    ratings: np.ndarray
    patients: np.ndarray | None
    reader_types: dict[str, str]
    calls: np.ndarray | None = None


@dataclass(frozen=True)
class ReaderStudyAnalysis:
    """Everything ``analyze_reader_study`` computes; ``as_dict`` is the JSON form."""

    study: RatingTable
    metric: str
    threshold: float | None
    covariance_method: str
    patient_level: bool
    readers_analyzed: list[str]
    or_result: mrmc.OrMrmcResult
    model_reader: str | None
    model_vs_readers: mrmc.ModelVsReadersResult | None
    confidence: float
    aided: aided_reading.AidedReadingAnalysis | None = None

    def as_dict(self) -> dict:
        return _analysis_as_dict(self)


def _natural_key(label: str):
    return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)


def reader_study_from_rows(rows, source: str = "<rows>", first_row_number: int = 2) -> RatingTable:
    """Build a balanced ``RatingTable`` from dict rows (e.g. ``csv.DictReader``).

    Row numbers in errors count from ``first_row_number`` (2 for a CSV file
    with a header line). Raises ``ReaderStudyDataError`` for a missing
    column, a non-numeric rating, truth other than 0/1, a call other than
    malignant/benign/1/0, a case whose truth or patient differs between rows, a repeated reader/treatment/case and
    an unbalanced design (some reader did not rate every case in every
    treatment).
    """
    rows = list(rows)
    if not rows:
        raise ReaderStudyDataError("the table has no data rows", source)
    columns = set(rows[0].keys())
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            raise ReaderStudyDataError(
                f"required column is missing (need {', '.join(REQUIRED_COLUMNS)}; "
                f"found {', '.join(sorted(c for c in columns if c))})",
                source,
                column=column,
            )
    has_treatment, has_patient, has_call = (
        "treatment" in columns,
        "patient" in columns,
        "call" in columns,
    )
    truth_of: dict[str, int] = {}
    patient_of: dict[str, str] = {}
    reader_types: dict[str, str] = {}
    rating_of: dict[tuple[str, str, str], float] = {}
    call_of: dict[tuple[str, str, str], bool] = {}
    for number, row in enumerate(rows, start=first_row_number):
        values = {key: (value or "").strip() for key, value in row.items() if key}
        reader, case = values["reader"], values["case"]
        treatment = values["treatment"] if has_treatment else SINGLE_TREATMENT
        for column, value in (("reader", reader), ("case", case), ("treatment", treatment)):
            if not value:
                raise ReaderStudyDataError("value is empty", source, number, column)
        try:
            rating = float(values["rating"])
        except ValueError:
            raise ReaderStudyDataError(
                f"rating '{values['rating']}' is not a number", source, number, "rating"
            ) from None
        if not math.isfinite(rating):
            raise ReaderStudyDataError(
                f"rating '{values['rating']}' is not a finite number", source, number, "rating"
            )
        if values["truth"] not in ("0", "1", "0.0", "1.0"):
            raise ReaderStudyDataError(
                f"truth '{values['truth']}' is not 0 (negative) or 1 (positive)",
                source,
                number,
                "truth",
            )
        case_truth = int(float(values["truth"]))
        if has_call:
            if values["call"].lower() not in CALL_VALUES:
                raise ReaderStudyDataError(
                    f"call '{values['call']}' is not malignant/benign (or 1/0)",
                    source,
                    number,
                    "call",
                )
            call_of[(treatment, reader, case)] = CALL_VALUES[values["call"].lower()]
        if truth_of.setdefault(case, case_truth) != case_truth:
            raise ReaderStudyDataError(
                f"case {case} has truth {case_truth} here but {truth_of[case]} in an earlier row",
                source,
                number,
                "truth",
            )
        if has_patient and patient_of.setdefault(case, values["patient"]) != values["patient"]:
            raise ReaderStudyDataError(
                f"case {case} belongs to patient {patient_of[case]} in an earlier row",
                source,
                number,
                "patient",
            )
        if "reader_type" in values:
            reader_types.setdefault(reader, values["reader_type"])
        key = (treatment, reader, case)
        if key in rating_of:
            raise ReaderStudyDataError(
                f"reader {reader} rated case {case} in treatment {treatment} twice",
                source,
                number,
                "case",
            )
        rating_of[key] = rating
    readers = sorted({k[1] for k in rating_of}, key=_natural_key)
    treatments = sorted({k[0] for k in rating_of}, key=_natural_key)
    cases = sorted(truth_of, key=_natural_key)
    ratings = np.full((len(treatments), len(readers), len(cases)), np.nan)
    index = (
        {name: i for i, name in enumerate(treatments)},
        {name: i for i, name in enumerate(readers)},
        {name: i for i, name in enumerate(cases)},
    )
    for (treatment, reader, case), rating in rating_of.items():
        ratings[index[0][treatment], index[1][reader], index[2][case]] = rating
    calls = None
    if has_call:
        calls = np.zeros(ratings.shape, dtype=bool)
        for (treatment, reader, case), call in call_of.items():
            calls[index[0][treatment], index[1][reader], index[2][case]] = call
    missing = np.argwhere(np.isnan(ratings))
    if len(missing):
        t, r, c = missing[0]
        raise ReaderStudyDataError(
            f"unbalanced design: reader {readers[r]} has no rating for case {cases[c]} in treatment "
            f"{treatments[t]} ({len(missing)} reader/treatment/case combinations missing; "
            "every reader must rate every case in every treatment)",
            source,
        )
    truth = np.array([truth_of[c] for c in cases])
    if truth.all() or not truth.any():
        raise ReaderStudyDataError(
            "the cases must include both positives (truth 1) and negatives (truth 0)",
            source,
            column="truth",
        )
    patients = np.array([patient_of[c] for c in cases]) if has_patient else None
    return RatingTable(readers, treatments, cases, truth, ratings, patients, reader_types, calls)


def load_reader_study(path) -> RatingTable:
    """Read a long-format reader-study CSV (see the module docstring)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return reader_study_from_rows(csv.DictReader(handle), source=str(path))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ReaderStudyDataError(f"cannot read the file: {error}", str(path)) from None


def has_multi_lesion_patients(study: RatingTable) -> bool:
    """True when some patient contributes more than one case."""
    if study.patients is None:
        return False
    return len(np.unique(study.patients)) < len(study.patients)


def aided_reading_order(treatments: list[str]) -> tuple[int, int] | None:
    """Indices of the ``unaided`` and ``aided`` treatments when those are the study's two (any case), else None."""
    names = [t.lower() for t in treatments]
    if sorted(names) != sorted(aided_reading.MODALITIES):
        return None
    return names.index(aided_reading.UNAIDED), names.index(aided_reading.AIDED)


def analyze_reader_study(
    study: RatingTable,
    metric: str = "auc",
    threshold: float | None = None,
    covariance: str = "jackknife",
    model_reader: str | None = None,
    patient_level: bool | None = None,
    n_bootstrap: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ReaderStudyAnalysis:
    """Obuchowski-Rockette analysis of a reader study, plus model versus readers.

    ``patient_level`` (default: on when some patient has several cases)
    makes the jackknife leave out, and the bootstrap resample, whole
    patients. With ``model_reader`` (a single-treatment study in which the
    model is one of the readers) the OR analysis covers the human readers
    and ``model_vs_readers`` compares them with the model (see
    ``mrmc.model_vs_readers``). When the two treatments are ``unaided`` and
    ``aided``, ``aided`` holds :func:`aided_reading.analyze_aided_reading`
    of the same readers and cases (the AUC always; sensitivity, specificity
    and call changes when the study has calls).
    """
    if patient_level is None:
        patient_level = has_multi_lesion_patients(study)
    if patient_level and study.patients is None:
        raise ReaderStudyDataError(
            "patient-level analysis needs a 'patient' column", column="patient"
        )
    clusters = study.patients if patient_level else None
    options: dict[str, Any] = dict(
        metric=metric,
        threshold=threshold,
        covariance=covariance,
        clusters=clusters,
        n_bootstrap=n_bootstrap,
        seed=seed,
        confidence=confidence,
    )
    readers = list(study.readers)
    comparison = None
    if model_reader is not None:
        if model_reader not in readers:
            raise ReaderStudyDataError(
                f"model reader '{model_reader}' is not among the readers ({', '.join(readers)})",
                column="reader",
            )
        if len(study.treatments) != 1:
            raise ReaderStudyDataError(
                "a model-versus-readers analysis needs a single-treatment study "
                f"(found treatments {', '.join(study.treatments)})",
                column="treatment",
            )
        model_index = readers.index(model_reader)
        readers.remove(model_reader)
        human = np.delete(study.ratings[0], model_index, axis=0)
        comparison = mrmc.model_vs_readers(
            human, study.ratings[0, model_index], study.truth, **options
        )
        ratings = human[None]
    else:
        ratings = study.ratings
    if len(readers) < 2:
        raise ReaderStudyDataError(
            "an MRMC analysis needs at least two (human) readers", column="reader"
        )
    result = mrmc.or_mrmc(ratings, study.truth, **options)
    aided = None
    order = aided_reading_order(study.treatments)
    if order is not None:
        aided = aided_reading.analyze_aided_reading(
            study.ratings[list(order)],
            study.truth,
            None if study.calls is None else study.calls[list(order)],
            readers,
            clusters,
            covariance,
            n_bootstrap,
            seed,
            confidence,
        )
    return ReaderStudyAnalysis(
        study,
        str(mrmc.Metric(metric)),
        threshold,
        str(mrmc.CovarianceMethod(covariance)),
        bool(patient_level),
        readers,
        result,
        model_reader,
        comparison,
        confidence,
        aided,
    )


# --- JSON form ---------------------------------------------------------------


def _number(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _or_test_as_dict(test: mrmc.OrTest | None, treatments: list[str]):
    """``difference``/``ci_*`` are numbers for two treatments and lists in
    ``comparisons`` order for more; ``comparisons`` always lists per-pair objects."""
    if test is None:
        return None
    comparisons = [
        {
            "treatment_a": treatments[d.first],
            "treatment_b": treatments[d.second],
            "difference": _number(d.difference),
            "ci_low": _number(d.ci_low),
            "ci_high": _number(d.ci_high),
        }
        for d in test.differences
    ]
    pick = (
        (lambda key: comparisons[0][key])
        if len(comparisons) == 1
        else (lambda key: [c[key] for c in comparisons])
    )
    return {
        "statistic": _number(test.statistic),
        "ndf": test.ndf,
        "ddf": _number(test.ddf),
        "p": _number(test.p_value),
        "difference": pick("difference"),
        "ci_low": pick("ci_low"),
        "ci_high": pick("ci_high"),
        "comparisons": comparisons,
    }


def _difference_test_as_dict(test: mrmc.DifferenceTest) -> dict:
    return {
        "mean_difference": _number(test.mean_difference),
        "se": _number(test.se),
        "statistic": _number(test.statistic),
        "df": _number(test.df),
        "p": _number(test.p_value),
        "ci_low": _number(test.ci_low),
        "ci_high": _number(test.ci_high),
    }


def _analysis_as_dict(analysis: ReaderStudyAnalysis) -> dict:
    study, result = analysis.study, analysis.or_result
    treatments = study.treatments
    all_metrics = mrmc.reader_metrics(
        study.ratings, study.truth, analysis.metric, analysis.threshold
    )
    reader_metric = {
        reader: {treatment: _number(all_metrics[t, r]) for t, treatment in enumerate(treatments)}
        for r, reader in enumerate(study.readers)
    }
    payload = {
        "metric": analysis.metric,
        "threshold": analysis.threshold,
        "confidence": analysis.confidence,
        "covariance": analysis.covariance_method,
        "patient_level": analysis.patient_level,
        "n_cases": len(study.cases),
        "n_positive": int(study.truth.sum()),
        "readers_analyzed": analysis.readers_analyzed,
        "reader_metric": reader_metric,
        "treatment_metric": {
            treatments[e.treatment]: {
                "estimate": _number(e.estimate),
                "se": _number(e.se),
                "df": _number(e.df),
                "ci_low": _number(e.ci_low),
                "ci_high": _number(e.ci_high),
            }
            for e in result.treatment_estimates
        },
        "rrrc": _or_test_as_dict(result.random_readers_random_cases, treatments),
        "frrc": _or_test_as_dict(result.fixed_readers_random_cases, treatments),
        "rrfc": _or_test_as_dict(result.random_readers_fixed_cases, treatments),
    }
    if analysis.model_vs_readers is not None:
        comparison = analysis.model_vs_readers
        payload["model_vs_readers"] = {
            "model_reader": analysis.model_reader,
            "model_metric": _number(comparison.model_metric),
            "mean_reader_metric": _number(comparison.mean_reader_metric),
            "rrrc": _difference_test_as_dict(comparison.random_readers_random_cases),
            "frrc": _difference_test_as_dict(comparison.fixed_readers_random_cases),
            "rrfc": _difference_test_as_dict(comparison.random_readers_fixed_cases),
        }
    if analysis.aided is not None:
        payload["aided_vs_unaided"] = aided_vs_unaided_as_dict(analysis.aided)
    return payload


# --- text report ---------------------------------------------------------------


def _fmt(value, digits=3):
    return (
        "n/a"
        if value is None or not math.isfinite(value)
        else f"{value:.{digits}f}".replace("-", "−")
    )


def _percent(confidence):
    return f"{100 * confidence:g} %"


def _p(value):
    return (
        "n/a"
        if value is None or not math.isfinite(value)
        else ("< 0.001" if value < 0.001 else f"= {value:.3f}")
    )


def model_vs_readers_sentence(analysis: ReaderStudyAnalysis) -> str:
    """One sentence: readers' mean, model, difference (readers − model), CI, p."""
    comparison = analysis.model_vs_readers
    if comparison is None:
        raise ValueError("the analysis has no model versus readers (no model_reader was given)")
    test = comparison.random_readers_random_cases
    name = analysis.metric if analysis.metric != "auc" else "AUC"
    return (
        f"Readers' mean {name} {_fmt(comparison.mean_reader_metric, 2)}, model {_fmt(comparison.model_metric, 2)}, "
        f"difference (readers − model) {_fmt(test.mean_difference, 2)}, "
        f"{_percent(analysis.confidence)} CI {_fmt(test.ci_low, 2)} to {_fmt(test.ci_high, 2)}, "
        f"p {_p(test.p_value)}, random readers and cases."
    )


def aided_vs_unaided_sentence(
    comparison: aided_reading.ModalityComparison, confidence: float = 0.95
) -> str:
    """One sentence: readers' mean unaided and aided, difference (aided − unaided), CI, p, random readers and cases.

    "rose", "fell" or "was unchanged" follows the difference as printed (two decimals).
    """
    test = comparison.random_readers_random_cases
    name = comparison.metric if comparison.metric != "auc" else "AUC"
    shown = round(test.difference, 2) + 0.0  # + 0.0: no "−0.00"
    unaided, aided = _fmt(comparison.unaided, 2), _fmt(comparison.aided, 2)
    if shown > 0:
        change = f"rose from {unaided} unaided to {aided} aided"
    elif shown < 0:
        change = f"fell from {unaided} unaided to {aided} aided"
    else:
        change = f"was unchanged ({unaided} unaided, {aided} aided)"
    return (
        f"Readers' mean {name} {change}, difference {_fmt(shown, 2)}, "
        f"{_percent(confidence)} CI {_fmt(test.ci_low, 2)} to {_fmt(test.ci_high, 2)}, "
        f"p {_p(test.p_value)}, random readers and cases."
    )


def aided_vs_unaided_as_dict(aided: aided_reading.AidedReadingAnalysis) -> dict:
    """The JSON form of an aided-reading analysis with each metric's sentence under ``sentence``."""
    payload = aided.as_dict()
    for comparison in aided.comparisons():
        payload[comparison.metric]["sentence"] = aided_vs_unaided_sentence(
            comparison, aided.confidence
        )
    return payload


def _aided_report_lines(aided: aided_reading.AidedReadingAnalysis) -> list[str]:
    ci = _percent(aided.confidence)
    lines = [
        "",
        "Aided versus unaided (differences aided − unaided; per reader: fixed reader, random cases):",
    ]
    labels = {
        "random_readers_random_cases": "Random readers, random cases",
        "fixed_readers_random_cases": "Fixed readers, random cases",
        "random_readers_fixed_cases": "Random readers, fixed cases",
    }
    for comparison in aided.comparisons():
        name = comparison.metric if comparison.metric != "auc" else "AUC"
        at_calls = " at the readers' own calls" if comparison.metric != "auc" else ""
        lines.append(
            f"  {name}{at_calls}: {_fmt(comparison.unaided, 4)} unaided, {_fmt(comparison.aided, 4)} aided"
        )
        for d in comparison.readers:
            lines.append(
                f"    {d.reader[:14].ljust(14)} {_fmt(d.unaided, 4)} → {_fmt(d.aided, 4)}, difference "
                f"{_fmt(d.difference, 4)}, {ci} CI {_fmt(d.ci_low, 4)} to {_fmt(d.ci_high, 4)}, p {_p(d.p_value)}"
            )
        for key, label in labels.items():
            test = getattr(comparison, key)
            statistic = (
                f"X² = {_fmt(test.statistic, 4)}, df {test.ndf}"
                if test.ddf is None
                else (f"F = {_fmt(test.statistic, 4)}, df ({test.ndf}, {_fmt(test.ddf, 2)})")
            )
            lines.append(
                f"    {label}: difference {_fmt(test.difference, 4)}, {ci} CI {_fmt(test.ci_low, 4)} to "
                f"{_fmt(test.ci_high, 4)}, {statistic}, p {_p(test.p_value)}"
            )
    if aided.call_changes is None:
        lines.append(
            "  Sensitivity, specificity and call changes need the readers' binary calls (a 'call' column)."
        )
    else:
        columns = ("unchanged", "benign→malignant", "malignant→benign", "corrected", "newly wrong")
        header = "    " + "reader".ljust(14) + "".join(c.rjust(18) for c in columns)
        lines += ["  Calls after seeing the model:", header]
        rows = [*aided.call_changes.per_reader.items(), ("all readers", aided.call_changes.pooled)]
        for reader, counts in rows:
            values = (
                counts.unchanged,
                counts.benign_to_malignant,
                counts.malignant_to_benign,
                counts.corrected,
                counts.newly_wrong,
            )
            lines.append(
                "    "
                + reader[:14].ljust(14)
                + "".join(f"{v} / {counts.reads}".rjust(18) for v in values)
            )
    lines.append("")
    lines += [aided_vs_unaided_sentence(c, aided.confidence) for c in aided.comparisons()]
    return lines


def format_report(analysis: ReaderStudyAnalysis) -> str:
    """Readable text report: per-reader table, treatment means, OR tests, model result."""
    study, result = analysis.study, analysis.or_result
    payload = analysis.as_dict()
    name = analysis.metric if analysis.metric != "auc" else "AUC"
    ci = _percent(analysis.confidence)
    lines = [
        f"Reader study: {len(study.readers)} readers, {len(study.treatments)} treatment(s), "
        f"{len(study.cases)} cases ({payload['n_positive']} positive)",
        f"Metric: {name}"
        + (
            f" (rating >= {analysis.threshold} is positive)"
            if analysis.threshold is not None
            else ""
        )
        + f"; covariance: {analysis.covariance_method}"
        + ("; cases grouped by patient" if analysis.patient_level else ""),
        "",
        "reader".ljust(16) + "".join(t.rjust(12) for t in study.treatments),
    ]
    for reader, values in payload["reader_metric"].items():
        label = reader + (
            f" ({study.reader_types[reader]})" if reader in study.reader_types else ""
        )
        lines.append(
            label[:16].ljust(16) + "".join(_fmt(values[t], 4).rjust(12) for t in study.treatments)
        )
    lines += ["", "Treatment means (random readers and cases):"]
    for treatment, e in payload["treatment_metric"].items():
        lines.append(
            f"  {treatment}: {_fmt(e['estimate'], 4)}  {ci} CI {_fmt(e['ci_low'], 4)} "
            f"to {_fmt(e['ci_high'], 4)}  (df {_fmt(e['df'], 2)})"
        )
    labels = {
        "rrrc": "Random readers, random cases",
        "frrc": "Fixed readers, random cases",
        "rrfc": "Random readers, fixed cases",
    }
    if result.random_readers_random_cases is not None:
        lines.append("")
        for key, label in labels.items():
            test = payload[key]
            statistic = (
                f"X² = {_fmt(test['statistic'], 4)}, df {test['ndf']}"
                if test["ddf"] is None
                else (
                    f"F = {_fmt(test['statistic'], 4)}, df ({test['ndf']}, {_fmt(test['ddf'], 2)})"
                )
            )
            lines.append(f"{label}: {statistic}, p {_p(test['p'])}")
            for c in test["comparisons"]:
                lines.append(
                    f"  {c['treatment_a']} − {c['treatment_b']}: {_fmt(c['difference'], 4)}  "
                    f"{ci} CI {_fmt(c['ci_low'], 4)} to {_fmt(c['ci_high'], 4)}"
                )
    if analysis.model_vs_readers is not None:
        lines += ["", f"Model ({analysis.model_reader}) versus readers:"]
        for key, label in labels.items():
            test = payload["model_vs_readers"][key]
            statistic = "z" if test["df"] is None else f"t({_fmt(test['df'], 2)})"
            lines.append(
                f"  {label}: difference {_fmt(test['mean_difference'], 4)}, {ci} CI {_fmt(test['ci_low'], 4)} "
                f"to {_fmt(test['ci_high'], 4)}, {statistic} = {_fmt(test['statistic'], 3)}, p {_p(test['p'])}"
            )
        lines += ["", model_vs_readers_sentence(analysis)]
    if analysis.aided is not None:
        lines += _aided_report_lines(analysis.aided)
    return "\n".join(lines)
