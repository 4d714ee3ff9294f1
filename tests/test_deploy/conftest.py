"""The wheel built from this repository, shared by the wheel's tests and the installed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_deploy.wheel_build import build_wheel


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))
