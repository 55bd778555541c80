"""Markdown pieces of the pages the evaluations write (models/README.md, models/VIDEO.md)."""

from __future__ import annotations


def table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table: the header, its `---` line, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
