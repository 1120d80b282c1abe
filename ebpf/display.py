"""How text from untrusted input is shown: one sanitiser, ``printable``, for every display.

Names in an object (maps, programs, sections, BTF, symbols), in a pcap, a state or target
file, and file names themselves can hold any bytes. The loader keeps them exactly (state
files and the kernel match maps by their real name; JSON output holds the real name and
escapes it itself). Everything that *shows* such text goes through ``printable``:

- terminal and one-line errors: ``printable`` (every package's root error applies it to its
  message through ``PrintableError``, so a name can never split the error line);
- rich output: ``markup`` (``printable``, then rich's markup escaped);
- the HTML report: jinja2 autoescape after ``printable`` (``offload.report.render``);
- file names made from names: ``file_part``.

``printable`` escapes every character that is not printable (controls, format characters
such as the bidirectional overrides, line and paragraph separators, unassigned code points)
as ``\\n`` / ``\\r`` / ``\\t`` / ``\\xNN`` / ``\\uNNNN`` / ``\\UNNNNNNNN`` and keeps ordinary
printable Unicode. A backslash is kept as it is, so ``printable`` is idempotent: a message built from an already escaped one
is not escaped twice. The exact bytes are in the JSON output.
"""

from __future__ import annotations

import re
from typing import Any

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Lone surrogates U+DC80..U+DCFF are bytes that did not decode (``surrogateescape``).
_BYTE_SURROGATES = range(0xDC80, 0xDD00)


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if code in _BYTE_SURROGATES:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: Any, keep: str = "") -> str:
    """``text`` (made a ``str``) with every non-printable character escaped, ``\\x1b`` for
    ESC, ``\\n`` for a newline; characters in ``keep`` (e.g. a tab in source code) stay."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else _escape(ch) for ch in text)


def markup(text: Any) -> str:
    """``printable(text)`` made safe to put into rich console markup (``[red]`` shown as is).

    Consoles that print names are made with ``emoji=False``: rich has no escape for emoji
    codes such as ``:smile:``. rich's ``escape`` doubles a final backslash (for a tag that
    may follow), which rich then prints twice: the space added and removed below keeps it
    single, so never put a tag right after ``markup(...)``; use a ``Text`` there."""
    from rich.markup import escape

    return escape(printable(text) + " ")[:-1]


def file_part(text: Any) -> str:
    """``text`` as part of a file name we write (report pages, RTL results): anything but
    ``A-Za-z0-9_.-`` becomes ``-``, so a name from an object can neither leave the folder
    (``/``) nor put control characters into a file name."""
    return _FILE_UNSAFE.sub("-", str(text))


class PrintableError(Exception):
    """Base of each package's root error: ``str(exc)`` is the message through ``printable``,
    so a name in it cannot split the command line's one-line error or drive the terminal.
    ``exc.args`` keep the message as it was raised."""

    def __str__(self) -> str:
        return printable(super().__str__())
