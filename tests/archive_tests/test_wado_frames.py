"""WADO-RS frames: the list is answered in its order, each frame once, and its length is capped."""

import pydicom
import pytest

from archive.dicomweb.multipart import parse_multipart_related
from archive.dicomweb.wado import FRAMES_MAX_PER_REQUEST, read_frames
from archive.ingest import ingest_upload
from archive.models import Instance


@pytest.fixture
def two_frames(reader):
    """The shipped Enhanced CT (two frames), de-identified on upload by ``reader``."""
    with open(pydicom.data.get_testdata_file("eCT_Supplemental.dcm"), "rb") as handle:
        report = ingest_upload([("eCT.dcm", handle.read())], reader, deidentify=True)
    assert report.status == "stored", report.as_dict()
    instance = Instance.objects.get()
    study = instance.series.study
    base = (
        f"/dicomweb/studies/{study.study_instance_uid}/series/{instance.series.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}/frames/"
    )
    return instance, base


def get_frames(client, url):
    return client.get(url, HTTP_ACCEPT='multipart/related; type="application/octet-stream"')


@pytest.mark.django_db
def test_frames_come_in_the_requested_order_and_a_repeated_number_once(
    two_frames, reader, api_client_for
):
    instance, base = two_frames
    frame_1, frame_2 = read_frames(instance, [1, 2])
    client = api_client_for(reader)
    for listed, expected in (("2,1", [frame_2, frame_1]), ("2,2", [frame_2])):
        response = get_frames(client, base + listed)
        assert response.status_code == 200
        parts = parse_multipart_related(response.content, response["Content-Type"])
        assert [content for _, content in parts] == expected, listed


@pytest.mark.django_db
def test_a_frame_list_longer_than_the_instance_has_frames_is_400(
    two_frames, reader, api_client_for
):
    _, base = two_frames
    response = get_frames(api_client_for(reader), base + "1,1,1")
    assert response.status_code == 400
    assert "the instance has 2 frame(s)" in response.json()["error"]


@pytest.mark.django_db
def test_a_frame_list_above_the_cap_is_400_naming_the_cap(two_frames, reader, api_client_for):
    _, base = two_frames
    response = get_frames(
        api_client_for(reader), base + ",".join(["1"] * (FRAMES_MAX_PER_REQUEST + 1))
    )
    assert response.status_code == 400
    assert f"at most {FRAMES_MAX_PER_REQUEST} per request" in response.json()["error"]
