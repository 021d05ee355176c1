"""Aided versus unaided reading: OR-MRMC with the two modalities, per-reader differences, call changes."""

import json
from io import StringIO
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from evaluation.stats import mrmc
from evaluation.stats.aided_reading import analyze_aided_reading, call_changes
from evaluation.stats.reader_study import (
    ReaderStudyDataError,
    aided_vs_unaided_sentence,
    analyze_reader_study,
    format_report,
    load_reader_study,
)
from tests.factories.ratings import wide_ratings


@pytest.fixture(scope="module")
def van_dyke(reference_dir):
    return wide_ratings(pd.read_csv(reference_dir / "vandyke.csv"))


def _van_dyke_csv(reference_dir, tmp_path, with_call=True, names=("unaided", "aided")):
    """Van Dyke with treatment 1 named unaided and 2 aided; the call is rating >= 4 (probably/definitely)."""
    frame = pd.read_csv(reference_dir / "vandyke.csv")
    frame["treatment"] = frame.treatment.map({1: names[0], 2: names[1]})
    if with_call:
        frame["call"] = np.where(frame.rating >= 4, "malignant", "benign")
    path = tmp_path / "aided.csv"
    frame.to_csv(path, index=False)
    return path


# --- OR-MRMC with the two modalities as treatments -----------------------------------------------


def test_franken_read_as_unaided_then_aided_reproduces_the_published_or_dbm_mrmc_figures(
    reference_dir,
):
    # OR-DBM MRMC 2.51 on Franken (treatment 1 minus treatment 2): F 4.69, ddf 3.00, p 0.1188,
    # CI -0.00509 to 0.02680, X² 0.32101 (p 0.5710). With treatment 2 unaided and 1 aided,
    # aided - unaided is that same difference.
    ratings, truth = wide_ratings(pd.read_csv(reference_dir / "franken.csv"))
    auc = analyze_aided_reading(ratings[::-1], truth).auc
    assert auc.unaided == pytest.approx(0.83689507, abs=5e-9)
    assert auc.aided == pytest.approx(0.84774989, abs=5e-9)
    assert auc.difference == pytest.approx(0.84774989 - 0.83689507, abs=1e-8)
    rrrc = auc.random_readers_random_cases
    assert rrrc.statistic == pytest.approx(4.69, abs=0.005)
    assert rrrc.ddf == pytest.approx(3.00, abs=0.005)
    assert rrrc.p_value == pytest.approx(0.1188, abs=0.00005)
    assert rrrc.ci_low == pytest.approx(-0.00509, abs=0.000005)
    assert rrrc.ci_high == pytest.approx(0.02680, abs=0.000005)
    frrc = auc.fixed_readers_random_cases
    assert frrc.statistic == pytest.approx(0.32101, abs=0.000005)
    assert frrc.p_value == pytest.approx(0.5710, abs=0.00005)


def test_van_dyke_read_as_unaided_then_aided_matches_mrmcaov(van_dyke):
    # MRMCaov's documented VanDyke example: F 4.456, df (1, 15.26), p 0.0517; treatment 2 (aided here)
    # has the higher mean AUC, so the difference is positive and the same as or_mrmc's, sign reversed.
    ratings, truth = van_dyke
    analysis = analyze_aided_reading(ratings, truth)
    rrrc = analysis.auc.random_readers_random_cases
    assert rrrc.statistic == pytest.approx(4.456, abs=0.0005)
    assert rrrc.ddf == pytest.approx(15.26, abs=0.005)
    assert rrrc.p_value == pytest.approx(0.0517, abs=0.00005)
    reference = mrmc.or_mrmc(ratings, truth).random_readers_random_cases.differences[0]
    assert (
        rrrc.difference
        == pytest.approx(-reference.difference)
        == pytest.approx(0.0438, abs=0.00005)
    )
    assert (rrrc.ci_low, rrrc.ci_high) == pytest.approx((-reference.ci_high, -reference.ci_low))


def test_per_reader_differences_use_that_readers_variances_and_covariance(van_dyke):
    ratings, truth = van_dyke
    comparison = analyze_aided_reading(ratings, truth).auc
    cov, r = comparison.or_result.covariance, ratings.shape[1]
    for j, reader in enumerate(comparison.readers):
        assert reader.difference == pytest.approx(reader.aided - reader.unaided)
        assert reader.se**2 == pytest.approx(cov[j, j] + cov[r + j, r + j] - 2 * cov[j, r + j])
        assert reader.ci_high - reader.difference == pytest.approx(1.959964 * reader.se, rel=1e-6)
    assert np.mean([d.difference for d in comparison.readers]) == pytest.approx(
        comparison.difference
    )


def test_sensitivity_and_specificity_at_the_calls_are_mrmc_metrics_with_the_calls_as_ratings(
    van_dyke,
):
    ratings, truth = van_dyke
    calls = (ratings >= 4).astype(int)
    analysis = analyze_aided_reading(ratings, truth, calls=calls)
    expected = mrmc.or_mrmc(calls, truth, metric="sensitivity", threshold=1)
    assert analysis.sensitivity.unaided == pytest.approx(expected.reader_metric[0].mean())
    assert analysis.sensitivity.random_readers_random_cases.p_value == pytest.approx(
        expected.random_readers_random_cases.p_value
    )
    positives = truth == 1
    assert analysis.specificity.readers[0].unaided == pytest.approx(
        (calls[0, 0, ~positives] == 0).mean()
    )
    assert analysis.sensitivity.readers[0].aided == pytest.approx(
        (calls[1, 0, positives] == 1).mean()
    )


def test_no_changed_call_gives_a_zero_difference_and_no_test_rather_than_an_error(van_dyke):
    ratings, truth = van_dyke
    calls = (ratings[:1] >= 4).repeat(2, axis=0)
    analysis = analyze_aided_reading(ratings, truth, calls=calls)
    for comparison in (analysis.sensitivity, analysis.specificity):
        assert comparison.difference == 0
        assert np.isnan(comparison.random_readers_random_cases.p_value)
        assert np.isnan(comparison.fixed_readers_random_cases.statistic)
    assert analysis.call_changes.pooled.unchanged == calls[0].size
    json.dumps(analysis.as_dict())
    assert "was unchanged" in aided_vs_unaided_sentence(analysis.sensitivity)


def test_ratings_and_calls_must_be_two_modalities_over_the_same_reads(van_dyke):
    ratings, truth = van_dyke
    with pytest.raises(ValueError, match=r"\[2 \(unaided, aided\), reader, case\]"):
        analyze_aided_reading(ratings[:1], truth)
    with pytest.raises(ValueError, match="every read needs a call"):
        analyze_aided_reading(ratings, truth, calls=(ratings[:, :2] >= 4))
    with pytest.raises(ValueError, match="only 0 \\(benign\\) and 1 \\(malignant\\)"):
        analyze_aided_reading(ratings, truth, calls=ratings)


# --- call changes ----------------------------------------------------------------------------------


def test_call_changes_count_direction_and_correctness_on_a_hand_made_example():
    truth = [1, 1, 0, 0]
    calls = [
        [[1, 0, 0, 1], [0, 1, 1, 0]],  # unaided: reader A, reader B
        [[1, 1, 1, 0], [0, 0, 1, 0]],  # aided
    ]
    changes = call_changes(calls, truth, readers=["A", "B"])
    a, b, pooled = changes.per_reader["A"], changes.per_reader["B"], changes.pooled
    # A: stays right on case 1; corrects 2 (b→m) and 4 (m→b); makes 3 wrong (b→m).
    assert (a.reads, a.unchanged, a.benign_to_malignant, a.malignant_to_benign) == (4, 1, 2, 1)
    assert (a.corrected, a.newly_wrong, a.both_right, a.both_wrong) == (2, 1, 1, 0)
    # B: stays wrong on 1 and 3, right on 4; makes 2 wrong (m→b).
    assert (b.reads, b.unchanged, b.benign_to_malignant, b.malignant_to_benign) == (4, 3, 0, 1)
    assert (b.corrected, b.newly_wrong, b.both_right, b.both_wrong) == (0, 1, 1, 2)
    assert (
        pooled.reads,
        pooled.unchanged,
        pooled.benign_to_malignant,
        pooled.malignant_to_benign,
    ) == (8, 4, 2, 2)
    assert (pooled.corrected, pooled.newly_wrong, pooled.both_right, pooled.both_wrong) == (
        2,
        2,
        2,
        2,
    )
    payload = json.loads(json.dumps(changes.as_dict()))
    assert payload["per_reader"]["A"]["changed"] == 3
    assert payload["pooled"]["changed_fraction"] == 0.5


# --- the sentence ------------------------------------------------------------------------------------


def _comparison(unaided, aided, ci_low, ci_high, p, metric="auc"):
    test = SimpleNamespace(difference=aided - unaided, ci_low=ci_low, ci_high=ci_high, p_value=p)
    return SimpleNamespace(
        metric=metric, unaided=unaided, aided=aided, random_readers_random_cases=test
    )


def test_sentence_says_the_auc_rose_with_the_difference_its_interval_and_p():
    assert aided_vs_unaided_sentence(_comparison(0.78, 0.84, 0.01, 0.11, 0.02)) == (
        "Readers' mean AUC rose from 0.78 unaided to 0.84 aided, difference 0.06, "
        "95 % CI 0.01 to 0.11, p = 0.020, random readers and cases."
    )


def test_sentence_says_fell_with_true_minus_signs_and_unchanged_when_the_printed_difference_is_zero():
    assert aided_vs_unaided_sentence(
        _comparison(0.85, 0.81, -0.07, -0.01, 0.0004, "sensitivity"), 0.9
    ) == (
        "Readers' mean sensitivity fell from 0.85 unaided to 0.81 aided, difference −0.04, "
        "90 % CI −0.07 to −0.01, p < 0.001, random readers and cases."
    )
    assert aided_vs_unaided_sentence(_comparison(0.842, 0.839, -0.03, 0.02, 0.8)) == (
        "Readers' mean AUC was unchanged (0.84 unaided, 0.84 aided), difference 0.00, "
        "95 % CI −0.03 to 0.02, p = 0.800, random readers and cases."
    )


# --- the long CSV path -------------------------------------------------------------------------------


def test_long_csv_with_unaided_and_aided_treatments_and_calls_gets_the_aided_report(
    reference_dir, tmp_path
):
    analysis = analyze_reader_study(load_reader_study(_van_dyke_csv(reference_dir, tmp_path)))
    payload = json.loads(json.dumps(analysis.as_dict()))
    aided = payload["aided_vs_unaided"]
    assert aided["auc"]["rrrc"]["difference"] == pytest.approx(0.0438, abs=0.00005)
    assert aided["auc"]["rrrc"]["p"] == pytest.approx(0.0517, abs=0.00005)
    assert aided["auc"]["sentence"].startswith(
        "Readers' mean AUC rose from 0.90 unaided to 0.94 aided, difference 0.04"
    )
    assert set(aided["sensitivity"]["per_reader"]) == {"1", "2", "3", "4", "5"}
    assert aided["call_changes"]["pooled"]["reads"] == 5 * 114
    assert aided["specificity"]["sentence"].endswith("random readers and cases.")
    report = format_report(analysis)
    assert "Aided versus unaided" in report and "benign→malignant" in report
    assert aided["sensitivity"]["sentence"] in report


def test_long_csv_without_a_call_column_gets_the_auc_only(reference_dir, tmp_path):
    analysis = analyze_reader_study(
        load_reader_study(_van_dyke_csv(reference_dir, tmp_path, with_call=False))
    )
    aided = analysis.as_dict()["aided_vs_unaided"]
    assert aided["auc"]["sentence"]
    assert aided["sensitivity"] is None and aided["call_changes"] is None
    assert "need the readers' binary calls" in format_report(analysis)


def test_other_treatment_names_get_no_aided_report(reference_dir, tmp_path):
    path = _van_dyke_csv(reference_dir, tmp_path, names=("SE", "cine"))
    assert "aided_vs_unaided" not in analyze_reader_study(load_reader_study(path)).as_dict()


def test_a_call_that_is_not_malignant_or_benign_is_named_with_its_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("reader,treatment,case,truth,rating,call\nA,unaided,1,1,80,maybe\n")
    with pytest.raises(
        ReaderStudyDataError, match=r"row 2, column 'call': call 'maybe' is not malignant/benign"
    ):
        load_reader_study(path)


def test_analyze_reader_study_command_prints_the_aided_json(reference_dir, tmp_path):
    out = StringIO()
    call_command(
        "analyze_reader_study", str(_van_dyke_csv(reference_dir, tmp_path)), "--json", stdout=out
    )
    aided = json.loads(out.getvalue())["aided_vs_unaided"]
    assert aided["auc"]["frrc"]["ddf"] is None
    assert aided["call_changes"]["per_reader"]["4"]["newly_wrong"] == 0
