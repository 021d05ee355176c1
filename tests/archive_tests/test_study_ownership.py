"""Who may add to a study already in the archive, and who sees a study by upload: its creator."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotations.models import AuditEvent, ReaderStudy, ReaderStudyCase
from archive.ingest import NOT_YOURS, ingest_upload
from archive.models import Instance, Series, Study, Upload
from tests.factories.dicom import dataset_bytes, make_ct_dataset, make_ct_series

URL = "/api/v1/uploads/"


def upload(user, datasets):
    return ingest_upload(
        [(f"IM{i:04d}.dcm", dataset_bytes(ds)) for i, ds in enumerate(datasets)], user
    )


@pytest.fixture
def coordinators_study(coordinator):
    slices = make_ct_series(2, phase="NC")
    assert upload(coordinator, slices).status == "stored"
    return Study.objects.get(), slices[0]


def extra_slice(first, **overrides):
    """One more slice of ``first``'s study (same PatientID), in its series unless overridden."""
    values = {
        "StudyInstanceUID": first.StudyInstanceUID,
        "SeriesInstanceUID": first.SeriesInstanceUID,
        "FrameOfReferenceUID": first.FrameOfReferenceUID,
        "InstanceNumber": 9,
        "ImagePositionPatient": [-160.0, -160.0, -50.0],
    }
    return make_ct_dataset(**{**values, **overrides})


def archive_state():
    return (
        Instance.objects.count(),
        Series.objects.count(),
        Upload.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.mark.django_db
def test_a_reader_cannot_add_a_slice_to_someone_elses_study_nor_see_it_through_that_slice(
    api_client_for, reader, coordinators_study, stored_files
):
    study, first = coordinators_study
    before, files_before = archive_state(), stored_files()
    report = upload(reader, [extra_slice(first)])
    assert report.status == "rejected"
    assert report.files[0].reason == NOT_YOURS
    assert archive_state() == before and stored_files() == files_before
    assert not Study.objects.visible_to(reader).exists()
    assert not Study.objects.is_visible_to(reader, study.pk)
    assert (
        api_client_for(reader).get(f"/api/v1/studies/{study.study_instance_uid}/").status_code
        == 404
    )


@pytest.mark.django_db
def test_an_assigned_reader_cannot_add_a_series_to_a_case_others_read(reader, coordinators_study):
    study, first = coordinators_study
    reader_study = ReaderStudy.objects.create(name="Pilot")
    ReaderStudyCase.objects.create(reader_study=reader_study, study=study)
    reader_study.readers.add(reader)
    new_series = make_ct_series(1, phase="CM", study_uid=first.StudyInstanceUID)
    report = upload(reader, new_series)
    assert report.status == "rejected" and report.files[0].reason == NOT_YOURS
    assert study.series.count() == 1


@pytest.mark.django_db
def test_the_refusal_reads_the_same_whether_the_study_is_visible_invisible_or_of_another_patient(
    reader, other_reader, coordinators_study
):
    study, first = coordinators_study
    reader_study = ReaderStudy.objects.create(name="Pilot")
    ReaderStudyCase.objects.create(reader_study=reader_study, study=study)
    reader_study.readers.add(reader)  # reader sees the study; other_reader does not
    visible = upload(reader, [extra_slice(first)]).as_dict()["files"][0]["reason"]
    invisible = upload(other_reader, [extra_slice(first)]).as_dict()["files"][0]["reason"]
    other_patient = upload(
        other_reader, [extra_slice(first, PatientID="SRM-0999", PatientName="SRM-0999")]
    )
    assert visible == invisible == other_patient.files[0].reason == NOT_YOURS
    assert "PatientID" not in invisible


@pytest.mark.django_db
def test_a_series_uid_of_someone_elses_study_is_refused_with_the_same_words(
    reader, coordinators_study
):
    _, first = coordinators_study
    report = upload(reader, [make_ct_dataset(SeriesInstanceUID=first.SeriesInstanceUID)])
    assert report.status == "rejected" and report.files[0].reason == NOT_YOURS


@pytest.mark.django_db
def test_the_creator_adds_a_series_to_their_own_study_and_the_addition_is_audited(reader):
    slices = make_ct_series(2, phase="NC")
    assert upload(reader, slices).status == "stored"
    study = Study.objects.get()
    assert study.created_by == reader
    assert not AuditEvent.objects.filter(
        object_type="study"
    ).exists()  # creating a study is the upload itself
    added = make_ct_series(2, phase="CM", study_uid=study.study_instance_uid)
    report = upload(reader, added)
    assert report.status == "stored"
    event = AuditEvent.objects.get(object_type="study", object_id=study.pk)
    assert event.user == reader and event.action == "update"
    assert event.changes["instances_added"] == [None, 2]
    assert event.changes["series_added"] == [None, [added[0].SeriesInstanceUID]]
    assert event.changes["upload"] == [None, report.upload.pk]


@pytest.mark.django_db
def test_a_coordinator_may_add_to_any_study_and_it_stays_its_creators(reader, coordinator):
    slices = make_ct_series(2, phase="NC")
    upload(reader, slices)
    report = upload(coordinator, [extra_slice(slices[0])])
    assert report.status == "stored"
    study = Study.objects.get()
    assert study.created_by == reader
    assert AuditEvent.objects.get(object_type="study").user == coordinator
    assert Study.objects.is_visible_to(reader, study.pk)


@pytest.mark.django_db
def test_visibility_by_upload_follows_the_creator_not_any_instance(reader, coordinators_study):
    study, _ = coordinators_study
    # An instance attributed to the reader's upload (as an earlier version could store it)
    readers_upload = Upload.objects.create(
        user=reader, channel=Upload.Channel.REST, status="stored"
    )
    Instance.objects.filter(pk=Instance.objects.first().pk).update(upload=readers_upload)
    assert not Study.objects.visible_to(reader).exists()
    assert not Study.objects.is_visible_to(reader, study.pk)


@pytest.mark.django_db
def test_the_api_upload_into_someone_elses_study_is_refused_with_422(
    api_client_for, reader, coordinators_study
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    _, first = coordinators_study
    data = SimpleUploadedFile(
        "IM9.dcm", dataset_bytes(extra_slice(first)), content_type="application/dicom"
    )
    response = api_client_for(reader).post(URL, {"files": [data]}, format="multipart")
    assert response.status_code == 422
    assert response.json()["files"][0]["reason"] == NOT_YOURS


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_each_study_the_user_of_its_earliest_upload(make_user):
    executor = MigrationExecutor(connection)
    executor.migrate([("portal", "0001_initial")])
    old = executor.loader.project_state([("portal", "0001_initial")]).apps
    first, later = make_user("first"), make_user("later")
    Patient = old.get_model("portal", "Patient")
    OldStudy, OldSeries = old.get_model("portal", "Study"), old.get_model("portal", "Series")
    OldUpload, OldInstance = old.get_model("portal", "Upload"), old.get_model("portal", "Instance")
    patient = Patient.objects.create(patient_id="SRM-0001")
    uploaded = OldStudy.objects.create(study_instance_uid="1.2.3", patient=patient)
    OldStudy.objects.create(study_instance_uid="1.2.4", patient=patient)  # no instances: no creator
    series = OldSeries.objects.create(series_instance_uid="1.2.3.1", study=uploaded, modality="CT")
    uploads = [
        OldUpload.objects.create(user_id=u.pk, channel="rest", status="stored")
        for u in (first, later)
    ]
    for i, each in enumerate(reversed(uploads)):  # the later upload's instance gets the lower id
        OldInstance.objects.create(
            sop_instance_uid=f"1.2.3.1.{i}",
            sop_class_uid="1.2",
            series=series,
            upload=each,
            rows=1,
            columns=1,
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            sha256=str(i) * 64,
            file=f"x{i}",
            size_bytes=1,
            metadata={},
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert Study.objects.get(study_instance_uid="1.2.3").created_by_id == first.pk
    assert Study.objects.get(study_instance_uid="1.2.4").created_by_id is None
