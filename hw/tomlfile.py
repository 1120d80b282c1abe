"""Reading a TOML file (a target profile, a scenario, a sweep spec) into a dict, or one line.

Every way a file can fail to be TOML we read becomes one line naming the file, raised as the
caller's own error type (``TargetError``, ``ScenarioError``, ``SweepSpecError``) so each
package keeps its root error: cannot read (the OS's reason), not UTF-8 (the reason and the
byte), a TOML syntax error (tomllib's message, with line and column), nesting too deep.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any


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
