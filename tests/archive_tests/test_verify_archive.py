"""manage.py verify_archive: every stored file present and intact; files without a row listed, never deleted."""

import pytest

from archive.ingest import ingest_upload
from archive.models import Instance
from tests.archive_tests.support import verify
from tests.factories.dicom import dataset_bytes, make_ct_series


@pytest.fixture
def archive(reader, media_root):
    slices = make_ct_series(3, phase="NC")
    assert (
        ingest_upload(
            [(f"{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)], reader
        ).status
        == "stored"
    )
    return list(Instance.objects.order_by("instance_number"))


@pytest.mark.django_db
def test_an_intact_archive_passes(archive):
    code, out, _ = verify()
    assert code == 0
    assert (
        "3 instance(s) checked: 3 ok, 0 missing, 0 unreadable, 0 corrupt; 0 file(s) without an Instance"
        in out
    )


@pytest.mark.django_db
def test_a_missing_a_corrupt_and_an_unknown_file_are_each_named_and_the_exit_code_is_1(
    archive, media_root
):
    missing, corrupt, _ = archive
    (media_root / missing.file.name).unlink()
    damaged = media_root / corrupt.file.name
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x01")
    orphan = media_root / "instances" / "ff" / "ee" / ("ffee" + "0" * 60 + ".dcm")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left behind")
    code, out, summary = verify()
    assert code == 1
    lines = out.splitlines()
    assert any(
        l.startswith(f"missing  {missing.file.name}") and missing.sop_instance_uid in l
        for l in lines
    )
    assert any(l.startswith(f"corrupt  {corrupt.file.name}") and corrupt.sha256 in l for l in lines)
    assert any(l.startswith(f"orphan   instances/ff/ee/{orphan.name}") for l in lines)
    assert (
        "3 instance(s) checked: 1 ok, 1 missing, 0 unreadable, 1 corrupt; 1 file(s) without an Instance"
        in summary
    )
    assert orphan.exists() and Instance.objects.count() == 3  # nothing deleted
