"""``manage.py make_cohort``: the thin shell around :func:`cohort.files.write_cohort`."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command


def test_make_cohort_writes_studies_csv_preview_and_prints_the_oracle_auc(tmp_path):
    out = io.StringIO()
    call_command(
        "make_cohort",
        "--out",
        str(tmp_path / "c"),
        "--patients",
        "2",
        "--seed",
        "1",
        "--size",
        "64",
        "--z-extent-mm",
        "25",
        "--transfer-syntax",
        "rle",
        "--preview",
        str(tmp_path / "p.png"),
        "--mix",
        "ccRCC=1,oncocytoma=1",
        verbosity=0,
        stdout=out,
    )
    text = out.getvalue()
    assert "2 studies" in text and "oracle AUC" in text and "overall" in text
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "SRM-0001",
        "SRM-0002",
        "cohort.csv",
    ]
    assert len(list((tmp_path / "c" / "SRM-0001" / "CM").glob("*.dcm"))) == 10
    with open(tmp_path / "c" / "cohort.csv", newline="") as handle:
        assert {row["subtype"] for row in csv.DictReader(handle)} <= {"ccRCC", "oncocytoma"}
    assert (tmp_path / "p.png").exists()


def test_make_cohort_rejects_an_unknown_subtype_with_a_message(tmp_path):
    with pytest.raises(CommandError, match="unknown subtypes"):
        call_command("make_cohort", "--out", str(tmp_path), "--mix", "wilms=3", verbosity=0)
