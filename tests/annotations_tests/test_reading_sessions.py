"""Reading sessions: a sequential reader study has an unaided call, locked for good, then an aided call."""
import pytest

from annotations import access
from annotations.models import ReaderCall, ReaderStudy

CALLS = "/api/v1/calls/"


@pytest.fixture
def sequential_a(reader_study_a):
    reader_study_a.design = ReaderStudy.Design.SEQUENTIAL
    reader_study_a.save(update_fields=["design"])
    return reader_study_a


def _call(rs, lesion, session="unaided", lock=True, probability=70, malignant=True):
    return {"reader_study": rs.pk, "lesion": lesion.pk, "malignant": malignant, "probability": probability,
            "session": session, "lock": lock}


@pytest.mark.django_db
def test_a_reader_study_is_unaided_only_by_default_and_its_calls_are_unaided(reader_study_a, lesion_a, reader,
                                                                             api_client_for):
    client = api_client_for(reader)
    assert client.get(f"/api/v1/reader-studies/{reader_study_a.pk}/").json()["design"] == "unaided"
    created = client.post(CALLS, {k: v for k, v in _call(reader_study_a, lesion_a).items() if k != "session"},
                          format="json")
    assert created.status_code == 201 and created.json()["session"] == "unaided"
    refused = client.post(CALLS, _call(reader_study_a, lesion_a, "aided"), format="json")
    assert refused.status_code == 400 and "session" in refused.json()
    assert ReaderCall.objects.count() == 1


@pytest.mark.django_db
def test_an_aided_call_before_the_unaided_lock_is_refused(sequential_a, lesion_a, reader, api_client_for):
    client = api_client_for(reader)
    refused = client.post(CALLS, _call(sequential_a, lesion_a, "aided"), format="json")
    assert refused.status_code == 409 and "unaided" in refused.json()["session"][0]
    client.post(CALLS, _call(sequential_a, lesion_a, lock=False), format="json")  # saved, not locked
    refused = client.post(CALLS, _call(sequential_a, lesion_a, "aided"), format="json")
    assert refused.status_code == 409
    assert list(ReaderCall.objects.values_list("session", flat=True)) == ["unaided"]


@pytest.mark.django_db
def test_sequential_unaided_then_aided_both_kept_and_the_unaided_one_cannot_change(sequential_a, lesion_a, reader,
                                                                                   api_client_for):
    client = api_client_for(reader)
    unaided = client.post(CALLS, _call(sequential_a, lesion_a, probability=40, malignant=False), format="json")
    assert unaided.status_code == 201
    aided = client.post(CALLS, _call(sequential_a, lesion_a, "aided", probability=80), format="json")
    assert aided.status_code == 201 and aided.json()["session"] == "aided" and aided.json()["blinded"] is True
    unaided_id = unaided.json()["id"]
    changed = client.post(CALLS, _call(sequential_a, lesion_a, probability=90), format="json")
    assert changed.status_code == 409
    revised = client.post(f"{CALLS}{unaided_id}/revise/", {"malignant": True, "probability": 90}, format="json")
    assert revised.status_code == 409 and "cannot change" in revised.json()["detail"]
    patched = client.patch(f"{CALLS}{unaided_id}/", {"probability": 90}, format="json")
    assert patched.status_code == 409
    rows = {c.session: (c.probability, c.is_current) for c in ReaderCall.objects.all()}
    assert rows == {"unaided": (40, True), "aided": (80, True)}
    listed = client.get(CALLS, {"reader_study": sequential_a.pk, "session": "aided"}).json()["results"]
    assert [c["id"] for c in listed] == [aided.json()["id"]]


@pytest.mark.django_db
def test_pathology_stays_hidden_until_the_aided_call_is_locked(sequential_a, lesion_a, reader, api_client_for):
    client = api_client_for(reader)
    client.post(CALLS, _call(sequential_a, lesion_a), format="json")
    assert not access.may_see_truth(reader, lesion_a)
    assert client.get(f"/api/v1/lesions/{lesion_a.pk}/pathology/").status_code == 403
    assert "pathology" not in client.get(f"/api/v1/lesions/{lesion_a.pk}/").json()
    client.post(CALLS, _call(sequential_a, lesion_a, "aided"), format="json")
    assert client.get(f"/api/v1/lesions/{lesion_a.pk}/pathology/").status_code == 200


@pytest.mark.django_db
def test_may_see_model_output_rules(sequential_a, reader_study_a, lesion_a, lesion_b, reader, other_reader,
                                    coordinator, client):
    assert access.may_see_model_output(coordinator, sequential_a, lesion_a)
    assert not access.may_see_model_output(reader, sequential_a, lesion_a)  # unaided call not locked
    ReaderCall.objects.create(reader_study=sequential_a, lesion=lesion_a, reader=reader, malignant=True,
                              probability=60)
    assert not access.may_see_model_output(reader, sequential_a, lesion_a)  # saved, not locked
    ReaderCall.objects.filter(reader=reader).update(locked_at="2026-01-01T00:00:00Z")
    assert access.may_see_model_output(reader, sequential_a, lesion_a)
    assert not access.may_see_model_output(other_reader, sequential_a, lesion_a)  # not assigned
    assert not access.may_see_model_output(reader, sequential_a, lesion_b)  # not a lesion of the study
    sequential_a.design = ReaderStudy.Design.UNAIDED
    assert not access.may_see_model_output(reader, sequential_a, lesion_a)  # unaided only: never


@pytest.mark.django_db
def test_the_design_cannot_change_once_there_are_calls(reader_study_a, lesion_a, reader, coordinator, api_client_for):
    url = f"/api/v1/reader-studies/{reader_study_a.pk}/"
    coordinator_client = api_client_for(coordinator)
    bad = coordinator_client.patch(url, {"design": "crossover"}, format="json")
    assert bad.status_code == 400 and "design" in bad.json()
    assert coordinator_client.patch(url, {"design": "sequential"}, format="json").json()["design"] == "sequential"
    api_client_for(reader).post(CALLS, _call(reader_study_a, lesion_a), format="json")
    refused = coordinator_client.patch(url, {"design": "unaided"}, format="json")
    assert refused.status_code == 409 and "design" in refused.json()
    assert ReaderStudy.objects.get(pk=reader_study_a.pk).design == "sequential"


@pytest.mark.django_db
def test_the_csv_export_has_a_row_per_session_in_a_sequential_study(sequential_a, lesion_a, reader,
                                                                    coordinator, api_client_for):
    api_client_for(reader).post(CALLS, _call(sequential_a, lesion_a, probability=40), format="json")
    api_client_for(reader).post(CALLS, _call(sequential_a, lesion_a, "aided", probability=75), format="json")
    text = api_client_for(coordinator).get(f"/api/v1/reader-studies/{sequential_a.pk}/export.csv").content.decode()
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert {(r[-1], r[10]) for r in rows} == {("unaided", "40"), ("aided", "75")}
