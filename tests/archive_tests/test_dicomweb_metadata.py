"""WADO-RS series and study metadata: the same bytes as the DICOM JSON of every instance, kept per process.

The web process keeps each series' metadata text (``archive.dicomweb.wado.series_metadata_items``);
these tests check that what it answers is what the stored instances say, also after an
instance was added to or removed from a series it had kept, and that a kept series is not
shown to a reader who may not see its study.
"""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from archive.dicomweb import wado
from archive.ingest import ingest_upload
from archive.models import Instance
from tests.factories.dicom import dataset_bytes, make_ct_series, make_ct_study

BASE = "http://testserver/dicomweb"


@pytest.fixture
def study(reader):
    """A 2-phase study of 3 slices per phase, uploaded by ``reader``."""
    phases = make_ct_study(n=3, phases=("NC", "CM"))
    files = [
        (f"{ds.SOPInstanceUID}.dcm", dataset_bytes(ds))
        for slices in phases.values()
        for ds in slices
    ]
    report = ingest_upload(files, reader)
    assert report.status == "stored", report.as_dict()
    return phases


def expected_json(instances):
    """The metadata answer as built before the cache: json.dumps of every instance's dict, in series order."""
    items = []
    for instance in instances:
        series = instance.series
        item = dict(instance.metadata)
        frames = ",".join(str(i) for i in range(1, instance.number_of_frames + 1))
        item["7FE00010"] = {
            "vr": "OW",
            "BulkDataURI": f"{BASE}/studies/{series.study.study_instance_uid}"
            f"/series/{series.series_instance_uid}/instances/{instance.sop_instance_uid}/frames/{frames}",
        }
        items.append(item)
    return json.dumps(items).encode()


def stored(**filters):
    return list(
        Instance.objects.filter(**filters)
        .select_related("series__study")
        .order_by("series__series_number", "series_id", "slice_position", "instance_number", "id")
    )


def metadata_column_sql():
    quote = connection.ops.quote_name
    return f"{quote(Instance._meta.db_table)}.{quote('metadata')}"


def series_url(slices):
    return f"/dicomweb/studies/{slices[0].StudyInstanceUID}/series/{slices[0].SeriesInstanceUID}/metadata"


def get_metadata(client, url):
    return client.get(url, HTTP_ACCEPT="application/dicom+json")


@pytest.mark.django_db
def test_study_and_series_metadata_are_byte_for_byte_the_json_of_their_instances(
    study, reader, api_client_for
):
    client = api_client_for(reader)
    study_uid, cm_uid = study["CM"][0].StudyInstanceUID, study["CM"][0].SeriesInstanceUID
    for _ in range(2):  # built, then kept
        whole = get_metadata(client, f"/dicomweb/studies/{study_uid}/metadata")
        assert whole.status_code == 200 and whole["Content-Type"] == "application/dicom+json"
        assert whole.content == expected_json(stored(series__study__study_instance_uid=study_uid))
        one = get_metadata(client, f"/dicomweb/studies/{study_uid}/series/{cm_uid}/metadata")
        assert one.content == expected_json(stored(series__series_instance_uid=cm_uid))
        assert len(json.loads(one.content)) == 3


@pytest.mark.django_db
def test_a_repeated_series_metadata_request_does_not_read_the_instances_again(
    study, reader, api_client_for
):
    client = api_client_for(reader)
    url = series_url(study["NC"])
    first = get_metadata(client, url)
    with CaptureQueriesContext(connection) as queries:
        again = get_metadata(client, url)
    assert again.status_code == 200 and again.content == first.content
    assert not [q["sql"] for q in queries.captured_queries if metadata_column_sql() in q["sql"]]


@pytest.mark.django_db
def test_series_metadata_shows_an_instance_added_after_it_was_kept(study, reader, api_client_for):
    client = api_client_for(reader)
    nc = study["NC"]
    url = series_url(nc)
    assert len(json.loads(get_metadata(client, url).content)) == 3
    (extra,) = make_ct_series(
        1,
        phase="NC",
        study_uid=nc[0].StudyInstanceUID,
        series_uid=nc[0].SeriesInstanceUID,
        frame_of_reference_uid=nc[0].FrameOfReferenceUID,
        PatientID=nc[0].PatientID,
        ImagePositionPatient=[-160.0, -160.0, 2.5],
        InstanceNumber=99,
    )
    assert ingest_upload([("extra.dcm", dataset_bytes(extra))], reader).status == "stored"
    after = get_metadata(client, url)
    assert after.content == expected_json(
        stored(series__series_instance_uid=nc[0].SeriesInstanceUID)
    )
    assert extra.SOPInstanceUID in [
        item["00080018"]["Value"][0] for item in json.loads(after.content)
    ]


@pytest.mark.django_db
def test_series_metadata_leaves_out_an_instance_deleted_after_it_was_kept(
    study, reader, api_client_for
):
    client = api_client_for(reader)
    cm = study["CM"]
    url = series_url(cm)
    assert len(json.loads(get_metadata(client, url).content)) == 3
    Instance.objects.filter(sop_instance_uid=cm[0].SOPInstanceUID).delete()
    after = json.loads(get_metadata(client, url).content)
    remaining = stored(series__series_instance_uid=cm[0].SeriesInstanceUID)
    assert [item["00080018"]["Value"][0] for item in after] == [
        i.sop_instance_uid for i in remaining
    ]
    assert cm[0].SOPInstanceUID not in [item["00080018"]["Value"][0] for item in after]


@pytest.mark.django_db
def test_kept_series_metadata_is_not_shown_to_a_reader_who_may_not_see_the_study(
    study, reader, other_reader, api_client_for
):
    url = series_url(study["NC"])
    assert get_metadata(api_client_for(reader), url).status_code == 200
    assert get_metadata(api_client_for(other_reader), url).status_code == 404
    unknown = f"/dicomweb/studies/{study['NC'][0].StudyInstanceUID}/series/1.2.3.4/metadata"
    assert get_metadata(api_client_for(reader), unknown).status_code == 404


@pytest.mark.django_db
def test_the_kept_metadata_stays_within_its_budget_and_answers_the_same_when_off(
    study, reader, api_client_for, settings
):
    client = api_client_for(reader)
    urls = [series_url(slices) for slices in study.values()]
    one_series = len(get_metadata(client, urls[0]).content)
    settings.DICOMWEB_METADATA_CACHE_MB = 1.5 * one_series / 2**20  # room for one series, not two
    answers = [get_metadata(client, url).content for url in urls]
    assert wado._series_metadata_size <= 1.5 * one_series
    settings.DICOMWEB_METADATA_CACHE_MB = 0
    with CaptureQueriesContext(connection) as queries:
        assert [get_metadata(client, url).content for url in urls] == answers
    assert sum(metadata_column_sql() in q["sql"] for q in queries.captured_queries) == len(
        urls
    )  # off: built each time
