"""The cells of one CSV line, read strictly, and the cell texts that mean "missing": shared by
the readings CSV source (`columns.csv_source`) and the any-series flow (`dataflows.series`)."""

from __future__ import annotations

import csv

#: A cell with one of these texts (stripped, any case) is a missing value.
MISSING_TEXT = frozenset({"", "nan", "na", "null", "none"})


class RowError(ValueError):
    """One row of the CSV cannot be scored; the message says why."""


def split_cells(text: str) -> list[str]:
    """A line's cells: a plain split when nothing is quoted, else the csv module's strict reading
    of that line alone (a stray quote cannot swallow the lines after it)."""
    if '"' not in text and "\r" not in text:
        return text.split(",")
    try:
        return next(csv.reader([text], strict=True), [])
    except csv.Error as exc:
        raise RowError(f"not a CSV row: {exc}") from None
