"""Reader calls: autosave before lock, lock, revisions after lock, with audit."""

import pytest

from annotations.calls import record_call
from annotations.models import AuditEvent, ReaderCall


def call_url(call_id, suffix=""):
    return f"/api/v1/calls/{call_id}/{suffix}"


@pytest.mark.django_db
def test_posting_twice_before_lock_updates_the_same_call(
    lesion_a, reader_study_a, reader, api_client_for
):
    client = api_client_for(reader)
    body = {
        "reader_study": reader_study_a.pk,
        "lesion": lesion_a.pk,
        "malignant": True,
        "probability": 60,
        "time_spent_s": 10.0,
    }
    first = client.post("/api/v1/calls/", body, format="json")
    second = client.post(
        "/api/v1/calls/", {**body, "probability": 65, "subtype_guess": "papillary"}, format="json"
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    call = ReaderCall.objects.get()
    assert (call.probability, call.subtype_guess, call.revision, call.locked) == (
        65,
        "papillary",
        1,
        False,
    )
    patched = client.patch(
        call_url(call.pk), {"malignant": False, "probability": 30}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["probability"] == 30
    update = AuditEvent.objects.filter(object_type="readercall", action="update").first()
    assert update.changes["probability"] == [65, 30] and update.user == reader


@pytest.mark.django_db
def test_lock_then_revise_keeps_the_old_row_and_supersedes_it(
    lesion_a, reader_study_a, reader, api_client_for
):
    client = api_client_for(reader)
    body = {
        "reader_study": reader_study_a.pk,
        "lesion": lesion_a.pk,
        "malignant": True,
        "probability": 60,
    }
    created = client.post("/api/v1/calls/", body, format="json").json()
    locked = client.post(call_url(created["id"], "lock/")).json()
    assert locked["locked"] is True and locked["locked_at"]
    revised = client.post(
        call_url(created["id"], "revise/"), {"malignant": False, "probability": 25}, format="json"
    )
    assert revised.status_code == 201
    new = revised.json()
    assert (
        new["revision"] == 2
        and new["supersedes"] == created["id"]
        and new["is_current"]
        and new["locked"]
    )
    old = ReaderCall.objects.get(pk=created["id"])
    assert old.is_current is False and old.probability == 60 and old.changed_by == reader
    assert ReaderCall.objects.get(pk=new["id"]).changed_by == reader
    current = client.get("/api/v1/calls/", {"reader_study": reader_study_a.pk}).json()["results"]
    assert [c["id"] for c in current] == [new["id"]]
    history = client.get(
        "/api/v1/calls/", {"reader_study": reader_study_a.pk, "all_revisions": "1"}
    ).json()["results"]
    assert [c["revision"] for c in history] == [1, 2]
    assert (
        client.post(
            call_url(created["id"], "revise/"), {"probability": 10}, format="json"
        ).status_code
        == 409
    )
    actions = list(
        AuditEvent.objects.filter(object_type="readercall")
        .order_by("id")
        .values_list("action", "object_id")
    )
    assert actions == [
        ("create", old.pk),
        ("update", old.pk),
        ("update", old.pk),
        ("create", new["id"]),
    ]


@pytest.mark.django_db
def test_a_reader_cannot_lock_or_change_someone_elses_call(
    lesion_a, reader_study_a, reader, coordinator, api_client_for
):
    call = record_call(reader_study_a, lesion_a, reader, malignant=True, probability=50, lock=False)
    client = api_client_for(coordinator)
    assert client.post(call_url(call.pk, "lock/")).status_code == 403
    assert client.patch(call_url(call.pk), {"probability": 1}, format="json").status_code == 403
    assert ReaderCall.objects.get(pk=call.pk).probability == 50


@pytest.mark.django_db
def test_record_call_service_locks_and_marks_simulated(lesion_a, reader_study_a, reader):
    call = record_call(
        reader_study_a,
        lesion_a,
        reader,
        malignant=False,
        probability=12,
        simulated=True,
        time_spent_s=3.5,
    )
    assert call.locked and call.simulated and call.blinded and call.changed_by == reader
    assert AuditEvent.objects.filter(
        object_type="readercall", object_id=call.pk, action="create"
    ).exists()


@pytest.mark.django_db
def test_worklist_counts_the_readers_calls(lesion_a, reader_study_a, reader, api_client_for):
    record_call(reader_study_a, lesion_a, reader, malignant=True, probability=80)
    worklist = (
        api_client_for(reader).get(f"/api/v1/reader-studies/{reader_study_a.pk}/worklist/").json()
    )
    case = worklist["cases"][0]
    assert (case["position"], case["n_lesions"], case["n_called"], case["n_locked"]) == (1, 1, 1, 1)
    assert case["case_url"] == f"/reading/{reader_study_a.pk}/{lesion_a.study.study_instance_uid}/"
    assert case["patient_id"] == "SRM-0001"
    assert worklist["totals"] == {
        "n_cases": 1,
        "n_lesions": 1,
        "n_called": 1,
        "n_locked": 1,
        "n_cases_done": 1,
    }
