"""constraints.txt pins every dependency exactly, and this environment was installed from it (as `make` does)."""

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
REPO = Path(__file__).resolve().parents[1]
UNLOCKED = {"torch"}  # installed first, by the Makefile's TORCH: a CPU build here, the user's CUDA build on GPUs


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()).groups()
            pins[canonicalize_name(name)] = version
    return pins


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {canonicalize_name(Requirement(r).name) for r in requirements} - UNLOCKED


def test_every_declared_dependency_is_pinned_and_installed_at_its_pin():
    pins = _pins()
    assert _declared() <= set(pins), f"not in constraints.txt: {sorted(_declared() - set(pins))}"
    for name, version in pins.items():
        assert metadata.version(name) == version, f"{name}: installed {metadata.version(name)}, locked {version}"


def test_the_makefile_installs_through_the_lock():
    makefile = (REPO / "Makefile").read_text()
    assert "PIP_INSTALL = $(BIN)/python -m pip install --quiet --constraint $(LOCK)" in makefile
    assert "LOCK ?= constraints.txt" in makefile
    install_lines = [line.strip() for line in makefile.splitlines() if "pip install" in line and "LOCK_VENV" not in line]
    allowed = ("$(TORCH)", "--constraint", "--upgrade pip")
    assert all(any(word in line for word in allowed) for line in install_lines), install_lines
