"""Hypothesis example budgets that scale with the profile (tests/conftest.py).

A test that sets its own ``max_examples`` (because each example is expensive) writes
``max_examples=examples(N)``: N under the "ci" profile, ten times N under "explore"
(`make fuzz`), so the long search explores every property, not only those on the default.
"""

from __future__ import annotations

import os

EXPLORE_FACTOR = 10


def examples(n: int) -> int:
    """The example budget for a test whose CI budget is ``n``."""
    return n * EXPLORE_FACTOR if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else n
