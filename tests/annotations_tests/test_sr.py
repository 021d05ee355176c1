"""DICOM SR (TID 1500) export of a study's lesions and its round trip through the importer."""
import io

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotations import services
from annotations.models import ROI, Lesion
from annotations.sr import PATHOLOGY, read_measurement_groups
from tests.annotations_tests.conftest import roi_values


@pytest.fixture
def annotated(lesion_a, coordinator):
    """Lesion L1 (ellipses CM/NG) plus L2 with rectangle, freehand and length ROIs."""
    study = lesion_a.study
    lesion = services.create_lesion(study, coordinator, label="L2", side="right", long_axis_mm=14.0)
    services.create_roi(lesion, coordinator, is_reference=True, **roi_values(study, "CM", tool="rectangle"))
    services.create_roi(lesion, coordinator, is_reference=True, **roi_values(study, "NG", tool="freehand"))
    services.create_roi(lesion, coordinator, **roi_values(study, "EX", tool="length", stats={}))
    return study


def geometry(study):
    return sorted(
        (r.lesion.label, r.lesion.side, r.lesion.long_axis_mm, r.phase, r.tool, r.sop_instance_uid, r.frame_number, r.is_reference,
         tuple(round(c, 3) for p in r.points for c in p))
        for r in ROI.objects.filter(lesion__study=study).select_related("lesion")
    )


def fetch_sr(client, study):
    response = client.get(f"/api/v1/studies/{study.study_instance_uid}/sr/")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    return response.content


@pytest.mark.django_db
def test_sr_export_delete_import_restores_the_same_lesions_and_roi_geometry(annotated, coordinator, api_client_for):
    client = api_client_for(coordinator)
    before = geometry(annotated)
    data = fetch_sr(client, annotated)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.StudyInstanceUID == annotated.study_instance_uid
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    for lesion in Lesion.objects.filter(study=annotated):
        assert client.delete(f"/api/v1/lesions/{lesion.pk}/").status_code == 204
    assert not ROI.objects.filter(lesion__study=annotated).exists()
    response = client.post("/api/v1/sr-imports/", {"file": SimpleUploadedFile("sr.dcm", data, "application/dicom")}, format="multipart")
    assert response.status_code == 201, response.json()
    assert sorted(lesion["label"] for lesion in response.json()["lesions"]) == ["L1", "L2"]
    assert geometry(annotated) == before


@pytest.mark.django_db
def test_importing_an_sr_over_existing_lesions_is_a_conflict(annotated, coordinator, api_client_for):
    client = api_client_for(coordinator)
    data = fetch_sr(client, annotated)
    before = geometry(annotated)
    response = client.post("/api/v1/sr-imports/", {"file": SimpleUploadedFile("sr.dcm", data)}, format="multipart")
    assert response.status_code == 409 and "L1" in response.json()["detail"]
    assert geometry(annotated) == before


@pytest.mark.django_db
def test_a_non_dicom_file_names_file(coordinator, api_client_for):
    response = api_client_for(coordinator).post("/api/v1/sr-imports/", {"file": SimpleUploadedFile("x.dcm", b"hello")}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


@pytest.mark.django_db
def test_the_pathology_is_in_the_sr_only_for_who_may_see_it(lesion_a, reader, coordinator, api_client_for):
    def has_pathology(user):
        ds = pydicom.dcmread(io.BytesIO(fetch_sr(api_client_for(user), lesion_a.study)))
        return PATHOLOGY.value in str(ds)

    assert has_pathology(coordinator)
    assert not has_pathology(reader)


@pytest.mark.django_db
def test_import_sr_command_reads_a_file(annotated, coordinator, api_client_for, tmp_path):
    path = tmp_path / "sr.dcm"
    path.write_bytes(fetch_sr(api_client_for(coordinator), annotated))
    before = geometry(annotated)
    groups = read_measurement_groups(pydicom.dcmread(path))
    assert len(groups) == 5 and {g["roi"]["tool"] for g in groups} == {"ellipse", "rectangle", "freehand", "length"}
    Lesion.objects.filter(study=annotated).delete()
    out = io.StringIO()
    call_command("import_sr", str(path), "--user", "coordinator", stdout=out)
    assert "L1 (2 ROIs)" in out.getvalue() and "L2 (3 ROIs)" in out.getvalue()
    assert geometry(annotated) == before
