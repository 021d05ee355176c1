"""DICOMweb against a live server, driven by the real ``dicomweb-client`` package."""

import io

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from archive.models import Instance, Patient, Study, Upload
from tests.archive_tests.support import client_for
from tests.factories.dicom import dataset_bytes, make_ct_dataset, make_ct_study


@pytest.fixture
def stored_study(live_server, reader, token_for):
    study = make_ct_study(n=4)
    client = client_for(live_server, token_for(reader))
    datasets = [ds for slices in study.values() for ds in slices]
    response = client.store_instances(datasets)
    return study, client, response


@pytest.mark.django_db(transaction=True)
def test_stow_qido_wado_round_trip_gives_back_the_stored_pixels(stored_study):
    study, client, response = stored_study
    assert len(response.ReferencedSOPSequence) == 16
    assert "FailedSOPSequence" not in response
    study_uid = study["NC"][0].StudyInstanceUID

    found = client.search_for_studies(search_filters={"PatientID": "SRM-0001"})
    assert [s["0020000D"]["Value"][0] for s in found] == [study_uid]
    assert found[0]["00201208"]["Value"] == [16]

    series = client.search_for_series(study_uid)
    assert len(series) == 4
    cm_uid = study["CM"][0].SeriesInstanceUID
    instances = client.search_for_instances(study_uid, cm_uid)
    assert {i["00080018"]["Value"][0] for i in instances} == {
        ds.SOPInstanceUID for ds in study["CM"]
    }

    metadata = client.retrieve_series_metadata(study_uid, cm_uid)
    assert len(metadata) == 4
    assert all("BulkDataURI" in m["7FE00010"] for m in metadata)
    assert all("00100010" in m for m in metadata)

    for ds in study["CM"]:
        frames = client.retrieve_instance_frames(
            study_uid,
            cm_uid,
            ds.SOPInstanceUID,
            frame_numbers=[1],
            media_types=("application/octet-stream",),
        )
        assert frames[0] == ds.PixelData
        assert np.array_equal(np.frombuffer(frames[0], "<u2").reshape(16, 16), ds.pixel_array)

    instance = client.retrieve_instance(study_uid, cm_uid, study["CM"][0].SOPInstanceUID)
    assert instance.PixelData == study["CM"][0].PixelData


@pytest.mark.django_db(transaction=True)
def test_qido_matching_limit_offset_and_includefield(stored_study):
    study, client, _ = stored_study
    study_uid = study["NC"][0].StudyInstanceUID
    assert client.search_for_studies(search_filters={"PatientID": "SRM-*"})[0]["0020000D"][
        "Value"
    ] == [study_uid]
    assert client.search_for_studies(search_filters={"PatientID": "OTHER"}) == []
    assert client.search_for_studies(search_filters={"StudyDate": "20240101-20240131"})
    assert client.search_for_studies(search_filters={"StudyDate": "20250101-"}) == []
    assert client.search_for_studies(search_filters={"Modality": "CT"})
    page = client.search_for_series(study_uid, limit=2, offset=1)
    assert [s["00200011"]["Value"][0] for s in page] == [3, 4]
    with_fields = client.search_for_studies(fields=["StudyDescription", "PatientAge"])
    assert with_fields[0]["00081030"]["Value"] == ["CT abdomen renal mass protocol"]
    root = client.search_for_series(search_filters={"Modality": "CT"})
    assert len(root) == 4


@pytest.mark.django_db(transaction=True)
def test_another_reader_finds_and_retrieves_nothing(
    stored_study, live_server, other_reader, token_for
):
    study, _, _ = stored_study
    study_uid = study["NC"][0].StudyInstanceUID
    other = client_for(live_server, token_for(other_reader))
    assert other.search_for_studies() == []
    response = requests.get(
        f"{live_server.url}/dicomweb/studies/{study_uid}/metadata",
        headers={"Authorization": f"Token {token_for(other_reader)}"},
    )
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_dicomweb_needs_authentication(live_server):
    assert requests.get(f"{live_server.url}/dicomweb/studies").status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_stow_of_a_file_with_identifiers_answers_409_and_stores_nothing(
    live_server, reader, token_for
):
    good = make_ct_dataset()
    named = make_ct_dataset(PatientName="Doe^John")
    boundary = "b0undary"
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + dataset_bytes(ds)
            + b"\r\n"
            for ds in (good, named)
        )
        + f"--{boundary}--\r\n".encode()
    )
    response = requests.post(
        f"{live_server.url}/dicomweb/studies",
        data=body,
        headers={
            "Authorization": f"Token {token_for(reader)}",
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
    )
    assert response.status_code == 409
    failed = response.json()["00081198"]["Value"]
    assert len(failed) == 2
    assert {f["00081197"]["Value"][0] for f in failed} == {0xC000, 0x0110}
    assert "PatientName" in response.headers["Warning"]
    assert not Instance.objects.exists() and not Study.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_stow_with_wrong_content_type_is_415(live_server, reader, token_for):
    response = requests.post(
        f"{live_server.url}/dicomweb/studies",
        data=b"x",
        headers={"Authorization": f"Token {token_for(reader)}", "Content-Type": "application/json"},
    )
    assert response.status_code == 415


@pytest.mark.django_db(transaction=True)
def test_stow_into_a_named_study_refuses_instances_of_another_study(live_server, reader, token_for):
    ds = make_ct_dataset()
    client = DICOMwebClient(
        url=f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {token_for(reader)}"}
    )
    client.set_chunk_size(10**9)
    with pytest.raises(requests.HTTPError) as error:
        client.store_instances([ds], study_instance_uid="1.2.3.4")
    assert error.value.response.status_code == 409
    assert "does not match 1.2.3.4" in error.value.response.headers["Warning"]
    assert (
        not Instance.objects.exists()
        and not Study.objects.exists()
        and not Patient.objects.exists()
    )
    assert not Upload.objects.exists()


def _part10_prefix(data):
    return data[128:132] == b"DICM"


@pytest.mark.django_db(transaction=True)
def test_a_data_set_sent_without_preamble_is_stored_and_served_as_a_part10_file(
    live_server, reader, token_for, api_client_for
):
    """dicomweb-client sends an in-memory data set (no preamble, no DICM): every retrieval path still gives PS3.10."""
    ds = make_ct_dataset()
    ds.preamble = None  # a data set built in memory, as highdicom makes an SR or SEG
    client = client_for(live_server, token_for(reader))
    response = client.store_instances([ds])
    assert "FailedSOPSequence" not in response
    instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    with instance.file.open("rb") as handle:
        stored = handle.read()
    assert _part10_prefix(stored)
    parsed = pydicom.dcmread(io.BytesIO(stored))  # force=False: a conformant file
    assert parsed.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert parsed.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert parsed.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian

    study_uid, series_uid = ds.StudyInstanceUID, ds.SeriesInstanceUID
    back = client.retrieve_instance(
        study_uid, series_uid, ds.SOPInstanceUID
    )  # InvalidDicomError before the fix
    assert back.PixelData == ds.PixelData and back.SOPInstanceUID == ds.SOPInstanceUID
    assert [i.SOPInstanceUID for i in client.retrieve_series(study_uid, series_uid)] == [
        ds.SOPInstanceUID
    ]
    metadata = client.retrieve_instance_metadata(study_uid, series_uid, ds.SOPInstanceUID)
    assert (
        metadata["00080018"]["Value"] == [ds.SOPInstanceUID]
        and "BulkDataURI" in metadata["7FE00010"]
    )
    frames = client.retrieve_instance_frames(
        study_uid,
        series_uid,
        ds.SOPInstanceUID,
        frame_numbers=[1],
        media_types=("application/octet-stream",),
    )
    assert frames == [ds.PixelData]
    download = api_client_for(reader).get(f"/api/v1/instances/{ds.SOPInstanceUID}/file/")
    assert _part10_prefix(b"".join(download.streaming_content))


@pytest.mark.django_db(transaction=True)
def test_the_same_data_set_with_and_without_preamble_is_one_instance(
    live_server, reader, token_for
):
    ds = make_ct_dataset()
    client = client_for(live_server, token_for(reader))
    in_memory = pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))
    in_memory.preamble = None
    client.store_instances([in_memory])
    response = client.store_instances(
        [ds]
    )  # the same data set as a Part 10 file, with its own File Meta
    assert "FailedSOPSequence" not in response
    assert [r.ReferencedSOPInstanceUID for r in response.ReferencedSOPSequence] == [
        ds.SOPInstanceUID
    ]
    assert Instance.objects.count() == 1
    assert Upload.objects.order_by("-pk").first().status == "duplicate"

    # Both versions in one upload are one instance too; another data set under the same UID is still a conflict.
    other = make_ct_dataset()
    bare = pydicom.dcmread(io.BytesIO(dataset_bytes(other)))
    bare.preamble = None
    response = client.store_instances([other, bare])
    assert "FailedSOPSequence" not in response
    assert Instance.objects.filter(sop_instance_uid=other.SOPInstanceUID).count() == 1
    changed = pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))
    changed.SeriesDescription = "changed"
    with pytest.raises(requests.HTTPError) as error:
        client.store_instances([changed])
    assert error.value.response.status_code == 409
    assert "SOPInstanceUID conflict" in error.value.response.headers["Warning"]


@pytest.mark.django_db(transaction=True)
def test_a_file_stored_without_preamble_by_an_earlier_version_is_served_as_part10(
    live_server, reader, token_for, api_client_for
):
    ds = make_ct_dataset()
    client = client_for(live_server, token_for(reader))
    client.store_instances([ds])
    instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    bare = io.BytesIO()
    legacy = pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))
    del legacy.file_meta
    legacy.preamble = None
    legacy.save_as(bare, implicit_vr=True, little_endian=True)  # no preamble, no meta
    assert bare.getvalue()[:2] == b"\x08\x00"
    instance.file = default_storage.save("instances/legacy/bare.dcm", ContentFile(bare.getvalue()))
    instance.save(update_fields=["file"])

    back = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert back.PixelData == ds.PixelData
    assert back.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    frames = client.retrieve_instance_frames(
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        frame_numbers=[1],
        media_types=("application/octet-stream",),
    )
    assert frames == [ds.PixelData]
    download = api_client_for(reader).get(f"/api/v1/instances/{ds.SOPInstanceUID}/file/")
    assert download.status_code == 200 and _part10_prefix(download.content)


@pytest.mark.django_db(transaction=True)
def test_frames_and_instances_are_cacheable_by_the_browser_and_revalidate_without_a_body(
    stored_study, live_server, reader, other_reader, token_for
):
    study, _, _ = stored_study
    ds = study["CM"][0]
    base = (
        f"{live_server.url}/dicomweb/studies/{ds.StudyInstanceUID}"
        f"/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
    mine = {"Authorization": f"Token {token_for(reader)}"}
    for url, accept in (
        (f"{base}/frames/1", 'multipart/related; type="application/octet-stream"'),
        (base, 'multipart/related; type="application/dicom"'),
    ):
        first = requests.get(url, headers={**mine, "Accept": accept})
        assert first.status_code == 200
        assert (
            "immutable" in first.headers["Cache-Control"]
            and "private" in first.headers["Cache-Control"]
        )
        etag = first.headers["ETag"]
        again = requests.get(url, headers={**mine, "Accept": accept, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
        # The validator never stands in for the access check.
        other = requests.get(
            url,
            headers={
                "Authorization": f"Token {token_for(other_reader)}",
                "Accept": accept,
                "If-None-Match": etag,
            },
        )
        assert other.status_code == 404
    assert (
        requests.get(f"{base}/frames/1,1", headers=mine).status_code == 400
    )  # more numbers than the one frame
