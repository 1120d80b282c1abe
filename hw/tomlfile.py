"""Reading a TOML file (a target profile, a scenario, a sweep spec) into a dict, or one line.

Every way a file can fail to be TOML we read becomes one line naming the file, raised as the
caller's own error type (``TargetError``, ``ScenarioError``, ``SweepSpecError``) so each
package keeps its root error: cannot read (the OS's reason), not UTF-8 (the reason and the
byte), a TOML syntax error (tomllib's message, with line and column), nesting too deep.
``TomlTable`` then reads a document's keys with types, ranges and choices checked, each
problem one line naming the file and the dotted key (``stages.count: expected a positive
integer, got -3``), an unknown key with the closest known one.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hw.errors import TargetError


def read_toml(path: str | os.PathLike[str], error: type[Exception], *, name: str | None = None,
              what: str = "") -> dict[str, Any]:
    """The document in ``path``; ``name`` is how messages name the file (default: the path),
    ``what`` what it is ("the sweep spec"), said when it cannot be read."""
    file = name if name is not None else os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        about = f" {what}" if what else ""
        raise error(f"{file}: cannot read{about}: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{file}: TOML syntax error: {exc}") from exc
    except RecursionError as exc:
        raise error(f"{file}: not TOML we read: nested too deeply") from exc


def show_value(value: object) -> str:
    """A value as the TOML file spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


class TomlTable:
    """One TOML table being read: every error names the file and the dotted key, raised as
    ``error`` (``TargetError`` by default)."""

    def __init__(self, data: dict[str, Any], file: str, path: str,
                 allowed: Sequence[str], error: type[Exception] = TargetError) -> None:
        self.data = data
        self.file = file
        self.path = path
        self.error = error
        for key in data:
            if key not in allowed:
                self.fail(key, "unknown key" + suggest(key, allowed))

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> NoReturn:
        raise self.error(f"{self.file}: {self.key(key)}: {problem}")

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, expected: str) -> Any:
        if key not in self.data:
            self.fail(key, f"missing (expected {expected})")
        return self.data[key]

    def integer(self, key: str, *, minimum: int = 1) -> int:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        value = self._get(key, expected)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(key, f"expected {expected}, got {show_value(value)}")
        return value

    def optional_integer(self, key: str) -> int | None:
        return self.integer(key) if key in self.data else None

    def number(self, key: str) -> float:
        value = self._get(key, "a positive number")
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            self.fail(key, f"expected a positive number, got {show_value(value)}")
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self._get(key, "true or false")
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {show_value(value)}")
        return value

    def string(self, key: str, choices: Sequence[str] | None = None) -> str:
        expected = "a string" if choices is None else "one of " + ", ".join(choices)
        value = self._get(key, expected)
        if not isinstance(value, str) or (choices is None and not value.strip()):
            self.fail(key, f"expected {expected}, got {show_value(value)}")
        if choices is not None and value not in choices:
            self.fail(key, f"unknown value {value!r} (expected one of {', '.join(choices)})"
                      + suggest(value, choices))
        return value

    def strings(self, key: str, choices: Iterable[str], what: str) -> tuple[str, ...]:
        value = self._get(key, "an array of strings")
        if not isinstance(value, list):
            self.fail(key, f"expected an array of strings, got {show_value(value)}")
        known = list(choices)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{key}[{i}]", f"expected a string, got {show_value(item)}")
            if item not in known:
                self.fail(key, f"unknown {what} {item!r}" + suggest(item, known))
        if len(set(value)) != len(value):
            dup = next(v for v in value if value.count(v) > 1)
            self.fail(key, f"{what} {dup!r} listed twice")
        return tuple(value)

    def table(self, key: str, allowed: Sequence[str]) -> TomlTable:
        value = self._get(key, "a table")
        if not isinstance(value, dict):
            self.fail(key, f"expected a table, got {show_value(value)}")
        return TomlTable(value, self.file, self.key(key), allowed, self.error)

    def tables(self, key: str, allowed: Sequence[str]) -> list[TomlTable]:
        value = self._get(key, "an array of tables")
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            self.fail(key, f"expected a non-empty array of tables, got {show_value(value)}")
        return [TomlTable(v, self.file, f"{self.key(key)}[{i}]", allowed, self.error)
                for i, v in enumerate(value)]
