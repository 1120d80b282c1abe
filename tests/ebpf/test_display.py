"""ebpf.display: the one sanitiser for text from untrusted input, and the root errors using it."""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rich.console import Console

from ebpf.display import PrintableError, file_part, markup, printable
from ebpf.errors import EbpfError, ElfError
from hw.errors import HwError
from offload.errors import MapperError
from rtl_models.errors import RtlError
from sim.errors import SimError


@pytest.mark.parametrize(("raw", "shown"), [
    ("routes", "routes"),
    ("r\x1b[31m", "r\\x1b[31m"),
    ("ro\nte\x07", "ro\\nte\\x07"),
    ("a\tb\rc", "a\\tb\\rc"),
    ("\x00\x7f\x9b", "\\x00\\x7f\\x9b"),           # C0, DEL and the C1 CSI
    ("ab\u202ecd", "ab\\u202ecd"),                  # right-to-left override (format char)
    ("x\u2028y", "x\\u2028y"),                      # line separator
    ("tag\U000e0041", "tag\\U000e0041"),            # tag character (format, astral)
    ("bad\udcff", "bad\\xff"),                      # an undecodable byte (surrogateescape)
    ("café 中 ✓", "café 中 ✓"),                     # printable Unicode stays
    ("[red]x", "[red]x"),                           # not markup here: printable only
])
def test_printable_escapes_what_a_terminal_would_act_on(raw, shown):
    """Controls, format characters and separators are escaped; printable text is kept."""
    assert printable(raw) == shown


def test_printable_keeps_requested_characters():
    """``keep`` leaves e.g. the tabs of a C source line alone, and nothing else."""
    assert printable("\tx = 1;\x1b", keep="\t") == "\tx = 1;\\x1b"


def test_printable_takes_any_value():
    """Non-strings are shown through str() (a dict of verdicts, None)."""
    assert printable({"a\n": 1}) == "{'a\\n': 1}"
    assert printable(None) == "None"


@example("r\x1b[31m\\x1b")
@example("\\")
@given(st.text())
def test_printable_is_idempotent_and_leaves_only_printables(text):
    """Escaping twice changes nothing, and the result is entirely printable (one line)."""
    once = printable(text)
    assert once.isprintable()
    assert printable(once) == once


@given(st.text(max_size=40))
def test_printable_keeps_the_name_recoverable(text):
    """Without backslashes in the name, the escapes decode back to the name exactly."""
    if "\\" in text or any(0xDC80 <= ord(c) < 0xDD00 for c in text):
        return
    shown = printable(text)
    assert shown.encode("latin-1", "backslashreplace").decode("unicode_escape") == text


def render(text: str) -> str:
    """What a colour terminal would receive from rich for ``text`` (markup parsed)."""
    out = io.StringIO()
    Console(file=out, width=200, emoji=False, highlight=False, force_terminal=True,
            color_system="truecolor").print(text)
    return out.getvalue()


@pytest.mark.parametrize(("raw", "shown"), [
    ("[red]x", "[red]x"),
    ("[bold]b[/bold]", "[bold]b[/bold]"),
    ("r\x1b[31m", "r\\x1b[31m"),
    ("end\\", "end\\"),
    ("[link=file:///etc/passwd]p[/link]", "[link=file:///etc/passwd]p[/link]"),
])
def test_markup_is_shown_literally_by_rich(raw, shown):
    """rich prints ``markup(name)`` as the escaped name, tags included, with no escape
    sequence of its own (rich as the oracle: unescaped, ``[red]x`` would come out red)."""
    assert render(markup(raw)) == shown + "\n"
    if raw.startswith("[red]"):
        assert "\x1b[" in render(raw)  # the oracle does interpret unescaped markup


@pytest.mark.parametrize("root", [EbpfError, HwError, SimError, MapperError, RtlError])
def test_every_root_error_shows_its_message_printable(root):
    """Each package's root error is a PrintableError: str() escapes, args keep the raw text."""
    assert issubclass(root, PrintableError)
    exc = root("map 'ro\nte\x07': bad")
    assert str(exc) == "map 'ro\\nte\\x07': bad"
    assert exc.args == ("map 'ro\nte\x07': bad",)


def test_wrapped_error_is_not_escaped_twice():
    """A message built from an escaped one (``f"{path}: {exc}"``) escapes each name once."""
    inner = ElfError("map 'r\x1b[31m': unknown field")
    outer = ElfError(f"x.o: {inner}")
    assert str(outer) == "x.o: map 'r\\x1b[31m': unknown field"


@pytest.mark.parametrize(("raw", "part"), [
    ("lpm_router.xdp_lpm_router", "lpm_router.xdp_lpm_router"),
    ("../../etc/x", "..-..-etc-x"),
    ("r\x1b[31m", "r--31m"),
    ("ro\nte\x07 é", "ro-te---"),
])
def test_file_part_keeps_file_names_inside_their_folder(raw, part):
    """file_part: only A-Za-z0-9_.- survive, so no '/' and no control character."""
    assert file_part(raw) == part
