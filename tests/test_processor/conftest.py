"""The processor's integration tests run once per kernel: the Rust kernel and the Python
reference (``STREAMS_KERNEL``) must keep the same contract on the real broker."""

from __future__ import annotations

from typing import Any

import pytest

from streams.settings import Settings
from tests.conftest import SettingsFactory


@pytest.fixture(params=["native", "python"], ids=["native-kernel", "python-kernel"])
def streams_settings(
    request: pytest.FixtureRequest, streams_settings: SettingsFactory
) -> SettingsFactory:
    def make(**overrides: Any) -> Settings:
        overrides.setdefault("kernel", request.param)
        return streams_settings(**overrides)

    return make
