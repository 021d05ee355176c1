"""Memory stays bounded: bodies are spooled, bombs are refused before they inflate, retrieval streams.

Peak memory is measured with tracemalloc around the request (the request body itself is
built, and the modules a request imports are loaded, before measuring starts): each bound
is well below the bytes the upload holds or inflates to, so a path that holds an upload,
a bomb or a study whole in memory fails.
"""

import io
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.encaps import encapsulate
from pydicom.uid import DeflatedExplicitVRLittleEndian, RLELossless
from rest_framework.test import APIRequestFactory, force_authenticate

from archive.api import UploadViewSet
from archive.dicomweb.multipart import parse_multipart_related
from archive.dicomweb.qido import StudiesView
from archive.ingest import ingest_upload
from archive.models import Instance, Patient, Series, Study, Upload
from tests.factories.dicom import dataset_bytes, make_ct_dataset, make_ct_series

MB = 1024 * 1024
UPLOADS = "/api/v1/uploads/"


def peak_memory(call):
    """``call()``'s result and the most bytes Python held meanwhile beyond what it held before."""
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture
def warmed_up(api_client_for, reader):
    """The first upload of a process imports most of the portal; done here, before memory is measured."""
    identified = dataset_bytes(
        make_ct_dataset(PatientName="Doe^John")
    )  # refused: not de-identified
    client = api_client_for(reader)
    assert post_raw(client, identified, "application/dicom", "warm.dcm").status_code == 422
    assert (
        post_raw(
            client, zip_bytes([("IM.dcm", identified)]), "application/zip", "warm.zip"
        ).status_code
        == 422
    )
    for make_request in (stow_request, multipart_zip_request):
        _, _, call = make_request(reader, [make_ct_dataset(PatientName="Doe^John")])
        assert call().status_code in (409, 422)
    assert not Upload.objects.exists()


def zip_bytes(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def blank_slices(n, size=512):
    """``n`` valid CT slices of ``size`` x ``size`` zeros (half a MiB each at 512): they deflate about 1000:1."""
    return make_ct_series(n, Rows=size, Columns=size, PixelData=bytes(size * size * 2))


def nothing_stored(stored_files):
    return (
        not (
            Instance.objects.exists()
            or Series.objects.exists()
            or Study.objects.exists()
            or Patient.objects.exists()
            or Upload.objects.exists()
        )
        and stored_files() == []
    )


def post_raw(client, body, content_type, filename):
    return client.generic(
        "POST",
        UPLOADS,
        body,
        content_type=content_type,
        HTTP_CONTENT_DISPOSITION=f'attachment; filename="{filename}"',
    )


# ---------------------------------------------------------------- bombs


@pytest.mark.django_db
def test_a_zip_of_many_small_members_is_refused_by_the_ratio_over_the_whole_archive(
    api_client_for, reader, stored_files, warmed_up
):
    # 300 valid slices of half a MiB each: 150 MiB in a zip of about 0.3 MiB. Every member is
    # below the per-member grace of 1 MiB; the archive as a whole is ~500:1.
    body = zip_bytes(
        (f"IM{i:04d}.dcm", dataset_bytes(ds)) for i, ds in enumerate(blank_slices(300))
    )
    assert len(body) < 2 * MB
    client = api_client_for(reader)
    response, peak = peak_memory(lambda: post_raw(client, body, "application/zip", "many.zip"))
    assert response.status_code == 422, response.json()
    [refusal] = [f for f in response.json()["files"] if f["status"] == "rejected"]
    assert refusal["file"] == "many.zip"
    assert (
        "ratio above 200 over the whole archive" in refusal["reason"]
        and "decompression bomb" in refusal["reason"]
    )
    assert nothing_stored(stored_files)
    assert peak < 32 * MB


@pytest.fixture(scope="module")
def deflate_bomb():
    """A CT instance in Deflated Explicit VR Little Endian: 200 MiB of zero frames in about 0.2 MiB."""
    ds = make_ct_dataset(
        Rows=512, Columns=512, NumberOfFrames=400, PixelData=bytes(512 * 512 * 2 * 400)
    )
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    data = dataset_bytes(ds)
    assert len(data) < 2 * MB
    return data


@pytest.mark.django_db
def test_a_deflated_data_set_that_inflates_far_beyond_its_size_is_refused_before_it_is_inflated(
    deflate_bomb, api_client_for, reader, stored_files, warmed_up
):
    client = api_client_for(reader)
    response, peak = peak_memory(
        lambda: post_raw(client, deflate_bomb, "application/dicom", "deflated.dcm")
    )
    assert response.status_code == 422, response.json()
    [result] = response.json()["files"]
    assert result["file"] == "deflated.dcm"
    assert result["reason"].startswith("TransferSyntaxUID is Deflated Explicit VR Little Endian")
    assert "ratio above 200 (decompression bomb)" in result["reason"]
    assert nothing_stored(stored_files)
    assert peak < 32 * MB  # 200 MiB if inflated


def rle_zeros(rows, columns):
    """One RLE Lossless frame of 16-bit zeros (PS3.5 G): two segments of replicate runs of 128 bytes."""
    segment = b"\x81\x00" * (rows * columns // 128)  # header -127: the next byte 128 times
    header = (
        (2).to_bytes(4, "little")
        + (64).to_bytes(4, "little")
        + (64 + len(segment)).to_bytes(4, "little")
    )
    return header.ljust(64, b"\x00") + segment + segment


@pytest.mark.django_db
def test_a_header_claiming_more_pixel_data_than_the_limit_is_refused_before_decoding(
    api_client_for, reader, stored_files, settings, warmed_up
):
    settings.PIXELS_MAX_BYTES = 64 * MB
    # 8192 x 8192 x 16 bits: 128 MiB once decoded, 2 MiB as RLE.
    ds = make_ct_dataset(Rows=8192, Columns=8192, PixelData=encapsulate([rle_zeros(8192, 8192)]))
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    body = dataset_bytes(ds)
    client = api_client_for(reader)
    response, peak = peak_memory(lambda: post_raw(client, body, "application/dicom", "huge.dcm"))
    assert response.status_code == 422, response.json()
    [result] = response.json()["files"]
    assert result["file"] == "huge.dcm"
    assert result["reason"] == (
        "PixelData would decode to 134217728 bytes (Rows 8192 x Columns 8192 x NumberOfFrames 1 x "
        "SamplesPerPixel 1 x 2 byte(s)), more than the archive's limit of 67108864 bytes per instance"
    )
    assert nothing_stored(stored_files)
    assert peak < 32 * MB  # 128 MiB if decoded


@pytest.mark.django_db
def test_the_size_budget_holds_for_the_whole_upload_not_for_each_zip(
    api_client_for, reader, stored_files, settings
):
    settings.UPLOAD_MAX_TOTAL_BYTES = (
        3 * MB
    )  # each zip unpacks to 2 MiB: below alone, above together
    first, second = (
        zip_bytes(
            (f"IM{i}.dcm", dataset_bytes(ds))
            for i, ds in enumerate(make_ct_series(4, Rows=512, Columns=512))
        )
        for _ in range(2)
    )
    files = [
        SimpleUploadedFile(name, data, "application/zip")
        for name, data in (("a.zip", first), ("b.zip", second))
    ]
    response = api_client_for(reader).post(UPLOADS, {"files": files}, format="multipart")
    assert response.status_code == 422, response.json()
    refused = [f for f in response.json()["files"] if f["status"] == "rejected"]
    assert [f["file"] for f in refused] == ["b.zip"]
    assert f"more than {3 * MB} bytes" in refused[0]["reason"]
    assert nothing_stored(stored_files)


# ---------------------------------------------------------------- large uploads


def noisy_slices(n):
    """``n`` CT slices of 512 x 512 noise: half a MiB each, hardly compressible."""
    return make_ct_series(n, Rows=512, Columns=512)


def stow_request(user, datasets):
    boundary = "b0undary"
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + dataset_bytes(ds)
            + b"\r\n"
            for ds in datasets
        )
        + f"--{boundary}--\r\n".encode()
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    request = APIRequestFactory().generic(
        "POST", "/dicomweb/studies", body, content_type=content_type
    )
    force_authenticate(request, user)
    return request, len(body), lambda: StudiesView.as_view()(request)


def raw_zip_request(user, datasets):
    body = zip_bytes(
        ((f"IM{i:04d}.dcm", dataset_bytes(ds)) for i, ds in enumerate(datasets)), zipfile.ZIP_STORED
    )
    request = APIRequestFactory().generic("POST", UPLOADS, body, content_type="application/zip")
    force_authenticate(request, user)
    return request, len(body), lambda: UploadViewSet.as_view({"post": "create"})(request)


def multipart_zip_request(user, datasets):
    body = zip_bytes(
        ((f"IM{i:04d}.dcm", dataset_bytes(ds)) for i, ds in enumerate(datasets)), zipfile.ZIP_STORED
    )
    request = APIRequestFactory().post(
        UPLOADS,
        {"files": [SimpleUploadedFile("study.zip", body, "application/zip")]},
        format="multipart",
    )
    force_authenticate(request, user)
    return request, len(body), lambda: UploadViewSet.as_view({"post": "create"})(request)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make_request",
    [stow_request, raw_zip_request, multipart_zip_request],
    ids=["stow-rs", "raw-zip", "multipart-zip"],
)
def test_a_large_upload_is_stored_while_memory_stays_well_below_its_size(
    make_request, reader, stored_files, warmed_up
):
    n = 48
    _, size, call = make_request(reader, noisy_slices(n))
    assert size > 24 * MB
    response, peak = peak_memory(call)
    assert response.status_code in (200, 201), (
        response.data if hasattr(response, "data") else response.content
    )
    assert Instance.objects.count() == n and len(stored_files()) == n
    assert peak < 12 * MB, f"peak {peak / MB:.1f} MiB for a {size / MB:.1f} MiB upload"


# ---------------------------------------------------------------- WADO-RS retrieval


@pytest.mark.django_db
def test_retrieving_a_study_streams_it_with_memory_that_does_not_grow_with_its_instances(
    reader, api_client_for, media_root
):
    slices = make_ct_series(40, Rows=256, Columns=256)  # 128 KiB each, 5 MiB in all
    report = ingest_upload(
        [(f"IM{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)], reader
    )
    assert report.status == "stored"
    study = slices[0].StudyInstanceUID
    client = api_client_for(reader)

    def retrieve():
        response = client.get(
            f"/dicomweb/studies/{study}", HTTP_ACCEPT='multipart/related; type="application/dicom"'
        )
        total = 0
        for chunk in response.streaming_content:
            total += len(chunk)
        return response, total

    retrieve()  # imports done before memory is measured
    (response, total), peak = peak_memory(retrieve)
    assert response.status_code == 200 and response.streaming
    assert total > 5 * MB
    assert peak < 2 * MB, f"peak {peak / MB:.1f} MiB for a {total / MB:.1f} MiB study"
    # The streamed body is the study, instance after instance, each the stored file.
    response = client.get(
        f"/dicomweb/studies/{study}", HTTP_ACCEPT='multipart/related; type="application/dicom"'
    )
    parts = parse_multipart_related(b"".join(response.streaming_content), response["Content-Type"])
    stored = {
        i.sop_instance_uid: (media_root / i.file.name).read_bytes() for i in Instance.objects.all()
    }
    assert len(parts) == 40 and sorted(content for _, content in parts) == sorted(stored.values())
