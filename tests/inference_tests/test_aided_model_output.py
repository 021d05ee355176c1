"""The model a sequential reader study shows aided readers: frozen by the coordinator, served after the unaided lock."""

import pytest

from annotations.models import AuditEvent, ReaderCall, ReaderStudy
from inference.aided import freeze_model_version
from inference.models import ModelVersion, PredictionKind, ReaderStudyModel
from tests.factories.inference import ModelVersionFactory, PredictionFactory

CALLS = "/api/v1/calls/"


@pytest.fixture
def sequential(reader_study_a, lesion_a, coordinator):
    reader_study_a.design = ReaderStudy.Design.SEQUENTIAL
    reader_study_a.save(update_fields=["design"])
    version = ModelVersionFactory(is_active=True)
    PredictionFactory(model_version=version, lesion=lesion_a, score=0.31)
    PredictionFactory(
        model_version=version, lesion=lesion_a, kind=PredictionKind.OUT_OF_FOLD, fold=2, score=0.83
    )
    freeze_model_version(reader_study_a, version.pk, coordinator)
    return reader_study_a


def _url(rs, lesion):
    return f"/api/v1/reader-studies/{rs.pk}/lesions/{lesion.pk}/model-output/"


def _lock_unaided(client, rs, lesion):
    body = {
        "reader_study": rs.pk,
        "lesion": lesion.pk,
        "malignant": False,
        "probability": 30,
        "lock": True,
    }
    assert client.post(CALLS, body, format="json").status_code == 201


# role -> status before the reader's unaided call is locked, and after
SEQUENTIAL_MATRIX = {
    "reader": (403, 200),
    "other_reader": (404, 404),
    "coordinator": (200, 200),
    "admin": (200, 200),
    "anonymous": ((401, 403), (401, 403)),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(SEQUENTIAL_MATRIX))
def test_model_output_matrix_of_a_sequential_study(
    role, sequential, lesion_a, users, reader, api_client_for
):
    client = api_client_for(users[role])
    before, after = SEQUENTIAL_MATRIX[role]
    assert client.get(_url(sequential, lesion_a)).status_code in (
        before if isinstance(before, tuple) else (before,)
    )
    _lock_unaided(api_client_for(reader), sequential, lesion_a)
    assert client.get(_url(sequential, lesion_a)).status_code in (
        after if isinstance(after, tuple) else (after,)
    )


@pytest.mark.django_db
def test_the_aided_reader_sees_the_frozen_versions_held_out_score_named(
    sequential, lesion_a, reader, api_client_for
):
    client = api_client_for(reader)
    refused = client.get(_url(sequential, lesion_a))
    assert refused.status_code == 403 and "unaided call" in refused.json()["detail"]
    _lock_unaided(client, sequential, lesion_a)
    answer = client.get(_url(sequential, lesion_a)).json()
    assert answer["probability"] == pytest.approx(0.83) and answer["probability_percent"] == 83
    assert answer["score_kind"] == "out_of_fold"
    assert answer["model_version"]["name"] == "source-study/CM v1"
    assert "pathology" not in answer
    assert (
        client.get(f"/api/v1/lesions/{lesion_a.pk}/pathology/").status_code == 403
    )  # until the aided lock


@pytest.mark.django_db
def test_a_retrain_does_not_change_what_aided_readers_see(
    sequential, lesion_a, reader, api_client_for
):
    ModelVersion.objects.filter(version=1).update(is_active=False)
    newer = ModelVersionFactory(version=2, is_active=True)  # a retrain, activated
    PredictionFactory(
        model_version=newer, lesion=lesion_a, kind=PredictionKind.OUT_OF_FOLD, fold=1, score=0.05
    )
    client = api_client_for(reader)
    _lock_unaided(client, sequential, lesion_a)
    assert client.get(_url(sequential, lesion_a)).json()["model_version"]["version"] == 1
    frozen = client.get(f"/api/v1/reader-studies/{sequential.pk}/model/").json()
    assert (
        frozen["model_version"]["name"] == "source-study/CM v1" and frozen["design"] == "sequential"
    )


@pytest.mark.django_db
def test_freezing_a_model_is_audited_and_refused_once_aided_readers_saw_another(
    sequential, lesion_a, reader, coordinator, api_client_for
):
    url = f"/api/v1/reader-studies/{sequential.pk}/model/"
    client = api_client_for(coordinator)
    other = ModelVersionFactory(variant="EX", is_active=True)
    bad = client.put(url, {"model_version": "x"}, format="json")
    assert bad.status_code == 400 and "model_version" in bad.json()
    missing = client.put(url, {"model_version": 424242}, format="json")
    assert missing.status_code == 400 and "model_version" in missing.json()
    assert (
        client.put(url, {"model_version": other.pk}, format="json").json()["model_version"]["id"]
        == other.pk
    )
    event = AuditEvent.objects.filter(object_type="readerstudy", action="update").first()
    assert event.changes["frozen_model"] == ["source-study/CM v1", "source-study/EX v1"]
    first = ModelVersion.objects.get(variant="CM")
    client.put(url, {"model_version": first.pk}, format="json")
    reader_client = api_client_for(reader)
    _lock_unaided(reader_client, sequential, lesion_a)
    body = {
        "reader_study": sequential.pk,
        "lesion": lesion_a.pk,
        "malignant": True,
        "probability": 70,
        "lock": True,
        "session": "aided",
    }
    assert reader_client.post(CALLS, body, format="json").status_code == 201
    refused = client.put(url, {"model_version": other.pk}, format="json")
    assert refused.status_code == 409 and "model_version" in refused.json()
    assert ReaderStudyModel.objects.get(reader_study=sequential).model_version == first
    assert ReaderCall.objects.filter(session="aided").count() == 1


@pytest.mark.django_db
def test_no_frozen_model_or_no_score_is_a_clear_answer(
    reader_study_a, lesion_a, coordinator, api_client_for
):
    client = api_client_for(coordinator)
    answer = client.get(_url(reader_study_a, lesion_a))
    assert answer.status_code == 409 and "frozen" in answer.json()["detail"]
    freeze_model_version(
        reader_study_a, ModelVersionFactory(variant="NG", is_active=True).pk, coordinator
    )
    answer = client.get(_url(reader_study_a, lesion_a))
    assert answer.status_code == 404 and "not scored" in answer.json()["detail"]
