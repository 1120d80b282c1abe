"""Reading a JSON file (a map state document, a differential scenario, a pipeline
configuration) into Python values, or one line naming the file.

Every way a file can fail to be JSON we read is raised as the caller's own error type
(``MapStateError``, ``ConfigError``...), so each package keeps its root error: cannot read
(the OS's reason), not UTF-8, a JSON syntax error (json's message with line and column),
nesting too deep for the parser. ``hw.tomlfile.read_toml`` is the TOML counterpart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_json(path: str | os.PathLike[str], error: type[Exception]) -> Any:
    """The document in ``path``; ``error(message)`` when it cannot be read as JSON."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{source}: cannot read: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not JSON: {exc.msg} at line {exc.lineno} "
                    f"column {exc.colno}") from exc
    except RecursionError as exc:
        raise error(f"{source}: not JSON we read: nested too deeply") from exc
