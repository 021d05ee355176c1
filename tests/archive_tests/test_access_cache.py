"""Revoking access takes effect at once, even with the per-process access cache."""

import pytest

from annotations.models import ReaderStudy, ReaderStudyCase
from archive.ingest import ingest_upload
from archive.models import Study
from tests.factories.dicom import dataset_bytes, make_ct_series


@pytest.fixture
def assigned_study(coordinator, reader):
    slices = make_ct_series(2, phase="CM")
    ingest_upload([(f"{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)], coordinator)
    study = Study.objects.get()
    reader_study = ReaderStudy.objects.create(name="Cache check")
    ReaderStudyCase.objects.create(reader_study=reader_study, study=study)
    reader_study.readers.add(reader)
    return study, slices, reader_study


def frame_url(study, ds):
    return (
        f"/dicomweb/studies/{study.study_instance_uid}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/1"
    )


@pytest.mark.django_db
def test_reader_removed_from_the_reader_study_loses_image_access_at_once(
    client, reader, token_for, assigned_study
):
    study, slices, reader_study = assigned_study
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(reader)}"}
    assert client.get(frame_url(study, slices[0]), **auth).status_code == 200
    reader_study.readers.remove(reader)
    assert client.get(frame_url(study, slices[0]), **auth).status_code == 404


@pytest.mark.django_db
def test_deleted_token_is_refused_at_once(client, reader, token_for, assigned_study):
    from knox.models import AuthToken

    study, slices, _ = assigned_study
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(reader)}"}
    assert client.get(frame_url(study, slices[0]), **auth).status_code == 200
    AuthToken.objects.filter(user=reader).delete()
    assert client.get(frame_url(study, slices[0]), **auth).status_code == 401


@pytest.mark.django_db
def test_deactivated_user_is_refused_at_once(client, reader, token_for, assigned_study):
    study, slices, _ = assigned_study
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(reader)}"}
    assert client.get(frame_url(study, slices[0]), **auth).status_code == 200
    reader.is_active = False
    reader.save()
    assert client.get(frame_url(study, slices[0]), **auth).status_code in (401, 403)
