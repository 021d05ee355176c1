"""Every file shipped in pydicom's test data (and pydicom-data) through the upload path."""

import os

import pydicom.data
import pytest

from archive.ingest import ingest_upload
from archive.models import Instance, Upload


def shipped_files():
    return sorted(p for p in pydicom.data.get_testdata_files() if os.path.isfile(p))


@pytest.mark.django_db
@pytest.mark.parametrize("deidentify", [False, True], ids=["as-is", "deidentify"])
def test_each_shipped_file_is_stored_or_refused_with_a_reason_and_never_half_stored(
    reader, stored_files, deidentify
):
    files = shipped_files()
    assert len(files) > 50, "pydicom's test data should be installed"
    outcomes = {"stored": 0, "duplicate": 0, "rejected": 0, "skipped": 0}
    for path in files:
        name = os.path.basename(path)
        before = (Instance.objects.count(), len(stored_files()))
        with open(path, "rb") as handle:
            report = ingest_upload([(name, handle.read())], reader, deidentify=deidentify)
        row = report.files[0]
        outcomes[row.status if row.status in outcomes else "rejected"] += 1
        after = (Instance.objects.count(), len(stored_files()))
        if report.status == "rejected" or row.status == "skipped":
            assert row.reason, f"{name}: refused without a reason"
            assert after == before, f"{name}: refused but something was stored"
        elif row.status == "stored":
            assert Instance.objects.filter(sop_instance_uid=row.SOPInstanceUID).exists()
            assert after[0] == before[0] + 1 and after[1] >= before[1]
        else:
            assert row.status == "duplicate" and after == before
    print(f"\n{'deidentify' if deidentify else 'as-is'}: {outcomes} of {len(files)} files")
    assert outcomes["stored"] >= (10 if deidentify else 1)
    assert Upload.objects.filter(status="rejected").count() == 0


@pytest.mark.django_db
def test_all_shipped_files_in_one_rest_upload_get_a_report_not_a_500(
    api_client_for, reader, stored_files
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    uploads = []
    for path in shipped_files():
        with open(path, "rb") as handle:
            uploads.append(SimpleUploadedFile(os.path.basename(path), handle.read()))
    response = api_client_for(reader).post(
        "/api/v1/uploads/", {"files": uploads}, format="multipart"
    )
    assert response.status_code == 422
    report = response.json()
    assert len(report["files"]) == len(uploads)
    assert all(f["reason"] for f in report["files"] if f["status"] == "rejected")
    assert stored_files() == [] and not Instance.objects.exists()
