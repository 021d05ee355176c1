"""The plan_reader_study management command (no database needed)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def _run(*args):
    out = StringIO()
    call_command("plan_reader_study", *map(str, args), stdout=out)
    return out.getvalue()


def test_command_json_reproduces_rjafroc_franken_sample_size(reference_dir):
    # SsSampleSizeKGivenJ(dataset03, FOM = "Wilcoxon", effectSize = 0.05, J = 6, method = "OR"):
    # powerRRRC 0.8004469 at K = 121 (see test_sample_size).
    payload = json.loads(
        _run(reference_dir / "franken.csv", "--effect", "0.05", "--readers", "4", "6", "--json")
    )
    rrrc = payload["analyses"]["rrrc"]
    six = next(row for row in rrrc["cases_needed"] if row["readers"] == 6)
    assert six["cases"] == 121 and six["power"] == pytest.approx(0.8004469, abs=5e-8)
    assert set(payload["analyses"]) == {"rrrc", "frrc", "rrfc"}
    assert payload["pilot"]["n_cases"] == 100 and payload["pilot"]["treatments"] == ["1", "2"]
    assert len(rrrc["power"]) == 2 and len(rrrc["power"][0]) == len(rrrc["cases"])


def test_command_text_prints_power_table_and_cases_per_reader_count(reference_dir):
    report = _run(
        reference_dir / "vandyke.csv",
        "--effect",
        "0.05",
        "--readers",
        "3",
        "10",
        "--cases",
        "100",
        "200",
    )
    assert "Random readers, random cases (RRRC): power" in report
    assert "Fixed readers, random cases (FRRC): power" in report
    assert "Random readers, fixed cases (RRFC): power" in report
    assert "3 readers: not reachable (power at most 0.618 with unlimited cases)" in report
    assert "10 readers: 119 cases (power 0.802)" in report


def test_command_names_a_missing_column(tmp_path):
    path = tmp_path / "pilot.csv"
    path.write_text("reader,treatment,case,rating\n1,1,1,3\n")
    with pytest.raises(
        CommandError, match=r"pilot.csv, column 'truth': required column is missing"
    ):
        _run(path, "--effect", "0.05")


def test_command_refuses_a_single_treatment_pilot(reference_dir):
    with pytest.raises(
        CommandError, match=r"compares two treatments .* only treatment 1 \(column 'treatment'\)"
    ):
        _run(reference_dir / "nico_cad_dataset09.csv", "--effect", "0.05")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--effect", "0"], "--effect must be a positive AUC difference"),
        (["--effect", "-0.05"], "--effect must be a positive AUC difference"),
        (
            ["--effect", "0.05", "--power", "1"],
            r"--power must lie strictly between 0 and 1 \(got 1.0\)",
        ),
        (["--effect", "0.05", "--power", "0"], "--power must lie strictly between 0 and 1"),
        (["--effect", "0.05", "--alpha", "1.5"], "--alpha must lie strictly between 0 and 1"),
        (["--effect", "0.05", "--readers", "1", "5"], "at least 2 readers"),
        (
            ["--effect", "0.05", "--treatments", "1", "3"],
            "--treatments must name two different treatments",
        ),
    ],
)
def test_command_refuses_bad_options_with_a_clear_message(reference_dir, args, message):
    with pytest.raises(CommandError, match=message):
        _run(reference_dir / "franken.csv", *args)


def test_command_needs_treatments_chosen_when_the_file_has_three(tmp_path, reference_dir):
    rows = (reference_dir / "franken.csv").read_text().splitlines()
    extra = [
        line.replace(",1,", ",3,", 1) if line.split(",")[1] == "1" else None for line in rows[1:]
    ]
    path = tmp_path / "three.csv"
    path.write_text("\n".join(rows + [line for line in extra if line]) + "\n")
    with pytest.raises(CommandError, match="has treatments 1, 2, 3; choose two with --treatments"):
        _run(path, "--effect", "0.05")
    payload = json.loads(
        _run(path, "--effect", "0.05", "--treatments", "2", "3", "--readers", "6", "--json")
    )
    assert payload["pilot"]["treatments"] == ["2", "3"]
