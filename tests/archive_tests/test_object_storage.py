"""The archive on S3-compatible object storage (STORAGE_BACKEND=archive.object_storage.S3Storage).

Against moto's standalone S3 server (tests/object_store.py): uploads are stored under their
content address and served back by WADO-RS and the file API; an existing object is never
overwritten; an upload the store refuses halfway leaves no object and no row; and
``verify_archive`` checks the bucket as it checks a folder.
"""

import hashlib
import threading

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from archive.ingest import ingest_upload, storage_name
from archive.models import Instance, Patient, Series, Study, Upload
from tests.archive_tests.support import client_for, post, verify
from tests.django_process import run_django
from tests.factories.dicom import as_upload, dataset_bytes, make_ct_series, make_ct_study
from tests.object_store import PausingS3Storage, use_object_store


def test_the_storage_settings_come_from_the_environment_and_the_plain_s3_backend_means_the_portals():
    code = (
        "import django; django.setup(); from django.core.files.storage import storages; "
        "s = storages['default']; "
        "print(type(s).__module__, s.bucket_name, s.endpoint_url, s.addressing_style, s.location)"
    )
    shown = run_django(
        {
            "SECRET_KEY": "k",
            "DEID_SECRET": "d",
            "STORAGE_BACKEND": "storages.backends.s3.S3Storage",
            "AWS_STORAGE_BUCKET_NAME": "archive",
            "AWS_S3_ENDPOINT_URL": "http://minio:9000",
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_LOCATION": "portal",
        },
        code,
    )
    expected = ["archive.object_storage", "archive", "http://minio:9000", "path", "portal"]
    assert shown.stdout.split() == expected, shown.stderr


def _files(slices):
    return [(f"IM{index:04d}.dcm", dataset_bytes(ds)) for index, ds in enumerate(slices, start=1)]


def _address(data):
    return storage_name(hashlib.sha256(data).hexdigest())


@pytest.mark.django_db(transaction=True)
def test_a_stow_upload_is_stored_in_the_bucket_by_content_and_wado_serves_it_back(
    s3_storage, live_server, reader, token_for, api_client_for, media_root
):
    study = make_ct_study(n=3, phases=("NC", "CM"))
    datasets = [ds for slices in study.values() for ds in slices]
    client = client_for(live_server, token_for(reader))
    response = client.store_instances(datasets)
    assert len(response.ReferencedSOPSequence) == 6 and "FailedSOPSequence" not in response

    # Every instance is one object under its SHA-256; nothing went to the local media folder.
    instances = Instance.objects.all()
    assert s3_storage.keys() == sorted(i.file.name for i in instances) and len(instances) == 6
    body = s3_storage.read(instances[0].file.name)
    assert instances[0].file.name == _address(body) == storage_name(instances[0].sha256)
    assert not any(p.is_file() for p in media_root.rglob("*"))

    cm = study["CM"]
    study_uid, series_uid = cm[0].StudyInstanceUID, cm[0].SeriesInstanceUID
    for ds in cm:
        frames = client.retrieve_instance_frames(
            study_uid,
            series_uid,
            ds.SOPInstanceUID,
            frame_numbers=[1],
            media_types=("application/octet-stream",),
        )
        assert frames == [ds.PixelData]
    assert (
        client.retrieve_instance(study_uid, series_uid, cm[0].SOPInstanceUID).PixelData
        == cm[0].PixelData
    )
    retrieved = client.retrieve_series(study_uid, series_uid)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(ds.SOPInstanceUID for ds in cm)

    download = api_client_for(reader).get(f"/api/v1/instances/{cm[1].SOPInstanceUID}/file/")
    assert download.status_code == 200
    stored = Instance.objects.get(sop_instance_uid=cm[1].SOPInstanceUID).file.name
    assert b"".join(download.streaming_content) == s3_storage.read(stored)


@pytest.mark.django_db
def test_uploading_the_same_files_again_is_a_duplicate_and_adds_no_object(
    s3_storage, api_client_for, reader
):
    files = _files(make_ct_series(2, phase="NC"))
    client = api_client_for(reader)
    assert post(client, [as_upload(name, data) for name, data in files]).status_code == 201
    keys = s3_storage.keys()
    again = post(client, [as_upload(name, data) for name, data in files])
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert s3_storage.keys() == keys and len(keys) == 2


@pytest.mark.django_db
def test_an_object_already_at_the_content_address_is_never_overwritten(s3_storage, reader):
    """E.g. left by an upload whose rows a database restore lost: the bytes there are kept as they are."""
    ((name, data),) = _files(make_ct_series(1, phase="NC"))
    key = _address(data)
    s3_storage.client().put_object(
        Bucket=s3_storage.bucket, Key=key, Body=data, Metadata={"written-by": "earlier"}
    )

    assert ingest_upload([(name, data)], reader).status == "stored"
    head = s3_storage.client().head_object(Bucket=s3_storage.bucket, Key=key)
    assert head["Metadata"] == {"written-by": "earlier"}
    assert s3_storage.keys() == [key] and Instance.objects.get().file.name == key


@pytest.mark.django_db
def test_the_storage_refuses_to_save_over_an_existing_object_and_keeps_its_name(s3_storage):
    """What makes two uploads of one instance at once safe: only the store decides who wrote the key first."""
    name = "instances/aa/bb/first.dcm"
    assert default_storage.save(name, ContentFile(b"first")) == name
    with pytest.raises(FileExistsError):
        default_storage.save(name, ContentFile(b"second"))
    assert s3_storage.keys() == [name] and s3_storage.read(name) == b"first"


@pytest.mark.parametrize("stage", ["before", "after"])
@pytest.mark.django_db(transaction=True)
def test_of_two_uploads_of_one_file_at_once_one_stores_it_and_the_other_is_told_to_retry(
    s3_storage, settings, reader, stage
):
    """Upload 1 pauses just before (or after) writing the object; upload 2 of the same file is
    stored whole meanwhile. Upload 1 is then refused with a reason, and the object that the stored
    instance names stays (upload 1 neither overwrites it nor removes it when its rows fail)."""
    files = _files(make_ct_series(1, phase="NC"))
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.object_store.PausingS3Storage"},
    }
    paused, go_on, first = threading.Event(), threading.Event(), {}

    def pause(name):
        paused.set()
        go_on.wait(60)

    def upload_first():
        try:
            first["report"] = ingest_upload(files, reader)
        finally:
            connection.close()

    PausingS3Storage.pause, PausingS3Storage.stage = pause, stage
    thread = threading.Thread(target=upload_first)
    try:
        thread.start()
        assert paused.wait(60)
        PausingS3Storage.pause = None
        assert ingest_upload(files, reader).status == "stored"
    finally:
        PausingS3Storage.pause = None
        go_on.set()
        thread.join(60)
    report = first["report"].as_dict()
    assert report["status"] == "rejected"
    assert (
        "a concurrent upload stored some of these instances; retry" in report["files"][0]["reason"]
    )
    stored = Instance.objects.get()
    assert s3_storage.keys() == [stored.file.name]
    code, out, _ = verify()
    assert code == 0, out


def _deny_writing(store, keys):
    """The portal's key may do anything in the bucket except write ``keys``."""
    bucket = f"arn:aws:s3:::{store.bucket}"
    store.enforce_policy(
        [
            {"Effect": "Allow", "Action": "s3:*", "Resource": [bucket, f"{bucket}/*"]},
            {
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": [f"{bucket}/{key}" for key in keys],
            },
        ]
    )


def _nothing_in_the_archive():
    return not (
        Instance.objects.exists()
        or Series.objects.exists()
        or Study.objects.exists()
        or Patient.objects.exists()
        or Upload.objects.exists()
    )


@pytest.mark.django_db
def test_an_upload_the_store_refuses_halfway_leaves_no_object_and_no_row(
    s3_storage, settings, reader
):
    files = _files(make_ct_series(3, phase="NC"))
    _deny_writing(s3_storage, [_address(files[2][1])])
    use_object_store(s3_storage, settings)

    with pytest.raises(OSError, match="object storage"):
        ingest_upload(files, reader)
    s3_storage.stop_enforcing()
    assert s3_storage.keys() == []
    assert _nothing_in_the_archive()


@pytest.mark.django_db
def test_the_upload_api_answers_a_refused_write_with_503_and_stores_nothing(
    s3_storage, settings, api_client_for, reader
):
    files = _files(make_ct_series(3, phase="NC"))
    _deny_writing(s3_storage, [_address(files[1][1])])
    use_object_store(s3_storage, settings)

    response = post(api_client_for(reader), [as_upload(name, data) for name, data in files])
    assert (
        response.status_code == 503
        and "nothing of this request was stored" in response.json()["error"]
    )
    s3_storage.stop_enforcing()
    assert s3_storage.keys() == [] and _nothing_in_the_archive()


@pytest.mark.django_db
def test_verify_archive_checks_the_bucket_and_lists_objects_without_a_row(s3_storage, reader):
    assert ingest_upload(_files(make_ct_series(3, phase="NC")), reader).status == "stored"
    code, out, _ = verify()
    assert code == 0 and "3 instance(s) checked: 3 ok" in out

    missing, corrupt, _ = Instance.objects.order_by("instance_number")
    client = s3_storage.client()
    client.delete_object(Bucket=s3_storage.bucket, Key=missing.file.name)
    client.put_object(Bucket=s3_storage.bucket, Key=corrupt.file.name, Body=b"not the stored bytes")
    orphan = "instances/ff/ee/ffee" + "0" * 60 + ".dcm"
    client.put_object(Bucket=s3_storage.bucket, Key=orphan, Body=b"left behind")

    code, out, summary = verify()
    lines = out.splitlines()
    assert code == 1
    assert any(line.startswith(f"missing  {missing.file.name}") for line in lines)
    assert any(line.startswith(f"corrupt  {corrupt.file.name}") for line in lines)
    assert any(line.startswith(f"orphan   {orphan}") for line in lines)
    assert "1 ok, 1 missing, 0 unreadable, 1 corrupt; 1 file(s) without an Instance" in summary
    assert orphan in s3_storage.keys() and Instance.objects.count() == 3  # nothing deleted


@pytest.mark.django_db
def test_verify_archive_reports_an_object_it_may_not_read_as_unreadable(
    s3_storage, settings, reader
):
    assert ingest_upload(_files(make_ct_series(2, phase="NC")), reader).status == "stored"
    hidden = Instance.objects.order_by("instance_number").first().file.name
    bucket = f"arn:aws:s3:::{s3_storage.bucket}"
    s3_storage.enforce_policy(
        [
            {"Effect": "Allow", "Action": "s3:*", "Resource": [bucket, f"{bucket}/*"]},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": [f"{bucket}/{hidden}"]},
        ]
    )
    use_object_store(s3_storage, settings)

    code, out, summary = verify()
    assert code == 1
    assert any(line.startswith(f"unreadable {hidden}") for line in out.splitlines()), out
    assert "1 ok, 0 missing, 1 unreadable, 0 corrupt" in summary
    s3_storage.stop_enforcing()
    assert hidden in s3_storage.keys()
