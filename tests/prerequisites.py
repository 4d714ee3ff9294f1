"""What a test does when a service or tool it needs is missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(what: str, reason: str) -> NoReturn:
    """Skip, naming what is missing and why; in CI (``CI=true``) a missing prerequisite is a
    broken environment, not a reason to skip quietly: fail."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"{what} unavailable: {reason}")
