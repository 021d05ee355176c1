"""The reading pages check access on the server: a case not assigned to the reader is a 404."""

import pytest

from annotations.models import ReaderStudy, ReaderStudyCase
from archive.ingest import ingest_upload
from archive.models import Study
from tests.factories.dicom import dataset_bytes, make_ct_study

pytestmark = pytest.mark.django_db


def small_study(user):
    study = make_ct_study(n=2)
    files = [
        (f"{phase}{i}.dcm", dataset_bytes(ds))
        for phase, slices in study.items()
        for i, ds in enumerate(slices)
    ]
    assert ingest_upload(files, user).status == "stored"
    return Study.objects.get(study_instance_uid=study["NC"][0].StudyInstanceUID)


@pytest.fixture
def reading_setup(coordinator, reader, other_reader):
    assigned, unassigned = small_study(coordinator), small_study(coordinator)
    mine = ReaderStudy.objects.create(name="mine", case_order=ReaderStudy.CaseOrder.FIXED)
    mine.readers.add(reader)
    ReaderStudyCase.objects.create(reader_study=mine, study=assigned, position=1)
    theirs = ReaderStudy.objects.create(name="theirs", case_order=ReaderStudy.CaseOrder.FIXED)
    theirs.readers.add(other_reader)
    ReaderStudyCase.objects.create(reader_study=theirs, study=unassigned, position=1)
    return mine, theirs, assigned, unassigned


def test_reader_opens_an_assigned_case_with_the_call_form(client, reader, reading_setup):
    mine, _, assigned, _ = reading_setup
    client.force_login(reader)
    response = client.get(f"/reading/{mine.pk}/{assigned.study_instance_uid}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-mode="reader"' in page and "call-form" in page and "pathology-form" not in page
    assert (
        "portal/build/case.js" in page and f"/api/v1/studies/{assigned.study_instance_uid}/" in page
    )


def test_reader_gets_404_for_a_case_not_assigned_to_them(client, reader, reading_setup):
    mine, theirs, assigned, unassigned = reading_setup
    client.force_login(reader)
    assert client.get(f"/reading/{theirs.pk}/{unassigned.study_instance_uid}/").status_code == 404
    assert client.get(f"/reading/{mine.pk}/{unassigned.study_instance_uid}/").status_code == 404
    assert client.get(f"/reading/{theirs.pk}/").status_code == 404


def test_reading_lists_only_the_readers_own_reader_studies(client, reader, reading_setup):
    client.force_login(reader)
    page = client.get("/reading/").content.decode()
    assert "mine" in page and "theirs" not in page


def test_study_viewer_is_for_coordinators_with_the_pathology_form(
    client, reader, coordinator, reading_setup
):
    _, _, assigned, _ = reading_setup
    client.force_login(coordinator)
    response = client.get(f"/studies/{assigned.study_instance_uid}/")
    assert response.status_code == 200
    assert (
        "pathology-form" in response.content.decode()
        and "call-form" not in response.content.decode()
    )
    client.force_login(reader)
    assert client.get(f"/studies/{assigned.study_instance_uid}/").status_code == 403


def test_reading_pages_ask_for_a_login(client, reading_setup):
    mine, _, assigned, _ = reading_setup
    response = client.get(f"/reading/{mine.pk}/{assigned.study_instance_uid}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
