"""QIDO-RS study results count the whole study, whoever uploaded which part of it."""

import pytest

from archive.ingest import ingest_upload
from tests.factories.dicom import dataset_bytes, make_ct_study

pytestmark = pytest.mark.django_db


def _store(slices, user):
    report = ingest_upload([(f"{ds.SOPInstanceUID}.dcm", dataset_bytes(ds)) for ds in slices], user)
    assert report.status == "stored", report.as_dict()


def test_a_reader_who_uploaded_one_series_sees_the_counts_and_modalities_of_the_whole_study(
    media_root, reader, coordinator, api_client_for
):
    study = make_ct_study(n=4)  # four phases x 4 slices, one study
    _store(study["NC"], reader)
    _store(study["CM"] + study["NG"] + study["EX"], coordinator)
    for user in (reader, coordinator):
        response = api_client_for(user).get("/dicomweb/studies")
        assert response.status_code == 200
        (found,) = response.json()
        assert found["00201206"]["Value"] == [4], user  # NumberOfStudyRelatedSeries
        assert found["00201208"]["Value"] == [16], user  # NumberOfStudyRelatedInstances
        assert found["00080061"]["Value"] == ["CT"], user  # ModalitiesInStudy


def test_study_counts_stay_per_study_over_a_page_of_several_studies(
    media_root, coordinator, api_client_for
):
    first, second = (
        make_ct_study(n=2, PatientID="SRM-0001"),
        make_ct_study(n=3, PatientID="SRM-0002"),
    )
    _store([ds for slices in first.values() for ds in slices], coordinator)
    _store(
        [ds for slices in second.values() for ds in slices][:6], coordinator
    )  # NC and CM (3 each) only
    found = api_client_for(coordinator).get("/dicomweb/studies").json()
    counts = {
        s["00100020"]["Value"][0]: (s["00201206"]["Value"][0], s["00201208"]["Value"][0])
        for s in found
    }
    assert counts == {"SRM-0001": (4, 8), "SRM-0002": (2, 6)}
    page = api_client_for(coordinator).get("/dicomweb/studies", {"limit": 1, "offset": 1}).json()
    assert [s["00100020"]["Value"][0] for s in page] == ["SRM-0002"]
