"""Long-format loader and the one-call reader-study analysis."""

import json

import numpy as np
import pytest

from evaluation.stats.reader_study import (
    ReaderStudyDataError,
    analyze_reader_study,
    format_report,
    has_multi_lesion_patients,
    load_reader_study,
)


def _write(tmp_path, text, name="study.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _small_study_csv(with_patient=False):
    rng = np.random.default_rng(5)
    lines = ["reader,treatment,case,truth,rating" + (",patient" if with_patient else "")]
    for case in range(1, 21):
        truth = int(case % 2 == 0)
        for reader in ("A", "B", "C"):
            for treatment in ("unaided", "aided"):
                rating = round(truth + rng.normal(), 3)
                patient = f",P{(case + 1) // 2}" if with_patient else ""
                lines.append(f"{reader},{treatment},{case},{truth},{rating}{patient}")
    return "\n".join(lines) + "\n"


def test_franken_csv_loads_into_a_balanced_ratings_array(reference_dir):
    study = load_reader_study(reference_dir / "franken.csv")
    assert study.ratings.shape == (2, 4, 100)
    assert study.truth.sum() == 67
    assert study.readers == ["1", "2", "3", "4"]


def test_table_without_treatment_column_is_a_single_treatment_study(reference_dir):
    study = load_reader_study(reference_dir / "nico_cad_dataset09.csv")
    assert study.ratings.shape == (1, 10, 200)
    assert study.reader_types["1"] == "CAD"


def test_analysis_of_franken_reproduces_the_or_figures_in_json(reference_dir):
    payload = analyze_reader_study(load_reader_study(reference_dir / "franken.csv")).as_dict()
    assert payload["rrrc"]["statistic"] == pytest.approx(4.69, abs=0.005)
    assert payload["rrrc"]["ci_low"] == pytest.approx(-0.00509, abs=0.000005)
    assert payload["frrc"]["ddf"] is None
    assert payload["treatment_metric"]["1"]["estimate"] == pytest.approx(0.84774989, abs=5e-9)
    json.dumps(payload)


def test_more_than_two_treatments_give_per_pair_comparisons(tmp_path):
    text = _small_study_csv().replace(",aided,", ",aided,").splitlines()
    extra = [line.replace(",unaided,", ",third,") for line in text[1:] if ",unaided," in line]
    study = load_reader_study(_write(tmp_path, "\n".join(text + extra) + "\n"))
    payload = analyze_reader_study(study).as_dict()
    assert len(payload["rrrc"]["comparisons"]) == 3
    assert isinstance(payload["rrrc"]["difference"], list) and len(payload["rrrc"]["ci_low"]) == 3


def test_model_vs_readers_sentence_names_readers_minus_model(reference_dir):
    analysis = analyze_reader_study(
        load_reader_study(reference_dir / "nico_cad_dataset09.csv"), model_reader="1"
    )
    report = format_report(analysis)
    assert "Readers' mean AUC 0.85, model 0.82, difference (readers − model) 0.03" in report
    assert analysis.readers_analyzed == [str(r) for r in range(2, 11)]


def test_patient_level_analysis_is_on_by_default_when_a_patient_has_two_lesions(tmp_path):
    study = load_reader_study(_write(tmp_path, _small_study_csv(with_patient=True)))
    assert has_multi_lesion_patients(study)
    by_patient = analyze_reader_study(study)
    by_lesion = analyze_reader_study(study, patient_level=False)
    assert by_patient.patient_level and not by_lesion.patient_level
    assert not np.allclose(by_patient.or_result.covariance, by_lesion.or_result.covariance)


@pytest.mark.parametrize(
    "text, message",
    [
        ("reader,case,truth\n1,1,0\n", "column 'rating': required column is missing"),
        (
            "reader,case,truth,rating\n1,1,0,high\n",
            "row 2, column 'rating': rating 'high' is not a number",
        ),
        (
            "reader,case,truth,rating\n1,1,0,1\n1,2,2,3\n",
            "row 3, column 'truth': truth '2' is not 0",
        ),
        (
            "reader,case,truth,rating\n1,1,0,1\n1,2,1,3\n2,1,0,2\n",
            "unbalanced design: reader 2 has no rating for case 2",
        ),
        (
            "reader,case,truth,rating\n1,1,0,1\n1,1,0,3\n",
            "row 3, column 'case': reader 1 rated case 1 in treatment 1 twice",
        ),
        (
            "reader,case,truth,rating\n1,1,0,1\n2,1,1,3\n",
            "row 3, column 'truth': case 1 has truth 1 here but 0",
        ),
    ],
)
def test_bad_input_is_rejected_with_file_row_and_column(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ReaderStudyDataError) as caught:
        load_reader_study(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_unknown_model_reader_is_rejected(reference_dir):
    study = load_reader_study(reference_dir / "nico_cad_dataset09.csv")
    with pytest.raises(ReaderStudyDataError, match="model reader 'CAD' is not among the readers"):
        analyze_reader_study(study, model_reader="CAD")
