"""The one table printer: rows of values under named columns, as aligned text or as Markdown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Column = tuple[str, str, "str | Callable[[Any], str]"]
"""(row key, header, format spec such as ".4f", or a function value -> text)."""


def _cell(value: Any, fmt: str | Callable[[Any], str]) -> str:
    if value is None:
        return "-"
    return fmt(value) if callable(fmt) else format(value, fmt)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], markdown: bool = False) -> str:
    """``rows`` under ``columns``: aligned plain text (first column left, the rest right), or a Markdown table.

    A missing or None value prints as "-". In Markdown, pipes inside cells are escaped.
    """
    header = [title for _, title, _ in columns]
    cells = [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    if markdown:
        def line(values: Sequence[str]) -> str:
            return "| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in values) + " |"

        return "\n".join([line(header), "|" + "---|" * len(columns), *map(line, cells)])
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(columns))]

    def aligned(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    return "\n".join([aligned(header), "  ".join("-" * w for w in widths), *map(aligned, cells)])
