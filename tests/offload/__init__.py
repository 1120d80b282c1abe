"""Tests of the offload package; ``cli_runner`` runs the command line in-process."""

from __future__ import annotations

from collections.abc import Callable

from offload import cli
from offload.errors import MapperError


def cli_runner(monkeypatch, capsys, register: Callable) -> Callable[..., tuple[int, str, str]]:
    """``go(*argv) -> (status, stdout, stderr)`` of ``offload`` with the subcommand
    ``register`` wired in (as cli.py does for real) and MapperError a user error."""
    if register not in cli.EXTRA_COMMANDS:
        monkeypatch.setattr(cli, "EXTRA_COMMANDS", [*cli.EXTRA_COMMANDS, register])
    if MapperError not in cli.USER_ERRORS:
        monkeypatch.setattr(cli, "USER_ERRORS", (*cli.USER_ERRORS, MapperError))

    def go(*argv: str) -> tuple[int, str, str]:
        status = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return status, out.out, out.err
    return go
