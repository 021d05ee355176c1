"""Reading sessions: a sequential reader study has an unaided call, locked for good, then an aided call."""

import datetime

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
    return {
        "reader_study": rs.pk,
        "lesion": lesion.pk,
        "malignant": malignant,
        "probability": probability,
        "session": session,
        "lock": lock,
    }


@pytest.mark.django_db
def test_a_reader_study_is_unaided_only_by_default_and_its_calls_are_unaided(
    reader_study_a, lesion_a, reader, api_client_for
):
    client = api_client_for(reader)
    assert client.get(f"/api/v1/reader-studies/{reader_study_a.pk}/").json()["design"] == "unaided"
    created = client.post(
        CALLS,
        {k: v for k, v in _call(reader_study_a, lesion_a).items() if k != "session"},
        format="json",
    )
    assert created.status_code == 201 and created.json()["session"] == "unaided"
    refused = client.post(CALLS, _call(reader_study_a, lesion_a, "aided"), format="json")
    assert refused.status_code == 400 and "session" in refused.json()
    assert ReaderCall.objects.count() == 1


@pytest.mark.django_db
def test_an_aided_call_before_the_unaided_lock_is_refused(
    sequential_a, lesion_a, reader, api_client_for
):
    client = api_client_for(reader)
    refused = client.post(CALLS, _call(sequential_a, lesion_a, "aided"), format="json")
    assert refused.status_code == 409 and "unaided" in refused.json()["session"][0]
    client.post(
        CALLS, _call(sequential_a, lesion_a, lock=False), format="json"
    )  # saved, not locked
    refused = client.post(CALLS, _call(sequential_a, lesion_a, "aided"), format="json")
    assert refused.status_code == 409
    assert list(ReaderCall.objects.values_list("session", flat=True)) == ["unaided"]


@pytest.mark.django_db
def test_sequential_unaided_then_aided_both_kept_and_the_unaided_one_cannot_change(
    sequential_a, lesion_a, reader, api_client_for
):
    client = api_client_for(reader)
    unaided = client.post(
        CALLS, _call(sequential_a, lesion_a, probability=40, malignant=False), format="json"
    )
    assert unaided.status_code == 201
    aided = client.post(
        CALLS, _call(sequential_a, lesion_a, "aided", probability=80), format="json"
    )
    assert (
        aided.status_code == 201
        and aided.json()["session"] == "aided"
        and aided.json()["blinded"] is True
    )
    unaided_id = unaided.json()["id"]
    changed = client.post(CALLS, _call(sequential_a, lesion_a, probability=90), format="json")
    assert changed.status_code == 409
    revised = client.post(
        f"{CALLS}{unaided_id}/revise/", {"malignant": True, "probability": 90}, format="json"
    )
    assert revised.status_code == 409 and "cannot change" in revised.json()["detail"]
    patched = client.patch(f"{CALLS}{unaided_id}/", {"probability": 90}, format="json")
    assert patched.status_code == 409
    rows = {c.session: (c.probability, c.is_current) for c in ReaderCall.objects.all()}
    assert rows == {"unaided": (40, True), "aided": (80, True)}
    listed = client.get(CALLS, {"reader_study": sequential_a.pk, "session": "aided"}).json()[
        "results"
    ]
    assert [c["id"] for c in listed] == [aided.json()["id"]]


@pytest.mark.django_db
def test_pathology_stays_hidden_until_the_aided_call_is_locked(
    sequential_a, lesion_a, reader, api_client_for
):
    client = api_client_for(reader)
    client.post(CALLS, _call(sequential_a, lesion_a), format="json")
    assert not access.may_see_truth(reader, lesion_a)
    assert client.get(f"/api/v1/lesions/{lesion_a.pk}/pathology/").status_code == 403
    assert "pathology" not in client.get(f"/api/v1/lesions/{lesion_a.pk}/").json()
    client.post(CALLS, _call(sequential_a, lesion_a, "aided"), format="json")
    assert client.get(f"/api/v1/lesions/{lesion_a.pk}/pathology/").status_code == 200


@pytest.mark.django_db
def test_may_see_model_output_rules(
    sequential_a, reader_study_a, lesion_a, lesion_b, reader, other_reader, coordinator, client
):
    assert access.may_see_model_output(coordinator, sequential_a, lesion_a)
    assert not access.may_see_model_output(
        reader, sequential_a, lesion_a
    )  # unaided call not locked
    ReaderCall.objects.create(
        reader_study=sequential_a, lesion=lesion_a, reader=reader, malignant=True, probability=60
    )
    assert not access.may_see_model_output(reader, sequential_a, lesion_a)  # saved, not locked
    ReaderCall.objects.filter(reader=reader).update(locked_at="2026-01-01T00:00:00Z")
    assert access.may_see_model_output(reader, sequential_a, lesion_a)
    assert not access.may_see_model_output(other_reader, sequential_a, lesion_a)  # not assigned
    assert not access.may_see_model_output(
        reader, sequential_a, lesion_b
    )  # not a lesion of the study
    sequential_a.design = ReaderStudy.Design.UNAIDED
    assert not access.may_see_model_output(reader, sequential_a, lesion_a)  # unaided only: never


@pytest.mark.django_db
def test_the_design_cannot_change_once_there_are_calls(
    reader_study_a, lesion_a, reader, coordinator, api_client_for
):
    url = f"/api/v1/reader-studies/{reader_study_a.pk}/"
    coordinator_client = api_client_for(coordinator)
    bad = coordinator_client.patch(url, {"design": "parallel"}, format="json")
    assert bad.status_code == 400 and "design" in bad.json()
    assert (
        coordinator_client.patch(url, {"design": "sequential"}, format="json").json()["design"]
        == "sequential"
    )
    api_client_for(reader).post(CALLS, _call(reader_study_a, lesion_a), format="json")
    refused = coordinator_client.patch(url, {"design": "unaided"}, format="json")
    assert refused.status_code == 409 and "design" in refused.json()
    assert ReaderStudy.objects.get(pk=reader_study_a.pk).design == "sequential"


@pytest.mark.django_db
def test_the_csv_export_has_a_row_per_session_in_a_sequential_study(
    sequential_a, lesion_a, reader, coordinator, api_client_for
):
    api_client_for(reader).post(CALLS, _call(sequential_a, lesion_a, probability=40), format="json")
    api_client_for(reader).post(
        CALLS, _call(sequential_a, lesion_a, "aided", probability=75), format="json"
    )
    text = (
        api_client_for(coordinator)
        .get(f"/api/v1/reader-studies/{sequential_a.pk}/export.csv")
        .content.decode()
    )
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert {(r[-1], r[10]) for r in rows} == {("unaided", "40"), ("aided", "75")}


# --- crossover with washout ---------------------------------------------------------------------------------


@pytest.fixture
def crossover(reader_study_a, study_b, lesion_a, lesion_b):
    """Reader study A as a crossover of two cases (study A, study B), washout 28 days."""
    reader_study_a.design = ReaderStudy.Design.CROSSOVER
    reader_study_a.washout_days = 28
    reader_study_a.save(update_fields=["design", "washout_days"])
    reader_study_a.cases.create(study=study_b, position=2)
    return reader_study_a


def _wait_out_the_washout(reader, days=29):
    ReaderCall.objects.filter(reader=reader).update(
        locked_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    )


@pytest.mark.django_db
def test_crossover_reads_half_the_cases_aided_first_reproducibly_per_reader(
    crossover, reader, other_reader, study_a, study_b
):
    first = crossover.aided_first_study_ids(reader)
    assert len(first) == 1 and first <= {study_a.pk, study_b.pk}
    assert all(crossover.aided_first_study_ids(reader) == first for _ in range(3))
    assert {crossover.first_session(reader, s.pk) for s in (study_a, study_b)} == {
        "aided",
        "unaided",
    }
    assert ReaderStudy.objects.get(pk=crossover.pk).aided_first_study_ids(reader) == first
    crossover.design = ReaderStudy.Design.SEQUENTIAL
    assert crossover.aided_first_study_ids(reader) == set()  # sequential: unaided always first


@pytest.mark.django_db
def test_crossover_second_read_is_refused_before_the_washout_with_its_date(
    crossover, reader, lesion_a, lesion_b, api_client_for
):
    client = api_client_for(reader)
    by_first = {
        crossover.first_session(reader, lesion.study_id): lesion for lesion in (lesion_a, lesion_b)
    }
    aided_first, unaided_first = by_first["aided"], by_first["unaided"]
    worklist = client.get(f"/api/v1/reader-studies/{crossover.pk}/worklist/").json()
    assert {row["first_session"] for row in worklist["cases"]} == {"aided", "unaided"}
    assert worklist["washout_days"] == 28

    # Aided-first case: the model's output at once, the unaided read only after the washout.
    assert client.post(CALLS, _call(crossover, aided_first), format="json").status_code == 409
    assert access.may_see_model_output(reader, crossover, aided_first)
    assert (
        client.post(CALLS, _call(crossover, aided_first, "aided"), format="json").status_code == 201
    )
    assert not access.may_see_model_output(reader, crossover, aided_first)  # the aided read is over
    refused = client.post(CALLS, _call(crossover, aided_first), format="json")
    assert refused.status_code == 409
    message = refused.json()["session"][0]
    assert (
        message.startswith("washout: your unaided read of this lesion opens on ")
        and "28 days" in message
    )
    assert client.get(f"/api/v1/lesions/{aided_first.pk}/pathology/").status_code == 403

    # Unaided-first case: no model until the unaided call is locked and the washout has passed.
    assert not access.may_see_model_output(reader, crossover, unaided_first)
    assert client.post(CALLS, _call(crossover, unaided_first), format="json").status_code == 201
    assert not access.may_see_model_output(reader, crossover, unaided_first)
    assert (
        client.post(CALLS, _call(crossover, unaided_first, "aided"), format="json").status_code
        == 409
    )
    assert ReaderCall.objects.filter(reader=reader).count() == 2

    _wait_out_the_washout(reader)
    assert access.may_see_model_output(reader, crossover, unaided_first)
    assert (
        client.post(CALLS, _call(crossover, unaided_first, "aided"), format="json").status_code
        == 201
    )
    assert client.post(CALLS, _call(crossover, aided_first), format="json").status_code == 201
    assert not access.may_see_model_output(
        reader, crossover, aided_first
    )  # its unaided session: never
    for lesion in (aided_first, unaided_first):
        assert (
            client.get(f"/api/v1/lesions/{lesion.pk}/pathology/").status_code == 200
        )  # both calls locked
    assert set(ReaderCall.objects.values_list("session", "blinded")) == {
        ("unaided", True),
        ("aided", True),
    }


@pytest.mark.django_db
def test_the_lesion_list_tells_a_crossover_reader_each_first_session_and_when_the_second_read_opens(
    crossover, reader, coordinator, lesion_a, lesion_b, api_client_for
):
    client = api_client_for(reader)
    by_first = {
        crossover.first_session(reader, lesion.study_id): lesion for lesion in (lesion_a, lesion_b)
    }

    def reading():
        listed = client.get("/api/v1/lesions/", {"reader_study": crossover.pk}).json()["results"]
        return {row["id"]: row["reading"] for row in listed}

    before = reading()
    for first, lesion in by_first.items():
        assert before[lesion.pk] == {
            "first_session": first,
            "second_session": "unaided" if first == "aided" else "aided",
            "washout_days": 28,
            "second_read_opens": None,
            "second_read_open": False,
        }
    aided_call = client.post(
        CALLS, _call(crossover, by_first["aided"], "aided"), format="json"
    ).json()
    after = reading()[by_first["aided"].pk]
    locked_at = datetime.datetime.fromisoformat(aided_call["locked_at"].replace("Z", "+00:00"))
    opens = datetime.datetime.fromisoformat(after["second_read_opens"].replace("Z", "+00:00"))
    assert opens == locked_at + datetime.timedelta(days=28) and after["second_read_open"] is False
    refused = client.post(CALLS, _call(crossover, by_first["aided"]), format="json").json()[
        "session"
    ][0]
    assert (
        f"opens on {opens:%Y-%m-%d %H:%M} UTC" in refused
    )  # the page's date is the server's refusal's

    _wait_out_the_washout(reader)
    assert reading()[by_first["aided"].pk]["second_read_open"] is True
    assert client.post(CALLS, _call(crossover, by_first["aided"]), format="json").status_code == 201
    # A coordinator (not one of its readers) and an unaided-only study get no reading schedule.
    listed = (
        api_client_for(coordinator)
        .get("/api/v1/lesions/", {"reader_study": crossover.pk})
        .json()["results"]
    )
    assert listed and all("reading" not in row for row in listed)
    crossover.design = ReaderStudy.Design.UNAIDED
    crossover.save(update_fields=["design"])
    assert all(
        "reading" not in row
        for row in client.get("/api/v1/lesions/", {"reader_study": crossover.pk}).json()["results"]
    )


@pytest.mark.django_db
def test_a_sequential_reader_reads_unaided_first_and_the_aided_read_opens_at_the_unaided_lock(
    sequential_a, lesion_a, reader, api_client_for
):
    client = api_client_for(reader)
    listed = client.get("/api/v1/lesions/", {"reader_study": sequential_a.pk}).json()["results"]
    assert [row["reading"]["first_session"] for row in listed] == ["unaided"]
    client.post(CALLS, _call(sequential_a, lesion_a), format="json")
    reading = client.get("/api/v1/lesions/", {"reader_study": sequential_a.pk}).json()["results"][
        0
    ]["reading"]
    assert reading["washout_days"] == 0 and reading["second_read_open"] is True


def test_a_locked_aided_first_read_of_a_crossover_cannot_be_revised_so_the_washout_date_stays(
    crossover, reader, lesion_a, lesion_b, api_client_for
):
    client = api_client_for(reader)
    aided_first = next(
        l for l in (lesion_a, lesion_b) if crossover.first_session(reader, l.study_id) == "aided"
    )
    call = client.post(CALLS, _call(crossover, aided_first, "aided"), format="json").json()
    revised = client.post(
        f"{CALLS}{call['id']}/revise/", {"probability": 10, "malignant": False}, format="json"
    )
    assert revised.status_code == 409 and "washout counts from its lock" in revised.json()["detail"]
    assert ReaderCall.objects.get(pk=call["id"]).is_current


def test_the_worklist_counts_a_crossover_case_done_only_when_its_second_read_is_locked(
    crossover, reader, lesion_a, lesion_b, api_client_for
):
    client = api_client_for(reader)
    aided_first = next(
        l for l in (lesion_a, lesion_b) if crossover.first_session(reader, l.study_id) == "aided"
    )

    def row():
        cases = client.get(f"/api/v1/reader-studies/{crossover.pk}/worklist/").json()["cases"]
        return next(c for c in cases if c["first_session"] == "aided")

    assert (
        client.post(CALLS, _call(crossover, aided_first, "aided"), format="json").status_code == 201
    )
    assert row()["n_locked"] == 0  # the first read only
    _wait_out_the_washout(reader)
    assert client.post(CALLS, _call(crossover, aided_first), format="json").status_code == 201
    assert row()["n_locked"] == row()["n_lesions"] == 1
