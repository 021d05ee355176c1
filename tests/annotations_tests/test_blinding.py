"""Blinding: a reader sees no truth before locking their own call; calls by the sighted are not analysed."""

import pytest

from annotations import access, services
from annotations.calls import record_call, revise_call
from annotations.models import ReaderCall, ReaderStudy


def call_body(rs, lesion, **values):
    return {
        "reader_study": rs.pk,
        "lesion": lesion.pk,
        "malignant": True,
        "probability": 75,
        **values,
    }


@pytest.mark.django_db
def test_pathology_is_absent_for_a_reader_until_their_call_is_locked(
    lesion_a, reader_study_a, reader, api_client_for
):
    client = api_client_for(reader)
    assert "pathology" not in client.get(f"/api/v1/lesions/{lesion_a.pk}/").json()
    assert (
        "pathology"
        not in client.get("/api/v1/lesions/", {"study": lesion_a.study.study_instance_uid}).json()[
            "results"
        ][0]
    )
    assert client.get(f"/api/v1/lesions/{lesion_a.pk}/pathology/").status_code == 403
    call = client.post("/api/v1/calls/", call_body(reader_study_a, lesion_a), format="json").json()
    assert "pathology" not in client.get(f"/api/v1/lesions/{lesion_a.pk}/").json(), (
        "an unlocked call does not unblind"
    )
    client.post(f"/api/v1/calls/{call['id']}/lock/")
    assert client.get(f"/api/v1/lesions/{lesion_a.pk}/").json()["pathology"]["subtype"] == "ccRCC"
    assert client.get(f"/api/v1/lesions/{lesion_a.pk}/pathology/").json()["malignant"] is True


@pytest.mark.django_db
def test_unblinding_the_reader_study_shows_its_readers_the_pathology(
    lesion_a, reader_study_a, reader, coordinator, api_client_for
):
    assert (
        api_client_for(coordinator)
        .post(f"/api/v1/reader-studies/{reader_study_a.pk}/unblind/")
        .status_code
        == 200
    )
    assert (
        api_client_for(reader).get(f"/api/v1/lesions/{lesion_a.pk}/").json()["pathology"]["subtype"]
        == "ccRCC"
    )


@pytest.mark.django_db
def test_coordinators_always_see_the_pathology(lesion_a, coordinator, admin_user, api_client_for):
    for user in (coordinator, admin_user):
        assert (
            api_client_for(user)
            .get(f"/api/v1/lesions/{lesion_a.pk}/")
            .json()["pathology"]["subtype"]
            == "ccRCC"
        )


@pytest.mark.django_db
def test_a_reader_lists_only_their_own_calls_and_coordinators_all(
    lesion_a, reader_study_a, reader, other_reader, coordinator, api_client_for
):
    reader_study_a.readers.add(other_reader)
    record_call(reader_study_a, lesion_a, other_reader, malignant=False, probability=10)
    record_call(reader_study_a, lesion_a, reader, malignant=True, probability=90)
    mine = (
        api_client_for(reader)
        .get("/api/v1/calls/", {"reader_study": reader_study_a.pk})
        .json()["results"]
    )
    assert [c["reader"] for c in mine] == ["reader1"]
    everyone = (
        api_client_for(coordinator)
        .get("/api/v1/calls/", {"reader_study": reader_study_a.pk})
        .json()["results"]
    )
    assert {c["reader"] for c in everyone} == {"reader1", "reader2"}
    other_call = ReaderCall.objects.get(reader=other_reader)
    assert api_client_for(reader).get(f"/api/v1/calls/{other_call.pk}/").status_code == 404


@pytest.mark.django_db
def test_a_reader_blind_call_is_blinded_and_a_coordinators_is_not(
    lesion_a, reader_study_a, reader, coordinator, api_client_for
):
    mine = (
        api_client_for(reader)
        .post("/api/v1/calls/", call_body(reader_study_a, lesion_a, lock=True), format="json")
        .json()
    )
    theirs = (
        api_client_for(coordinator)
        .post("/api/v1/calls/", call_body(reader_study_a, lesion_a, lock=True), format="json")
        .json()
    )
    assert mine["blinded"] is True and mine["locked"] is True
    assert theirs["blinded"] is False


@pytest.mark.django_db
def test_a_call_by_a_reader_whose_other_reader_study_is_unblinded_is_not_blinded(
    study_a, lesion_a, reader_study_a, reader, coordinator, api_client_for
):
    second = ReaderStudy.objects.create(name="A again", seed=1)
    second.cases.create(study=study_a)
    second.readers.add(reader)
    reader_study_a.state = ReaderStudy.State.UNBLINDED
    reader_study_a.save()
    call = (
        api_client_for(reader)
        .post("/api/v1/calls/", call_body(second, lesion_a), format="json")
        .json()
    )
    assert call["blinded"] is False


@pytest.mark.django_db
def test_analysable_calls_are_current_locked_and_blinded(
    study_a, lesion_a, reader_study_a, reader, other_reader, coordinator
):
    lesion_2 = services.create_lesion(study_a, coordinator, label="L2", side="right")
    reader_study_a.readers.add(other_reader, coordinator)
    locked = record_call(reader_study_a, lesion_a, reader, malignant=True, probability=80)
    record_call(reader_study_a, lesion_2, reader, malignant=False, probability=20, lock=False)
    sighted = record_call(reader_study_a, lesion_a, coordinator, malignant=True, probability=99)
    revised = record_call(reader_study_a, lesion_a, other_reader, malignant=False, probability=30)
    revision = revise_call(revised, other_reader, probability=60)
    simulated = record_call(
        reader_study_a, lesion_2, other_reader, malignant=False, probability=5, simulated=True
    )
    assert set(access.analysable_calls(reader_study_a)) == {locked, simulated}
    assert set(access.analysable_calls(reader_study_a, include_unblinded=True)) == {
        locked,
        simulated,
        sighted,
        revision,
    }
    assert revision.blinded is False, (
        "after locking the reader saw the truth, so the revision is not blind"
    )


@pytest.mark.django_db
def test_model_scores_and_other_calls_follow_the_same_rule(lesion_a, reader_study_a, reader):
    assert not access.may_see_model_scores(reader, lesion_a) and not access.may_see_other_calls(
        reader, lesion_a
    )
    record_call(reader_study_a, lesion_a, reader, malignant=True, probability=80)
    assert access.may_see_model_scores(reader, lesion_a) and access.may_see_other_calls(
        reader, lesion_a
    )


@pytest.mark.django_db
def test_a_reader_of_another_study_cannot_open_its_sr_or_lesions(
    lesion_a, other_reader, api_client_for
):
    client = api_client_for(other_reader)
    assert client.get(f"/api/v1/lesions/{lesion_a.pk}/").status_code == 404
    assert client.get(f"/api/v1/studies/{lesion_a.study.study_instance_uid}/sr/").status_code == 404
