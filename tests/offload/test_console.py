"""offload.console: JSON on stdout, the report console, the verdict lines, the progress bar."""

from __future__ import annotations

import io
import json

from rich.console import Console

from offload.console import (
    print_json,
    print_verdict,
    progress_bar,
    reasons_table,
    show,
    table_console,
)


def test_print_json_is_the_document_and_one_newline(capsys):
    """stdout holds exactly the indented JSON and a newline."""
    print_json({"b": [1, 2], "a": "x"}, indent=2)
    out = capsys.readouterr().out
    assert out == json.dumps({"b": [1, 2], "a": "x"}, indent=2) + "\n"


def test_show_chooses_json_or_the_renderer(capsys):
    """--json prints JSON; otherwise the command's renderer gets the document."""
    seen = []
    show({"n": 1}, False, seen.append)
    assert seen == [{"n": 1}] and capsys.readouterr().out == ""
    show({"n": 1}, True, seen.append)
    assert json.loads(capsys.readouterr().out) == {"n": 1} and len(seen) == 1


def test_table_console_is_wide_when_piped():
    """Not a terminal (pytest captures stdout): the console is the width asked for."""
    assert table_console().width == 160 and table_console(140).width == 140


def test_verdict_lines_escape_names():
    """A program name with rich markup prints literally, and the verdict has its style."""
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=False)
    print_verdict(console, "a.o", "[red]x[/red]", "pipe", "partial", "two cuts")
    assert buf.getvalue() == "a.o [red]x[/red] on pipe: partial\n  two cuts\n"


def test_progress_bar_counts_and_shows_status():
    """The bar shows label, done/total and the status text, rendered on the given console."""
    buf = io.StringIO()
    console = Console(file=buf, width=120, force_terminal=True)
    with progress_bar("sweep", "{task.fields[status]}", console=console,
                      transient=False) as bar:
        task = bar.add_task("", total=4, status="")
        bar.update(task, advance=3, status="3 done")
    text = buf.getvalue()
    assert "sweep" in text and "3/4" in text and "3 done" in text


def test_reasons_table_rows():
    """One row per reason: first slot and how many more, source, kind, what, fix."""
    from types import SimpleNamespace

    r = SimpleNamespace(insn=7, insns=(7, 9, 12), where="a.c:3", kind="helper",
                        what="bpf_[b]x", fix="drop it")
    buf = io.StringIO()
    Console(file=buf, width=200).print(reasons_table("Reasons", [r]))
    text = buf.getvalue()
    assert "Reasons (1)" in text and "7 (+2)" in text and "bpf_[b]x" in text
