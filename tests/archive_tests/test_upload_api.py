"""POST /api/v1/uploads/: the REST upload path, all-or-nothing, with per-file reports."""

import io
import zipfile

import pydicom
import pytest

from archive import deid
from archive.models import Instance, Patient, Series, Study, Upload
from tests.archive_tests.support import UPLOADS_URL, post
from tests.factories.dicom import (
    as_upload,
    dataset_bytes,
    make_ct_dataset,
    make_ct_series,
    make_ct_study,
)


def zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def study_files(n=3, **overrides):
    study = make_ct_study(n=n, **overrides)
    return {
        f"{phase}/IM{index:04d}.dcm": dataset_bytes(ds)
        for phase, slices in study.items()
        for index, ds in enumerate(slices, start=1)
    }


def nothing_stored():
    return not (
        Instance.objects.exists()
        or Series.objects.exists()
        or Study.objects.exists()
        or Patient.objects.exists()
        or Upload.objects.exists()
    )


@pytest.mark.django_db
def test_four_phase_study_in_a_zip_is_stored_with_phases_classified(
    api_client_for, reader, stored_files
):
    files = study_files(n=3)
    response = post(
        api_client_for(reader), [as_upload("study.zip", zip_bytes(files), "application/zip")]
    )
    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["status"] == "stored" and report["stored"] == 12
    assert {f["status"] for f in report["files"]} == {"stored"}
    assert Instance.objects.count() == 12 and len(stored_files()) == 12
    phases = {s.series_number: s.phase for s in Series.objects.all()}
    assert phases == {2: "NC", 3: "CM", 4: "NG", 5: "EX"}
    cm = Series.objects.get(phase="CM")
    assert "35 s" in cm.phase_reason
    instance = Instance.objects.filter(series=cm).first()
    assert instance.rows == 16 and instance.pixel_spacing == [0.7, 0.7]
    assert instance.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert [i.slice_position for i in cm.instances.all()] == sorted(
        i.slice_position for i in cm.instances.all()
    )
    assert Patient.objects.get().age_years == 61


@pytest.mark.django_db
def test_upload_with_patient_name_is_rejected_and_nothing_is_stored(
    api_client_for, reader, stored_files
):
    good = dataset_bytes(make_ct_dataset())
    named = dataset_bytes(make_ct_dataset(PatientName="Doe^John"))
    response = post(
        api_client_for(reader), [as_upload("good.dcm", good), as_upload("IM0003.dcm", named)]
    )
    assert response.status_code == 422
    report = response.json()
    assert report["status"] == "rejected"
    by_file = {f["file"]: f for f in report["files"]}
    assert by_file["IM0003.dcm"]["status"] == "rejected"
    assert "PatientName" in by_file["IM0003.dcm"]["reason"]
    assert "Doe" not in response.content.decode()
    assert by_file["good.dcm"]["status"] == "not stored"
    assert nothing_stored() and stored_files() == []


@pytest.mark.django_db
def test_reupload_of_the_same_files_is_a_duplicate_no_op(api_client_for, reader, stored_files):
    data = dataset_bytes(make_ct_dataset())
    client = api_client_for(reader)
    assert post(client, [as_upload("a.dcm", data)]).status_code == 201
    again = post(client, [as_upload("a.dcm", data)])
    assert again.status_code == 200
    assert again.json()["files"][0]["status"] == "duplicate"
    assert Instance.objects.count() == 1 and len(stored_files()) == 1


@pytest.mark.django_db
def test_same_sop_instance_uid_with_different_bytes_is_a_conflict(
    api_client_for, reader, stored_files
):
    original = make_ct_dataset()
    client = api_client_for(reader)
    assert post(client, [as_upload("a.dcm", dataset_bytes(original))]).status_code == 201
    changed = make_ct_dataset(
        SOPInstanceUID=original.SOPInstanceUID,
        StudyInstanceUID=original.StudyInstanceUID,
        SeriesInstanceUID=original.SeriesInstanceUID,
        InstanceNumber=7,
    )
    response = post(client, [as_upload("b.dcm", dataset_bytes(changed))])
    assert response.status_code == 422
    assert "conflict" in response.json()["files"][0]["reason"]
    assert Instance.objects.count() == 1 and len(stored_files()) == 1


@pytest.mark.django_db
def test_zip_with_parent_directory_entry_is_refused(api_client_for, reader, stored_files):
    archive = zip_bytes(
        {
            "ok.dcm": dataset_bytes(make_ct_dataset()),
            "../evil.dcm": dataset_bytes(make_ct_dataset()),
        }
    )
    response = post(api_client_for(reader), [as_upload("x.zip", archive, "application/zip")])
    assert response.status_code == 422
    assert any(
        "evil" in f["file"] or "evil" in f.get("reason", "") for f in response.json()["files"]
    )
    assert nothing_stored() and stored_files() == []


@pytest.mark.django_db
def test_zip_bomb_is_refused_without_storing_anything(
    api_client_for, reader, stored_files, settings
):
    settings.UPLOAD_MAX_TOTAL_BYTES = 50 * 1024 * 1024
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.dcm", "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(300):
                member.write(block)
    response = post(
        api_client_for(reader), [as_upload("bomb.zip", buffer.getvalue(), "application/zip")]
    )
    assert response.status_code == 422
    assert nothing_stored() and stored_files() == []


@pytest.mark.django_db
def test_other_sop_class_is_refused_naming_the_class(api_client_for, reader):
    mr = make_ct_dataset(SOPClassUID="1.2.840.10008.5.1.4.1.1.4", Modality="MR")
    mr.file_meta.MediaStorageSOPClassUID = mr.SOPClassUID
    response = post(api_client_for(reader), [as_upload("mr.dcm", dataset_bytes(mr))])
    assert response.status_code == 422
    assert "MR Image Storage" in response.json()["files"][0]["reason"]


@pytest.mark.django_db
def test_file_that_is_not_dicom_is_refused_with_its_name(api_client_for, reader):
    response = post(
        api_client_for(reader), [as_upload("notes.txt", b"hello, not an image", "text/plain")]
    )
    assert response.status_code == 422
    row = response.json()["files"][0]
    assert row["file"] == "notes.txt" and row["status"] == "rejected" and "DICOM" in row["reason"]


@pytest.mark.django_db
def test_deidentify_true_stores_files_without_direct_identifiers(
    api_client_for, reader, stored_files
):
    slices = make_ct_series(
        3,
        phase="CM",
        PatientName="Doe^Jane",
        PatientBirthDate="19600101",
        InstitutionName="General Hospital",
        ReferringPhysicianName="Who^Doctor",
        AccessionNumber="A123",
        PatientIdentityRemoved=None,
        PatientID="MRN-778899",
    )
    for ds in slices:
        ds.add_new(0x00091010, "LO", "private vendor data")
    files = [as_upload(f"IM{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)]
    refused = post(api_client_for(reader), files)
    assert refused.status_code == 422 and nothing_stored()
    files = [as_upload(f"IM{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)]
    response = post(api_client_for(reader), files, deidentify="true")
    assert response.status_code == 201, response.json()
    pseudonyms = set()
    for path in stored_files():
        ds = pydicom.dcmread(path)
        assert deid.check_deidentified(ds) == []
        assert "PatientBirthDate" not in ds or not ds.PatientBirthDate
        assert "InstitutionName" not in ds or not ds.InstitutionName
        assert not any(element.tag.is_private for element in ds.iterall())
        assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
        assert ds.PatientAge == "061Y" and ds.PatientSex == "F"
        assert ds.StudyInstanceUID != slices[0].StudyInstanceUID
        pseudonyms.add(ds.PatientID)
    assert len(pseudonyms) == 1 and "778899" not in pseudonyms.pop()
    assert Study.objects.count() == 1 and Series.objects.count() == 1


@pytest.mark.django_db
def test_anonymous_upload_is_refused(api_client_for):
    response = post(api_client_for(None), [as_upload("a.dcm", dataset_bytes(make_ct_dataset()))])
    assert response.status_code in (401, 403)
    assert nothing_stored()


@pytest.mark.django_db
def test_user_without_a_role_may_not_upload(api_client_for, make_user):
    response = post(
        api_client_for(make_user("nobody")), [as_upload("a.dcm", dataset_bytes(make_ct_dataset()))]
    )
    assert response.status_code == 403
    assert nothing_stored()


@pytest.mark.django_db
def test_upload_without_files_is_a_clear_400(api_client_for, reader):
    response = api_client_for(reader).post(UPLOADS_URL, {}, format="multipart")
    assert response.status_code == 400
    assert "files" in response.json()


@pytest.mark.django_db
def test_readers_see_only_their_own_uploads_and_coordinators_see_all(
    api_client_for, reader, other_reader, coordinator
):
    data = dataset_bytes(make_ct_dataset())
    assert post(api_client_for(reader), [as_upload("a.dcm", data)]).status_code == 201
    study_uid = Study.objects.get().study_instance_uid
    assert api_client_for(other_reader).get("/api/v1/studies/").json()["count"] == 0
    assert api_client_for(other_reader).get(f"/api/v1/studies/{study_uid}/").status_code == 404
    assert api_client_for(reader).get("/api/v1/studies/").json()["count"] == 1
    assert api_client_for(coordinator).get(f"/api/v1/studies/{study_uid}/").status_code == 200


@pytest.mark.django_db
def test_phase_override_is_for_coordinators_and_is_recorded(api_client_for, reader, coordinator):
    slices = make_ct_series(2, phase="NG")
    post(
        api_client_for(reader),
        [as_upload(f"{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)],
    )
    uid = slices[0].SeriesInstanceUID
    url = f"/api/v1/series/{uid}/phase/"
    assert api_client_for(reader).post(url, {"phase": "EX"}, format="json").status_code == 403
    assert Series.objects.get().phase == "NG"
    assert api_client_for(coordinator).post(url, {"phase": "XX"}, format="json").status_code == 400
    response = api_client_for(coordinator).post(url, {"phase": "EX"}, format="json")
    assert response.status_code == 200
    series = Series.objects.get()
    assert (series.phase, series.phase_source, series.automatic_phase, series.phase_set_by) == (
        "EX",
        "manual",
        "NG",
        coordinator,
    )


@pytest.mark.django_db
def test_instances_of_a_series_come_sorted_by_slice_position(api_client_for, reader):
    slices = make_ct_series(5, phase="CM")
    post(
        api_client_for(reader),
        [as_upload(f"{i}.dcm", dataset_bytes(ds)) for i, ds in reversed(list(enumerate(slices)))],
    )
    rows = (
        api_client_for(reader)
        .get(f"/api/v1/series/{slices[0].SeriesInstanceUID}/instances/")
        .json()
    )
    positions = [r["slice_position"] for r in rows]
    assert positions == sorted(positions) and len(positions) == 5
    file = api_client_for(reader).get(f"/api/v1/instances/{rows[0]['sop_instance_uid']}/file/")
    assert file.status_code == 200 and file["Content-Type"] == "application/dicom"


@pytest.mark.django_db
def test_coordinator_overrides_a_phase_from_the_studies_page_and_readers_cannot(
    client, reader, coordinator, api_client_for
):
    slices = make_ct_series(2, phase="CM")
    post(
        api_client_for(reader),
        [as_upload(f"{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)],
    )
    url = f"/series/{slices[0].SeriesInstanceUID}/phase/"
    client.force_login(reader)
    assert client.post(url, {"phase": "NG"}).status_code == 403
    client.force_login(coordinator)
    page = client.get("/")
    assert b'name="phase"' in page.content
    client.post(url, {"phase": "bogus"})
    assert Series.objects.get().phase == "CM"
    assert client.post(url, {"phase": "NG"}).status_code == 302
    series = Series.objects.get()
    assert (series.phase, series.phase_source, series.phase_set_by) == ("NG", "manual", coordinator)


@pytest.mark.django_db
def test_one_file_as_the_whole_body_is_stored_like_a_multipart_upload(
    api_client_for, reader, stored_files
):
    """What Orthanc's POST /instances and many DICOM tools send: Content-Type application/dicom, the file as body."""
    ds = make_ct_dataset()
    client = api_client_for(reader)
    response = client.post(
        UPLOADS_URL,
        dataset_bytes(ds),
        content_type="application/dicom",
        HTTP_CONTENT_DISPOSITION='attachment; filename="../IM0001.dcm"',
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["stored"] == 1 and body["files"][0]["file"] == "IM0001.dcm"
    assert Instance.objects.get().sop_instance_uid == ds.SOPInstanceUID
    again = client.post(UPLOADS_URL, dataset_bytes(ds), content_type="application/dicom")
    assert (
        again.status_code == 200
        and again.json()["duplicate"] == 1
        and again.json()["files"][0]["file"] == "body.dcm"
    )

    zipped = client.post(UPLOADS_URL, zip_bytes(study_files(n=1)), content_type="application/zip")
    assert zipped.status_code == 201 and zipped.json()["stored"] == 4


@pytest.mark.django_db
def test_a_bad_whole_body_upload_is_refused_with_its_reason_and_stores_nothing(
    api_client_for, reader, stored_files, settings
):
    client = api_client_for(reader)
    not_dicom = client.post(UPLOADS_URL, b"hello, not an image", content_type="application/dicom")
    assert not_dicom.status_code == 422
    assert (
        not_dicom.json()["files"][0]["status"] == "rejected"
        and "DICOM" in not_dicom.json()["files"][0]["reason"]
    )

    named = client.post(
        UPLOADS_URL,
        dataset_bytes(make_ct_dataset(PatientName="Doe^John")),
        content_type="application/dicom",
    )
    assert named.status_code == 422 and "PatientName" in named.json()["files"][0]["reason"]

    empty = client.post(UPLOADS_URL, b"", content_type="application/dicom")
    assert empty.status_code == 400 and "files" in empty.json()

    settings.UPLOAD_MAX_FILE_BYTES = 1000
    large = client.post(
        UPLOADS_URL, dataset_bytes(make_ct_dataset()), content_type="application/dicom"
    )
    assert large.status_code == 413 and "at most 1000" in large.json()["detail"]

    other_type = client.post(UPLOADS_URL, b"{}", content_type="application/json")
    assert other_type.status_code == 415
    assert nothing_stored() and stored_files() == []


@pytest.mark.django_db
def test_upload_whose_patient_id_is_not_a_pseudonym_is_rejected_and_nothing_is_stored(
    api_client_for, reader, stored_files, settings
):
    settings.DEID_PSEUDONYM_PATTERN = r"SRM-\d{4}"
    record_number = dataset_bytes(make_ct_dataset(PatientName="SRM-0001", PatientID="004711"))
    response = post(api_client_for(reader), [as_upload("IM0001.dcm", record_number)])
    assert response.status_code == 422
    reason = response.json()["files"][0]["reason"]
    assert "PatientID is not a pseudonym" in reason and "004711" not in reason
    assert nothing_stored() and stored_files() == []
