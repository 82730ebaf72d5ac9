"""Numbers as text, and columns of a table, for every renderer.

One set of formatters, two styles: the console abbreviates large numbers (``1.2M``) to fit its narrow
columns and shows ``-`` for a missing value; the HTML page has room for thousands separators and an en
dash. Neither shows decimals for counts (ints) nor for values of 1,000 and more, where they are noise;
prose (``trim=True``) drops those of whole numbers too (``12/s``, ``≤ 500``), table columns keep them.
A table is a sequence of :class:`Column`; :func:`cells` applies them to rows, and each renderer lays
the cells out its own way (padded text, ``<table>``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["CONSOLE", "HTML", "Column", "Style", "cells"]

_NO_DECIMALS_FROM = 1e3
_ABBREVIATIONS = ((1e9, "G"), (1e6, "M"))


@dataclass(frozen=True, slots=True)
class Style:
    missing: str  # what None reads as
    grouped: bool  # thousands separators instead of abbreviations
    percent_sign: str

    def number(self, value: float | None, digits: int = 1, trim: bool = False) -> str:
        """``value`` with ``digits`` decimals; none for ints, from 1,000 on, or whole ones with ``trim``."""
        if value is None:
            return self.missing
        if not math.isfinite(value):
            return str(value)
        size = abs(value)
        if not self.grouped:
            for scale, suffix in _ABBREVIATIONS:
                if size >= scale:
                    return f"{value / scale:.1f}{suffix}"
        if isinstance(value, int) or size >= _NO_DECIMALS_FROM or (trim and value == int(value)):
            digits = 0
        return f"{value:,.{digits}f}" if self.grouped else f"{value:.{digits}f}"

    def percent(self, ratio: float | None, sign: bool = True) -> str:
        """A ratio as a percentage with one decimal (``sign=False`` where the heading says %)."""
        if ratio is None:
            return self.missing
        return f"{100.0 * ratio:.1f}{self.percent_sign if sign else ''}"

    def usd(self, value: float | None) -> str:
        return self.missing if value is None else f"${value:.4f}"


CONSOLE = Style(missing="-", grouped=False, percent_sign="%")
HTML = Style(missing="–", grouped=True, percent_sign=" %")

Row = TypeVar("Row")


@dataclass(frozen=True)  # no slots: with them, Column[T](...) fails on Python 3.10 and 3.11
class Column(Generic[Row]):
    """One column: its title and how a row becomes the column's text."""

    title: str
    cell: Callable[[Row], str]
    width: int = 0  # console: the column's width (the HTML table sizes itself)
    group: str = ""  # console: a heading over neighbouring columns of the same group


def cells(columns: Sequence[Column[Row]], rows: Iterable[Row]) -> list[list[str]]:
    """The text of every column for every row."""
    return [[column.cell(row) for column in columns] for row in rows]
