"""Scenario fixtures: two CT studies, each in its own reader study, a lesion with ROIs and pathology.

``reader`` (reader1) is assigned to reader study A (study A); ``other_reader``
(reader2) to reader study B (study B). Studies are uploaded by the coordinator, so no
reader sees a study through their own upload. A pytest plugin (``tests/conftest.py``
loads it), so every test folder asks for these by name instead of importing them.
"""

import pytest

from annotations import services
from tests.factories.annotations import ReaderStudyFactory, roi_values
from tests.factories.archive import upload_study


@pytest.fixture
def study_a(coordinator):
    return upload_study(coordinator)


@pytest.fixture
def study_b(coordinator):
    return upload_study(coordinator)


@pytest.fixture
def reader_study_a(study_a, reader, coordinator):
    rs = ReaderStudyFactory(
        name="A", instructions="Call every lesion.", seed=7, created_by=coordinator
    )
    rs.cases.create(study=study_a, position=1)
    rs.readers.add(reader)
    return rs


@pytest.fixture
def reader_study_b(study_b, other_reader, coordinator):
    rs = ReaderStudyFactory(name="B", seed=7, created_by=coordinator)
    rs.cases.create(study=study_b, position=1)
    rs.readers.add(other_reader)
    return rs


@pytest.fixture
def lesion_a(study_a, reader_study_a, reader_study_b, coordinator):
    """Lesion L1 on study A with reference ROIs on CM and NG, and ccRCC pathology."""
    rois = {
        phase: {k: v for k, v in roi_values(study_a, phase).items() if k != "series"}
        for phase in ("CM", "NG")
    }
    lesion = services.create_lesion_with_reference_rois(
        study_a, "L1", "left", 23.5, rois, coordinator
    )
    services.set_pathology(lesion, "ccRCC", source="surgery", user=coordinator)
    return lesion


@pytest.fixture
def lesion_b(study_b, reader_study_b, coordinator):
    rois = {"CM": {k: v for k, v in roi_values(study_b, "CM").items() if k != "series"}}
    lesion = services.create_lesion_with_reference_rois(
        study_b, "L1", "right", 18.0, rois, coordinator
    )
    services.set_pathology(lesion, "oncocytoma", user=coordinator)
    return lesion


@pytest.fixture
def users(reader, other_reader, coordinator, admin_user):
    """Role name -> user (None for anonymous), the rows of the permission matrix."""
    return {
        "reader": reader,
        "other_reader": other_reader,
        "coordinator": coordinator,
        "admin": admin_user,
        "anonymous": None,
    }
