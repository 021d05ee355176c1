"""Reader-study management: cases and readers, per-reader order, states, CSV export."""

import csv
import io

import pytest

from annotations import services
from annotations.calls import record_call
from annotations.models import ReaderStudy
from archive.models import Patient, Study


def bare_studies(n):
    patient = Patient.objects.create(patient_id="SRM-ORDER")
    return [
        Study.objects.create(study_instance_uid=f"1.2.3.{i}", patient=patient)
        for i in range(1, n + 1)
    ]


@pytest.mark.django_db
def test_a_coordinator_creates_a_reader_study_with_cases_in_order_and_readers(
    coordinator, reader, other_reader, api_client_for
):
    studies = bare_studies(3)
    uids = [s.study_instance_uid for s in reversed(studies)]
    response = api_client_for(coordinator).post(
        "/api/v1/reader-studies/",
        {
            "name": "Pilot",
            "instructions": "Read all.",
            "case_order": "fixed",
            "seed": 3,
            "studies": uids,
            "readers": ["reader1", "reader2"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["studies"] == uids and sorted(body["readers"]) == ["reader1", "reader2"]
    assert (body["state"], body["n_cases"], body["n_lesions"]) == ("open", 3, 0)
    worklist = api_client_for(reader).get(f"/api/v1/reader-studies/{body['id']}/worklist/").json()
    assert [c["study_instance_uid"] for c in worklist["cases"]] == uids
    patched = api_client_for(coordinator).patch(
        f"/api/v1/reader-studies/{body['id']}/", {"studies": uids[:1]}, format="json"
    )
    assert patched.json()["studies"] == uids[:1] and patched.json()["n_cases"] == 1


@pytest.mark.django_db
def test_unknown_study_or_reader_names_the_field(coordinator, api_client_for):
    client = api_client_for(coordinator)
    assert (
        "studies"
        in client.post(
            "/api/v1/reader-studies/", {"name": "x", "studies": ["9.9"]}, format="json"
        ).json()
    )
    assert (
        "readers"
        in client.post(
            "/api/v1/reader-studies/", {"name": "x", "readers": ["nobody"]}, format="json"
        ).json()
    )
    assert not ReaderStudy.objects.exists()


@pytest.mark.django_db
def test_shuffled_order_is_reproducible_and_differs_between_readers(reader, other_reader):
    rs = ReaderStudy.objects.create(name="S", seed=11, case_order="shuffled")
    for position, study in enumerate(bare_studies(12), start=1):
        rs.cases.create(study=study, position=position)
    first = [c.study_id for c in rs.cases_for(reader)]
    assert first == [c.study_id for c in ReaderStudy.objects.get(pk=rs.pk).cases_for(reader)]
    assert first != [c.study_id for c in rs.cases_for(other_reader)]
    assert sorted(first) == sorted(c.study_id for c in rs.cases.all())
    rs.seed = 12
    assert first != [c.study_id for c in rs.cases_for(reader)]


@pytest.mark.django_db
def test_close_reopen_unblind_transitions(reader_study_a, coordinator, api_client_for):
    client = api_client_for(coordinator)
    base = f"/api/v1/reader-studies/{reader_study_a.pk}"
    assert client.post(f"{base}/reopen/").status_code == 409
    assert client.post(f"{base}/close/").json()["state"] == "closed"
    assert client.post(f"{base}/reopen/").json()["state"] == "open"
    assert client.post(f"{base}/unblind/").json()["state"] == "unblinded"
    assert client.post(f"{base}/reopen/").status_code == 409, (
        "an unblinded study is not reopened for blind reading"
    )


@pytest.mark.django_db
def test_a_reader_study_with_calls_is_not_deleted(
    lesion_a, reader_study_a, reader, coordinator, api_client_for
):
    record_call(reader_study_a, lesion_a, reader, malignant=True, probability=90)
    assert (
        api_client_for(coordinator)
        .delete(f"/api/v1/reader-studies/{reader_study_a.pk}/")
        .status_code
        == 409
    )
    assert ReaderStudy.objects.filter(pk=reader_study_a.pk).exists()


@pytest.mark.django_db
def test_csv_export_has_one_row_per_lesion_and_reader(
    lesion_a, reader_study_a, reader, other_reader, coordinator, api_client_for
):
    reader_study_a.readers.add(other_reader)
    record_call(reader_study_a, lesion_a, reader, malignant=True, probability=85, time_spent_s=12.0)
    response = api_client_for(coordinator).get(
        f"/api/v1/reader-studies/{reader_study_a.pk}/export.csv"
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["Reader"] for r in rows] == ["reader1", "reader2"]
    first = rows[0]
    assert first["Patient ID"] == "SRM-0001" and first["Lesion"] == "L1" and first["Side"] == "left"
    assert (
        first["Long axis (mm)"] == "23.5"
        and first["Pathology subtype"] == "ccRCC"
        and first["Pathology malignant"] == "yes"
    )
    assert (
        first["Call"],
        first["Probability of malignancy (%)"],
        first["Locked"],
        first["Blinded"],
        first["Simulated"],
        first["Revision"],
    ) == ("malignant", "85", "yes", "yes", "no", "1")
    assert rows[1]["Call"] == "" and rows[1]["Probability of malignancy (%)"] == ""


@pytest.mark.django_db
def test_csv_export_cells_that_start_a_formula_are_text(
    lesion_a, reader_study_a, make_user, coordinator, api_client_for
):
    services.update_lesion(lesion_a, coordinator, location='=HYPERLINK("http://example.org","x")')
    reader_study_a.readers.add(make_user("@reader", "reader"))
    response = api_client_for(coordinator).get(
        f"/api/v1/reader-studies/{reader_study_a.pk}/export.csv"
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["Location"] for r in rows} == {'\'=HYPERLINK("http://example.org","x")'}
    assert sorted(r["Reader"] for r in rows) == ["'@reader", "reader1"]
    assert {r["Long axis (mm)"] for r in rows} == {"23.5"}
