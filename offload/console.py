"""What the commands print besides their own tables: a document as JSON on stdout
(``--json``), and the progress bar of the long commands (report, sweep, run, diff).

The bar has one layout on stderr: the command's name, the bar, done / total, elapsed, time left, then a
status text (the item being worked on, or the counts so far). Shown when stderr is a
terminal unless the caller says otherwise; names in the status pass through ``printable``
and rich's ``escape`` at the caller.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any


def print_json(doc: Any, *, indent: int = 1) -> None:
    """``doc`` on stdout as JSON, one trailing newline."""
    json.dump(doc, sys.stdout, indent=indent)
    sys.stdout.write("\n")


def show(doc: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """``doc`` as JSON (``--json``) or through the command's ``render``."""
    if as_json:
        print_json(doc)
    else:
        render(doc)


def progress_bar(label: str, status: str, *, transient: bool, console: Any = None) -> Any:
    """A ``rich.progress.Progress`` for ``label``; ``status`` is the last column's format
    (``"{task.description}"``, ``"{task.fields[status]}"``)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), TextColumn(status),
                    console=console or Console(stderr=True, emoji=False), transient=transient)


VERDICT_STYLE = {"full": "bold green", "partial": "bold yellow", "host-only": "bold red",
                 "rejected": "bold red"}


def table_console(width: int = 160) -> Any:
    """A rich console on stdout for a command's text report (``width`` columns when not a
    terminal, so piped output does not wrap at 80)."""
    from rich.console import Console

    console = Console(file=sys.stdout, highlight=False, emoji=False)
    if not console.is_terminal:
        console.width = width
    return console


def print_verdict(console: Any, path: str, program: str, target: str, verdict: str,
                  explanation: str) -> None:
    """The first two lines of ``check`` and ``map``: what ran where, the verdict, and why."""
    from ebpf.display import markup

    style = VERDICT_STYLE.get(verdict, "bold")
    console.print(f"{markup(path)} {markup(program)} on {markup(target)}: "
                  f"[{style}]{verdict}[/{style}]")
    console.print(f"  {markup(explanation)}")


def reasons_table(title: str, reasons: Sequence[Any]) -> Any:
    """The reasons of ``check`` / ``map`` (``offload.feasibility.Reason``): instruction (and
    how many more the reason covers), source line, kind, what, fix."""
    from rich.table import Table

    from ebpf.display import markup

    table = Table(title=f"{title} ({len(reasons)})")
    for col, wrap in (("insn", False), ("source", False), ("kind", False), ("what", True),
                      ("fix", True)):
        table.add_column(col, no_wrap=not wrap, overflow="fold")
    for r in reasons:
        slots = str(r.insn) + (f" (+{len(r.insns) - 1})" if len(r.insns) > 1 else "")
        table.add_row(slots, markup(r.where), r.kind, markup(r.what), markup(r.fix))
    return table
