"""The processor's integration tests run once per kernel: the Rust kernel and the Python
reference (``STREAMS_KERNEL``) must keep the same contract on the real broker."""

from __future__ import annotations

from pathlib import Path
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The Faust engine runs these with the native kernel only: it hands batches to the same
    kernel either way, and tests/test_faust/test_engine.py compares its output with the
    default engine's under each kernel. Skipped with that reason, so the run says so."""
    here = Path(__file__).parent
    skip = pytest.mark.skip(
        reason="the Faust engine runs the contract with the native kernel; both kernels: "
        "tests/test_faust/test_engine.py"
    )
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or here not in item.path.parents:
            continue
        params = callspec.params
        if params.get("streams_settings") == "python" and params.get("engine_worker") == "faust":
            item.add_marker(skip)
