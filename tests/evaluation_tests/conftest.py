"""Locate the published reference data sets (see shared/data/reference/README.md)."""

import os
from pathlib import Path

import pandas as pd
import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def reference_data_dir() -> Path:
    configured = os.environ.get("REFERENCE_DATA_DIR")
    if configured:
        return Path(configured)
    return REPOSITORY_ROOT.parent / "shared" / "data" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    folder = reference_data_dir()
    if not folder.is_dir():
        pytest.skip(
            f"reference data folder {folder} is absent; set REFERENCE_DATA_DIR "
            "to the folder holding asah.csv, franken.csv, ..."
        )
    return folder


@pytest.fixture(scope="session")
def asah(reference_dir):
    frame = pd.read_csv(reference_dir / "asah.csv")
    frame["poor_outcome"] = (frame["outcome"] == "Poor").astype(int)
    return frame
