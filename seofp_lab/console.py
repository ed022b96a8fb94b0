"""One rich Console for tables: the terminal's width, or 140 columns when output goes to a log."""

from __future__ import annotations

from rich.console import Console


def console(stderr: bool = False) -> Console:
    out = Console(stderr=stderr)
    if not out.is_terminal:  # CI logs and pipes default to 80 columns, which wraps every cell
        out = Console(stderr=stderr, width=140)
    return out
