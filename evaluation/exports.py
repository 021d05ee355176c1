"""Exports of a reader-study comparison: joined CSV, long CSV, iMRMC input, JSON.

Each takes :class:`evaluation.inputs.ComparisonInputs` (what entered the analysis) and returns
text; the views add the HTTP headers. ``imrmc_modalities_text`` is the pure
iMRMC writer for an aided-versus-unaided study (plain arrays, no database). Simulated calls are marked in every export.
No CSV cell is one a spreadsheet would run as a formula (:mod:`archive.spreadsheets`).
"""

import io
import json
import re

import numpy as np

from archive.spreadsheets import FormulaSafeWriter
from archive.vocabulary import SESSIONS

LONG_COLUMNS = ["reader", "reader_type", "simulated", "case", "patient", "truth", "rating"]


def _yes_no(value):
    return "" if value is None else ("yes" if value else "no")


def joined_csv(inputs) -> str:
    """One row per lesion x reader, with the lesion's pathology and every model's held-out score.

    Readers are every reader with a call in the selected call set or assigned to
    the reader study; a reader without a call on a lesion gets an empty call.
    ``In analysis`` says whether the row's lesion and reader entered the statistics.
    """
    buffer = io.StringIO()
    writer = FormulaSafeWriter(buffer)
    model_columns = []
    for model in inputs.models:
        model_columns += [f"{model.label} {model.scores_source} score", f"{model.label} fold"]
    writer.writerow(
        [
            "Reader study",
            "Lesion ID",
            "Patient",
            "Lesion",
            "Age (years)",
            "Sex",
            "Long axis (mm)",
            "Size group",
            "Pathology subtype",
            "Malignant (pathology)",
            "Pathology revision",
            "Reader",
            "Reader call",
            "Reader probability of malignancy (%)",
            "Call locked at",
            "Call blinded",
            "Simulated call",
            "In analysis",
            *model_columns,
        ]
    )
    analysed_lesions = {l.pk for l in inputs.analysed_lesions}
    analysed_readers = {r.pk for r in inputs.analysed_readers}
    subtype_label = _subtype_labels()
    for lesion in inputs.lesions:
        model_values = []
        for model in inputs.models:
            score, fold = inputs.scores.get((model.pk, lesion.pk), (None, None))
            model_values += ["" if score is None else f"{score:.6g}", "" if fold is None else fold]
        for reader in inputs.readers:
            call = inputs.calls.get((reader.pk, lesion.pk))
            writer.writerow(
                [
                    inputs.reader_study.name,
                    lesion.pk,
                    lesion.patient_id,
                    lesion.label,
                    "" if lesion.age_years is None else lesion.age_years,
                    lesion.sex,
                    "" if lesion.long_axis_mm is None else f"{lesion.long_axis_mm:g}",
                    lesion.size_group,
                    subtype_label.get(lesion.subtype, lesion.subtype or ""),
                    _yes_no(lesion.malignant),
                    lesion.pathology_revision or "",
                    reader.label,
                    "" if call is None else ("malignant" if call.malignant else "benign"),
                    "" if call is None else call.probability,
                    "" if call is None or call.locked_at is None else call.locked_at.isoformat(),
                    "" if call is None else _yes_no(call.blinded),
                    "" if call is None else ("simulated" if call.simulated else "no"),
                    _yes_no(lesion.pk in analysed_lesions and reader.pk in analysed_readers),
                    *model_values,
                ]
            )
    return buffer.getvalue()


def _subtype_labels():
    from annotations.models import Subtype

    return dict(Subtype.choices)


def long_csv(inputs, model_key: str | None = None) -> str:
    """The analysed ratings in the long format of ``manage.py analyze_reader_study``.

    Columns ``reader, reader_type, simulated, case, patient, truth, rating``: one
    row per analysed reader (rating = probability 0–100) and lesion, plus, when
    ``model_key`` (e.g. ``model:CM``) names an analysed model, one row per lesion
    with that model as reader ``model:CM`` (rating = held-out score). Then
    ``python manage.py analyze_reader_study FILE --model-reader model:CM`` gives
    the page's MRMC result.
    """
    buffer = io.StringIO()
    writer = FormulaSafeWriter(buffer)
    writer.writerow(LONG_COLUMNS)
    for reader in inputs.analysed_readers:
        for lesion in inputs.analysed_lesions:
            call = inputs.calls[(reader.pk, lesion.pk)]
            writer.writerow(
                [
                    reader.label,
                    "radiologist",
                    "simulated" if call.simulated else "no",
                    lesion.pk,
                    lesion.patient_pk,
                    int(lesion.malignant),
                    call.probability,
                ]
            )
    for model in inputs.analysed_models:
        if model.key != model_key:
            continue
        for lesion in inputs.analysed_lesions:
            writer.writerow(
                [
                    model.key,
                    "model",
                    "no",
                    lesion.pk,
                    lesion.patient_pk,
                    int(lesion.malignant),
                    f"{inputs.scores[(model.pk, lesion.pk)][0]:.10g}",
                ]
            )
    return buffer.getvalue()


def _imrmc_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def imrmc_text(inputs) -> str:
    """The analysed ratings as an input file of the FDA's iMRMC program.

    Free-text header with ``NR``, ``N0``, ``N1``, ``NM``; then ``BEGIN DATA:`` and
    rows ``readerID,caseID,modalityID,score``. Truth rows have readerID -1 and
    score 0 (benign) or 1 (malignant). Case IDs are the portal's lesion ids. The
    readers form modality ``readers``; each model is its own modality read by one
    reader (iMRMC's one-versus-many design). A simulated reader's ID ends in
    ``-simulated``.
    """
    lesions, readers, models = (
        inputs.analysed_lesions,
        inputs.analysed_readers,
        inputs.analysed_models,
    )
    reader_ids = {r.pk: _imrmc_reader_id(r.label, r.simulated) for r in readers}
    description = [
        f"Reader study {_imrmc_id(inputs.reader_study.name)} (portal id {inputs.reader_study.pk}) exported for iMRMC",
        f"Input revision {inputs.revision}",
        "Readers rate the probability of malignancy 0-100; models give held-out scores 0-1 (out-of-fold, "
        "or from a model that never trained on the patient)",
        "Truth: 1 = malignant (pathology), 0 = benign",
    ]
    rows = []
    for reader in readers:
        for lesion in lesions:
            rows.append(
                (
                    reader_ids[reader.pk],
                    lesion.pk,
                    "readers",
                    inputs.calls[(reader.pk, lesion.pk)].probability,
                )
            )
    for model in models:
        model_id = _imrmc_id(model.key.replace(":", "_"))
        for lesion in lesions:
            rows.append(
                (model_id, lesion.pk, model_id, f"{inputs.scores[(model.pk, lesion.pk)][0]:.10g}")
            )
    return _imrmc_document(
        description,
        [(lesion.pk, int(lesion.malignant)) for lesion in lesions],
        rows,
        n_readers=len(readers) + len(models),
        n_modalities=(1 if readers else 0) + len(models),
    )


def imrmc_aided_text(inputs) -> str:
    """iMRMC input of a sequential reader study: the readers' unaided and aided ratings as two modalities.

    Readers are those with an unaided and an aided call on every analysed lesion
    (``inputs.aided_readers``); case IDs are lesion ids; the frozen model version is named
    in the description. Written by :func:`imrmc_modalities_text`.
    """
    lesions, readers = inputs.analysed_lesions, inputs.aided_readers
    ratings, _ = inputs.aided_arrays()
    frozen = inputs.frozen_model["name"] if inputs.frozen_model else "none frozen"
    description = [
        f"Reader study {_imrmc_id(inputs.reader_study.name)} (portal id {inputs.reader_study.pk}) exported for iMRMC",
        f"Input revision {inputs.revision}",
        "Sequential aided reading: modality unaided (the reader's locked call without the model), "
        "aided (after seeing the model's output); readers rate the probability of malignancy 0-100",
        f"Model shown in the aided session: {frozen}",
        "Truth: 1 = malignant (pathology), 0 = benign",
    ]
    return imrmc_modalities_text(
        [r.label for r in readers],
        [l.pk for l in lesions],
        [int(l.malignant) for l in lesions],
        ratings,
        simulated_readers=[r.label for r in readers if r.simulated],
        description=description,
    )


def _imrmc_reader_id(label: str, simulated: bool) -> str:
    return _imrmc_id(label) + ("-simulated" if simulated else "")


def _imrmc_document(description, truth, rows, n_readers: int, n_modalities: int) -> str:
    """iMRMC input text: free-text ``description`` lines, the ``NR/N0/N1/NM`` header, then
    ``BEGIN DATA:``, one truth row ``-1,case,0,truth`` per ``(case, truth)`` and the rating
    ``rows`` ``(reader, case, modality, score)`` as given."""
    negatives = sum(1 for _, malignant in truth if not malignant)
    lines = [
        *description,
        "",
        f"NR: {n_readers}",
        f"N0: {negatives}",
        f"N1: {len(truth) - negatives}",
        f"NM: {n_modalities}",
        "",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{case},0,{malignant}" for case, malignant in truth]
    lines += [f"{reader},{case},{modality},{score}" for reader, case, modality, score in rows]
    return "\n".join(lines) + "\n"


def imrmc_modalities_text(
    readers,
    cases,
    truth,
    ratings,
    modalities=SESSIONS,
    simulated_readers=(),
    description=(),
) -> str:
    """iMRMC input for a fully crossed study: every reader reads every case in every modality.

    ``ratings[modality, reader, case]`` (for aided reading: index 0
    ``unaided``, 1 ``aided``), ``truth`` 0/1 per case, ``readers`` and
    ``cases`` the names (case names are the iMRMC case IDs, e.g. lesion
    ids). Reader, case and modality IDs are reduced to letters, digits and
    ``_.+-`` (names that then clash are refused); a reader in ``simulated_readers`` gets ``-simulated``, as in
    :func:`imrmc_text`. ``description`` lines go above the header. Scores are
    written with 10 significant digits.
    """
    ratings = np.asarray(ratings, dtype=float)
    truth = np.asarray(truth)
    shape = (len(modalities), len(readers), len(cases))
    if ratings.shape != shape:
        raise ValueError(
            f"ratings have shape {ratings.shape}; expected [modality, reader, case] = {shape}"
        )
    if truth.shape != (len(cases),) or not np.all(np.isin(truth, (0, 1))):
        raise ValueError(
            f"truth must be 0 (benign) or 1 (malignant) for each of the {len(cases)} cases"
        )
    if np.isnan(ratings).any():
        raise ValueError(
            "ratings contain NaN (every reader must rate every case in every modality)"
        )
    modality_ids = [_imrmc_id(str(m)) for m in modalities]
    case_ids = [_imrmc_id(str(c)) for c in cases]
    simulated = {str(r) for r in simulated_readers}
    reader_ids = [_imrmc_reader_id(str(r), str(r) in simulated) for r in readers]
    for kind, ids in (("reader", reader_ids), ("modality", modality_ids), ("case", case_ids)):
        if len(set(ids)) != len(ids):
            raise ValueError(f"two {kind} names give the same iMRMC ID ({', '.join(ids)})")
    rows = [
        (reader_ids[j], case_ids[k], modality_ids[m], f"{ratings[m, j, k]:.10g}")
        for m in range(len(modalities))
        for j in range(len(readers))
        for k in range(len(cases))
    ]
    return _imrmc_document(
        list(description),
        [(case, int(t)) for case, t in zip(case_ids, truth)],
        rows,
        n_readers=len(readers),
        n_modalities=len(modalities),
    )


def parse_imrmc(text: str) -> dict:
    """Read an iMRMC input file back: header values, truth and ratings.

    Returns ``{"header": {"NR": ..}, "truth": {case: 0/1}, "ratings":
    {(reader, case, modality): score}}``. Used by the tests and for checking files.
    """
    header, truth, ratings, in_data = {}, {}, {}, False
    for line in text.splitlines():
        line = line.strip()
        if not in_data:
            if line == "BEGIN DATA:":
                in_data = True
            elif ":" in line:
                key, _, value = line.partition(":")
                if key.strip() in {"NR", "N0", "N1", "NM"}:
                    header[key.strip()] = int(value)
            continue
        if not line:
            continue
        reader, case, modality, score = (part.strip() for part in line.split(","))
        if reader == "-1":
            truth[case] = int(float(score))
        else:
            ratings[(reader, case, modality)] = float(score)
    return {"header": header, "truth": truth, "ratings": ratings}


def analysis_json(row, inputs) -> str:
    """The cached analysis with what entered it (revision, options, left-out readers/models)."""
    return json.dumps(
        {
            **row.result,
            "computed_at": row.finished_at.isoformat() if row.finished_at else None,
            "compute_seconds": row.compute_seconds,
        },
        indent=1,
        ensure_ascii=False,
    )
