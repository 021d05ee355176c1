"""export_reader_study writes files that analyze_reader_study reads back to the page's numbers."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from evaluation import services
from evaluation.inputs import gather_inputs
from tests.factories.reader_study import build_reader_study


def test_long_export_reanalysed_outside_gives_the_page_sentence(db, tmp_path):
    study = build_reader_study(
        n_lesions=30, n_readers=3, variants=("CM", "EX"), seed=9, lesions_per_patient=2
    )
    path = tmp_path / "long.csv"
    call_command(
        "export_reader_study", str(study.reader_study.pk), "--long", str(path), stdout=io.StringIO()
    )
    out = io.StringIO()
    call_command(
        "analyze_reader_study", str(path), "--model-reader", "model:CM", "--json", stdout=out
    )
    outside = json.loads(out.getvalue())
    row = services.store_result(gather_inputs(study.reader_study))
    page = row.result["subgroups"][0]["mrmc"]["models"]["model:CM"]
    assert outside["patient_level"] is True and row.result["patient_level"] is True
    assert outside["model_vs_readers"]["rrrc"]["p"] == pytest.approx(page["rrrc"]["p"], rel=1e-9)
    assert outside["model_vs_readers"]["model_metric"] == pytest.approx(page["model_auc"])
    report = io.StringIO()
    call_command("analyze_reader_study", str(path), "--model-reader", "model:CM", stdout=report)
    assert page["sentence"] in report.getvalue()


def test_export_needs_an_output_and_an_existing_study(db, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_reader_study", "999", "--long", str(tmp_path / "x.csv"))
    study = build_reader_study(n_lesions=10, n_readers=2, variants=("CM",), seed=2)
    with pytest.raises(CommandError, match="at least one output"):
        call_command("export_reader_study", str(study.reader_study.pk))
    with pytest.raises(CommandError, match="model EX"):
        call_command(
            "export_reader_study",
            str(study.reader_study.pk),
            "--long",
            str(tmp_path / "x.csv"),
            "--model",
            "EX",
        )
    call_command(
        "export_reader_study",
        str(study.reader_study.pk),
        "--csv",
        str(tmp_path / "j.csv"),
        "--imrmc",
        str(tmp_path / "s.imrmc"),
        stdout=io.StringIO(),
    )
    assert (tmp_path / "j.csv").read_text().count("\n") == 1 + 10 * 2
    assert "BEGIN DATA:" in (tmp_path / "s.imrmc").read_text()
