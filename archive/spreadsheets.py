"""CSV for spreadsheets: no cell a spreadsheet would run as a formula (CSV injection).

A cell whose text starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return,
which some spreadsheets skip before reading a formula) is written with a leading
apostrophe, so Excel, LibreOffice and Google Sheets show it as text. Numbers, also
negative ones written as text (``-0.5``), are left as they are. Reference: OWASP,
"CSV Injection".
"""

import csv
import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise_formula(value):
    """``value`` as a cell that is never a formula: text starting a formula gets a leading apostrophe."""
    if (
        not isinstance(value, str)
        or not value.startswith(FORMULA_STARTS)
        or _NUMBER.fullmatch(value)
    ):
        return value
    return "'" + value


class FormulaSafeWriter:
    """A :func:`csv.writer` whose every cell goes through :func:`neutralise_formula`."""

    def __init__(self, buffer, **options):
        self._writer = csv.writer(buffer, **options)

    def writerow(self, row):
        return self._writer.writerow([neutralise_formula(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)
