"""Where the embedded broker's jars go: an override, the checkout's cache, or the user's."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.broker import jars
from streams.broker.jars import LIBS_DIR_ENV, POM_PATH, default_libs_dir, kafka_version

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LIBS_DIR_ENV, raising=False)


def test_the_pom_ships_in_the_package() -> None:
    assert POM_PATH == ROOT / "streams" / "broker" / "pom.xml"
    assert kafka_version().count(".") == 2


def test_the_override_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(LIBS_DIR_ENV, str(tmp_path / "libs"))
    assert default_libs_dir() == tmp_path / "libs"


@pytest.mark.usefixtures("no_override")
def test_a_checkout_keeps_its_own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_libs_dir() == ROOT / ".cache" / "kafka" / kafka_version() / "libs"


@pytest.mark.usefixtures("no_override")
def test_an_install_uses_the_xdg_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    site_packages = tmp_path / "site-packages"  # no pyproject.toml beside the package
    site_packages.mkdir()
    monkeypatch.setattr(jars, "REPO_ROOT", site_packages)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    version = kafka_version()
    assert default_libs_dir() == tmp_path / "xdg" / "profile-streams" / "kafka" / version / "libs"


@pytest.mark.usefixtures("no_override")
@pytest.mark.parametrize("xdg", [None, "", "relative/cache"])
def test_an_install_falls_back_to_the_home_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str | None
) -> None:
    monkeypatch.setattr(jars, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)  # the XDG spec ignores a relative path
    expected = tmp_path / "home" / ".cache" / "profile-streams" / "kafka" / kafka_version() / "libs"
    assert default_libs_dir() == expected
