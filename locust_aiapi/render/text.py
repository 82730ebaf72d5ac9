"""Plain-text layout shared by the console renderers: padded tables, the widths they aim for, prose."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from itertools import groupby
from typing import TypeVar

from .format import Column, cells

__all__ = ["WIDE", "fit", "group_line", "layouts", "line", "table_width", "text_table", "wrap"]

WIDE = 120
"""Terminals at least this wide get the one-line tables; narrower ones get them split and stacked."""


def wrap(text: str, width: int, indent: str = "  ") -> list[str]:
    """A sentence as lines of at most ``width`` characters, continuation lines indented."""
    return textwrap.wrap(text, max(width, 40), subsequent_indent=indent, break_on_hyphens=False) or [""]


Row = TypeVar("Row")


def fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def line(label: str, label_width: int, texts: Sequence[str], columns: Sequence[Column[Row]]) -> str:
    padded = (text.rjust(column.width) for text, column in zip(texts, columns, strict=True))
    return " ".join((fit(label, label_width).ljust(label_width), *padded))


def text_table(
    title: str, width: int, columns: Sequence[Column[Row]], rows: Sequence[tuple[str, Row]]
) -> list[str]:
    """Header, rule and one line per ``(label, row)``: the label left-aligned, the cells right-aligned."""
    header = line(title, width, [column.title for column in columns], columns)
    texts = cells(columns, (row for _, row in rows))
    return [
        header,
        "-" * len(header),
        *(line(label, width, t, columns) for (label, _), t in zip(rows, texts, strict=True)),
    ]


def group_line(columns: Sequence[Column[Row]], label_width: int) -> str:
    """Headings over neighbouring columns of one group (``TTFT`` over its p50, p95 and p99)."""
    parts = [" " * label_width]
    for group, grouped in groupby(columns, key=lambda column: column.group):
        widths = [column.width for column in grouped]
        parts.append(group.center(sum(widths) + len(widths) - 1))
    return " ".join(parts).rstrip()


def table_width(columns: Sequence[Column[Row]], label_width: int) -> int:
    return label_width + sum(column.width + 1 for column in columns)


def layouts(width: int, label_width: int, *tables: Sequence[Column[Row]]) -> list[Sequence[Column[Row]]]:
    """All the columns in one table when it fits ``width``, else each part as its own table."""
    whole = [column for table in tables for column in table]
    return [whole] if table_width(whole, label_width) <= width else list(tables)
