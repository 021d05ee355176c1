"""Small cohorts shared by the cohort tests (written once per test session)."""

import pytest

from cohort.files import write_cohort
from cohort.latents import sample_cohort
from cohort.spec import CohortSpec

SMALL = dict(patients=3, seed=7, size=256, slices=16)


@pytest.fixture(scope="session")
def small_spec():
    return CohortSpec(**SMALL)


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory, small_spec):
    """3 patients, 256 x 256 x 16 slices, explicit VR little endian, with a preview PNG."""
    out = tmp_path_factory.mktemp("cohort")
    return write_cohort(small_spec, out, preview=out / "preview.png")


@pytest.fixture(scope="session")
def large_latents():
    """About 2000 lesions, latents only (no pixels)."""
    return sample_cohort(CohortSpec(patients=1900, seed=11))
