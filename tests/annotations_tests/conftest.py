"""Scenario fixtures: two CT studies, each in its own reader study, a lesion with ROIs and pathology.

``reader`` (reader1) is assigned to reader study A (study A); ``other_reader``
(reader2) to reader study B (study B). Studies are uploaded by the coordinator, so no
reader sees a study through their own upload.
"""

import pytest

from annotations import services
from annotations.models import ReaderStudy
from archive.ingest import ingest_upload
from archive.models import Study
from tests.factories.dicom import dataset_bytes, make_ct_study


def upload_study(user, n=1, phases=("NC", "CM", "NG", "EX")):
    """Store a multiphase CT study through the one ingest path; returns the Study."""
    slices = make_ct_study(n=n, phases=phases)
    files = [
        (f"{phase}-{i}.dcm", dataset_bytes(ds))
        for phase, datasets in slices.items()
        for i, ds in enumerate(datasets)
    ]
    report = ingest_upload(files, user)
    assert report.status == "stored", report.as_dict()
    return Study.objects.get(study_instance_uid=slices[phases[0]][0].StudyInstanceUID)


def roi_values(study, phase="CM", tool="ellipse", points=None, **extra):
    """Request values of an ROI on the first instance of ``study``'s series of ``phase``."""
    series = study.series.get(phase=phase)
    instance = series.instances.first()
    z = instance.image_position_patient[2]
    default_points = {
        "ellipse": [[-10.0, 0.0, z], [10.0, 0.0, z], [0.0, -6.0, z], [0.0, 6.0, z]],
        "rectangle": [[-10.0, -6.0, z], [10.0, -6.0, z], [10.0, 6.0, z], [-10.0, 6.0, z]],
        "length": [[-10.0, 0.0, z], [10.0, 0.0, z]],
        "freehand": [
            [-10.0, 0.0, z],
            [0.0, 8.0, z],
            [10.0, 0.0, z],
            [0.0, -8.0, z],
            [-5.0, -5.0, z],
        ],
    }
    return {
        "series": series.series_instance_uid,
        "sop_instance_uid": instance.sop_instance_uid,
        "frame_number": 1,
        "tool": tool,
        "points": points if points is not None else default_points[tool],
        "stats": {"mean": 160.5, "stdDev": 12.0, "min": 120.0, "max": 200.0},
        **extra,
    }


@pytest.fixture
def study_a(coordinator):
    return upload_study(coordinator)


@pytest.fixture
def study_b(coordinator):
    return upload_study(coordinator)


@pytest.fixture
def reader_study_a(study_a, reader, coordinator):
    rs = ReaderStudy.objects.create(
        name="A", instructions="Call every lesion.", seed=7, created_by=coordinator
    )
    rs.cases.create(study=study_a, position=1)
    rs.readers.add(reader)
    return rs


@pytest.fixture
def reader_study_b(study_b, other_reader, coordinator):
    rs = ReaderStudy.objects.create(name="B", seed=7, created_by=coordinator)
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
