"""The analyze_reader_study management command (no database needed)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def _run(*args):
    out = StringIO()
    call_command("analyze_reader_study", *map(str, args), stdout=out)
    return out.getvalue()


def test_command_prints_json_with_or_results_for_franken(reference_dir):
    payload = json.loads(_run(reference_dir / "franken.csv", "--json"))
    assert payload["rrrc"]["ddf"] == pytest.approx(3.0, abs=0.005)
    assert payload["frrc"]["statistic"] == pytest.approx(0.32101, abs=0.000005)
    assert payload["rrfc"]["ddf"] == 3
    assert set(payload["reader_metric"]) == {"1", "2", "3", "4"}
    assert set(payload["treatment_metric"]["2"]) == {"estimate", "se", "df", "ci_low", "ci_high"}


def test_command_with_model_reader_reports_readers_minus_model(reference_dir):
    payload = json.loads(
        _run(reference_dir / "nico_cad_dataset09.csv", "--model-reader", "1", "--json")
    )
    comparison = payload["model_vs_readers"]
    assert comparison["rrrc"]["mean_difference"] == pytest.approx(0.84866 - 0.81693, abs=1e-5)
    for analysis in ("rrrc", "rrfc"):
        assert set(comparison[analysis]) >= {
            "mean_difference",
            "statistic",
            "df",
            "p",
            "ci_low",
            "ci_high",
        }
    assert payload["rrrc"] is None


def test_command_text_report_has_reader_table_and_or_lines(reference_dir):
    report = _run(reference_dir / "franken.csv")
    assert "Random readers, random cases: F = 4.6941, df (1, 3.00), p = 0.119" in report
    assert "Fixed readers, random cases: X² = 0.3210" in report


def test_command_sensitivity_needs_threshold(reference_dir):
    with pytest.raises(CommandError, match="needs --threshold"):
        _run(reference_dir / "franken.csv", "--metric", "sensitivity")
    payload = json.loads(
        _run(reference_dir / "franken.csv", "--metric", "sensitivity", "--threshold", "3", "--json")
    )
    assert payload["metric"] == "sensitivity"


def test_command_turns_bad_rows_into_command_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("reader,case,truth,rating\n1,1,0,x\n")
    with pytest.raises(CommandError, match=r"bad.csv, row 2, column 'rating'"):
        _run(path)


def test_command_rejects_unknown_model_reader_and_delong_for_sensitivity(reference_dir):
    with pytest.raises(CommandError, match="model reader '99'"):
        _run(reference_dir / "nico_cad_dataset09.csv", "--model-reader", "99")
    with pytest.raises(CommandError, match="AUC only"):
        _run(
            reference_dir / "franken.csv",
            "--metric",
            "sensitivity",
            "--threshold",
            "3",
            "--cov",
            "delong",
        )
