"""Shared pytest fixtures. Add new fixtures under a section header of their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ------------------------------------------------------------------------------------------ offline by default
# A stray hub id must fail at once instead of retrying for about a minute (see shared/notes/offline-models.md).
# setdefault: run `HF_HUB_OFFLINE=0 pytest ...` to allow network tests on a connected machine.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

# ------------------------------------------------------------------------------------------ shared datasets
# The test collections live beside the repository (../shared/datasets), not inside it.
SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Folder holding scifact/ and cranfield/ in BEIR layout; skips the test when it is absent."""
    if not SHARED_DATASETS.is_dir():
        reason = f"shared test collections not found at {SHARED_DATASETS}"
        print(reason)
        pytest.skip(reason)
    return SHARED_DATASETS
