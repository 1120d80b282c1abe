"""hw.tomlfile: one reader for every TOML file, each failure one line in the caller's error."""

from __future__ import annotations

import pytest

from hw.errors import TargetError
from hw.tomlfile import read_toml
from sim.scenario import ScenarioError


def test_reads_a_document(tmp_path):
    """A well-formed file gives tomllib's dict."""
    path = tmp_path / "a.toml"
    path.write_text('name = "x"\n[t]\nn = 3\n')
    assert read_toml(path, TargetError) == {"name": "x", "t": {"n": 3}}


@pytest.mark.parametrize("content, pattern", [
    (b"name = \n", r"^a\.toml: TOML syntax error: .*line 1"),
    (b'name = "\xff"\n', r"^a\.toml: not UTF-8 text: invalid start byte at byte 8$"),
    (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
     r"^a\.toml: (not TOML we read: nested too deeply|TOML syntax error: .*)$"),
])
def test_bad_content_is_one_line_of_the_callers_error(tmp_path, content, pattern):
    """Syntax, encoding and nesting problems name the file, in the error type given."""
    path = tmp_path / "a.toml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError, match=pattern) as info:
        read_toml(path, ScenarioError, name="a.toml")
    assert "\n" not in str(info.value)


def test_missing_file_says_what_it_is(tmp_path):
    """An unreadable file names the file, what it is and the OS's reason."""
    with pytest.raises(TargetError, match=r"gone\.toml: cannot read the sweep spec: No such"):
        read_toml(tmp_path / "gone.toml", TargetError, name="gone.toml", what="the sweep spec")
