"""CSV cells a spreadsheet would run as formulas are written as text; numbers stay numbers."""

import csv
import io

import pytest

from archive.spreadsheets import FormulaSafeWriter, neutralise_formula


@pytest.mark.parametrize(
    "text", ["=1+2", "+SUM(A1:A9)", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x")', "\t=1", "-"]
)
def test_text_that_starts_a_formula_gets_a_leading_apostrophe(text):
    assert neutralise_formula(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["-0.5", "+3", "-12", "-1e-3", "0.25", "L1", "SRM-0001", "", 85, -0.5, None]
)
def test_numbers_and_ordinary_text_are_left_alone(value):
    assert neutralise_formula(value) == value


def test_the_writer_neutralises_every_cell_of_every_row():
    buffer = io.StringIO()
    writer = FormulaSafeWriter(buffer)
    writer.writerow(["name", "value"])
    writer.writerows([["=cmd|' /C calc'!A0", -0.5], ["@x", "-0.5"]])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [
        ["name", "value"],
        ["'=cmd|' /C calc'!A0", "-0.5"],
        ["'@x", "-0.5"],
    ]
