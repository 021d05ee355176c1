"""DICOM SR (TID 1500) export of a study's lesions and its round trip through the importer."""

import io
import shutil
import subprocess

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotations import services
from annotations.models import ROI, Lesion
from annotations.sr import MALIGNANCY, PATHOLOGY, SCHEME, read_measurement_groups
from tests.conftest import service_missing
from tests.factories.annotations import roi_values

STANDARD_SCHEMES = {"DCM", "SCT", "UCUM", "LN", "RFC5646"}  # PS3.16 Table 8-1: need no declaration


@pytest.fixture
def annotated(lesion_a, coordinator):
    """Lesion L1 (ellipses CM/NG) plus L2 with rectangle, freehand and length ROIs."""
    study = lesion_a.study
    lesion = services.create_lesion(study, coordinator, label="L2", side="right", long_axis_mm=14.0)
    services.create_roi(
        lesion, coordinator, is_reference=True, **roi_values(study, "CM", tool="rectangle")
    )
    services.create_roi(
        lesion, coordinator, is_reference=True, **roi_values(study, "NG", tool="freehand")
    )
    services.create_roi(lesion, coordinator, **roi_values(study, "EX", tool="length", stats={}))
    return study


def geometry(study):
    return sorted(
        (
            r.lesion.label,
            r.lesion.side,
            r.lesion.long_axis_mm,
            r.phase,
            r.tool,
            r.sop_instance_uid,
            r.frame_number,
            r.is_reference,
            tuple(round(c, 3) for p in r.points for c in p),
        )
        for r in ROI.objects.filter(lesion__study=study).select_related("lesion")
    )


def fetch_sr(client, study):
    response = client.get(f"/api/v1/studies/{study.study_instance_uid}/sr/")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    return response.content


@pytest.mark.django_db
def test_sr_export_delete_import_restores_the_same_lesions_and_roi_geometry(
    annotated, coordinator, api_client_for
):
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
    response = client.post(
        "/api/v1/sr-imports/",
        {"file": SimpleUploadedFile("sr.dcm", data, "application/dicom")},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert sorted(lesion["label"] for lesion in response.json()["lesions"]) == ["L1", "L2"]
    assert geometry(annotated) == before


@pytest.mark.django_db
def test_importing_an_sr_over_existing_lesions_is_a_conflict(
    annotated, coordinator, api_client_for
):
    client = api_client_for(coordinator)
    data = fetch_sr(client, annotated)
    before = geometry(annotated)
    response = client.post(
        "/api/v1/sr-imports/", {"file": SimpleUploadedFile("sr.dcm", data)}, format="multipart"
    )
    assert response.status_code == 409 and "L1" in response.json()["detail"]
    assert geometry(annotated) == before


@pytest.mark.django_db
def test_a_non_dicom_file_names_file(coordinator, api_client_for):
    response = api_client_for(coordinator).post(
        "/api/v1/sr-imports/", {"file": SimpleUploadedFile("x.dcm", b"hello")}, format="multipart"
    )
    assert response.status_code == 400 and "file" in response.json()


@pytest.mark.django_db
def test_the_pathology_is_in_the_sr_only_for_who_may_see_it(
    lesion_a, reader, coordinator, api_client_for
):
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
    assert len(groups) == 5 and {g["roi"]["tool"] for g in groups} == {
        "ellipse",
        "rectangle",
        "freehand",
        "length",
    }
    Lesion.objects.filter(study=annotated).delete()
    out = io.StringIO()
    call_command("import_sr", str(path), "--user", "coordinator", stdout=out)
    assert "L1 (2 ROIs)" in out.getvalue() and "L2 (3 ROIs)" in out.getvalue()
    assert geometry(annotated) == before


def coded_items(dataset):
    """Every code sequence item anywhere in ``dataset`` (concept names, values, units, ...)."""
    found = []

    def walk(ds):
        for element in ds:
            if element.VR == "SQ":
                for item in element.value:
                    if "CodeValue" in item and "CodingSchemeDesignator" in item:
                        found.append(item)
                    walk(item)

    walk(dataset)
    return found


def evaluation_values(dataset, concept):
    """The coded values of every qualitative evaluation named ``concept`` in the SR."""
    values = []

    def walk(items):
        for item in items:
            name = item.ConceptNameCodeSequence[0] if "ConceptNameCodeSequence" in item else None
            if (
                item.ValueType == "CODE"
                and name is not None
                and (name.CodeValue, name.CodingSchemeDesignator)
                == (concept.value, concept.scheme_designator)
            ):
                code = item.ConceptCodeSequence[0]
                values.append((code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning))
            walk(item.get("ContentSequence", []))

    walk(dataset.ContentSequence)
    return values


@pytest.mark.django_db
def test_every_coding_scheme_the_sr_uses_is_standard_or_declared(
    lesion_a, coordinator, api_client_for
):
    ds = pydicom.dcmread(io.BytesIO(fetch_sr(api_client_for(coordinator), lesion_a.study)))
    declared = {item.CodingSchemeDesignator: item for item in ds.CodingSchemeIdentificationSequence}
    assert (
        declared[SCHEME].CodingSchemeName and declared[SCHEME].CodingSchemeResponsibleOrganization
    )
    used = {item.CodingSchemeDesignator for item in coded_items(ds)}
    assert SCHEME in used
    assert used <= STANDARD_SCHEMES | set(declared), used - STANDARD_SCHEMES - set(declared)


@pytest.mark.django_db
def test_the_sr_codes_pathology_with_snomed_ct_where_a_concept_exists(
    lesion_a, lesion_b, coordinator, api_client_for
):
    client = api_client_for(coordinator)
    clear_cell = pydicom.dcmread(io.BytesIO(fetch_sr(client, lesion_a.study)))
    assert set(evaluation_values(clear_cell, PATHOLOGY)) == {
        ("254915003", "SCT", "Clear cell carcinoma of kidney")
    }
    assert set(evaluation_values(clear_cell, MALIGNANCY)) == {("21594007", "SCT", "Malignant")}
    services.set_pathology(lesion_a, "other_rcc", user=coordinator)
    other_rcc = pydicom.dcmread(io.BytesIO(fetch_sr(client, lesion_a.study)))
    assert set(evaluation_values(other_rcc, PATHOLOGY)) == {
        ("702391001", "SCT", "Renal cell carcinoma")
    }
    oncocytoma = pydicom.dcmread(io.BytesIO(fetch_sr(client, lesion_b.study)))
    assert set(evaluation_values(oncocytoma, PATHOLOGY)) == {
        ("oncocytoma", SCHEME, "oncocytoma")
    }  # no confirmed SCT code
    assert set(evaluation_values(oncocytoma, MALIGNANCY)) == {("30807003", "SCT", "Benign")}


def observer_names(dataset):
    return [
        str(item.PersonName)
        for item in dataset.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == "121008"
    ]  # DCM Person Observer Name


@pytest.mark.django_db
def test_the_person_observer_is_the_requesting_user_by_name(lesion_a, make_user, api_client_for):
    named = make_user("jdoe", "coordinator", first_name="Jane", last_name="Doe")
    ds = pydicom.dcmread(io.BytesIO(fetch_sr(api_client_for(named), lesion_a.study)))
    assert observer_names(ds) == ["Doe^Jane"]
    unnamed = make_user("rad7", "coordinator")
    ds = pydicom.dcmread(io.BytesIO(fetch_sr(api_client_for(unnamed), lesion_a.study)))
    assert observer_names(ds) == ["rad7^"]


@pytest.mark.django_db
def test_the_sr_passes_dciodvfy_without_errors(
    annotated, lesion_a, coordinator, api_client_for, tmp_path
):
    if shutil.which("dciodvfy") is None:
        service_missing("dciodvfy (dicom3tools) is not installed")
    path = tmp_path / "sr.dcm"
    path.write_bytes(fetch_sr(api_client_for(coordinator), annotated))
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    report = result.stdout + result.stderr
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert "Comprehensive3DSR" in report and not errors, report
    assert "(0x0040,0xa123) PN Person Name" not in report, (
        report
    )  # the observer's name is well formed


@pytest.mark.django_db
def test_an_sr_of_the_former_format_with_private_pathology_codes_still_imports(
    annotated, coordinator, api_client_for
):
    """SRs exported before the SNOMED CT subtypes: every pathology value private, no scheme declared."""
    client = api_client_for(coordinator)
    ds = pydicom.dcmread(io.BytesIO(fetch_sr(client, annotated)))
    del ds.CodingSchemeIdentificationSequence

    def walk(items):
        for item in items:
            name = item.ConceptNameCodeSequence[0] if "ConceptNameCodeSequence" in item else None
            if item.ValueType == "CODE" and name is not None and name.CodeValue == PATHOLOGY.value:
                value = item.ConceptCodeSequence[0]
                value.CodeValue, value.CodingSchemeDesignator, value.CodeMeaning = (
                    "ccRCC",
                    SCHEME,
                    "clear cell RCC",
                )
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    assert ("ccRCC", SCHEME, "clear cell RCC") in evaluation_values(ds, PATHOLOGY)
    before = geometry(annotated)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    Lesion.objects.filter(study=annotated).delete()
    response = client.post(
        "/api/v1/sr-imports/",
        {"file": SimpleUploadedFile("old.dcm", buffer.getvalue())},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert geometry(annotated) == before


@pytest.mark.django_db
def test_an_sr_of_a_study_the_user_cannot_open_is_refused_like_one_of_no_study(
    annotated, other_reader, coordinator, api_client_for
):
    data = fetch_sr(api_client_for(coordinator), annotated)
    elsewhere = pydicom.dcmread(io.BytesIO(data))
    elsewhere.StudyInstanceUID = "2.25.1234567890"
    buffer = io.BytesIO()
    elsewhere.save_as(buffer, enforce_file_format=True)
    Lesion.objects.filter(study=annotated).delete()
    client = api_client_for(
        other_reader
    )  # assigned to reader study B only: study A is not theirs to open
    invisible = client.post(
        "/api/v1/sr-imports/", {"file": SimpleUploadedFile("sr.dcm", data)}, format="multipart"
    )
    absent = client.post(
        "/api/v1/sr-imports/",
        {"file": SimpleUploadedFile("sr.dcm", buffer.getvalue())},
        format="multipart",
    )
    assert (invisible.status_code, invisible.json()) == (absent.status_code, absent.json())
    assert invisible.status_code == 400 and "StudyInstanceUID" in invisible.json()["file"][0]
    assert not Lesion.objects.filter(study=annotated).exists()
