"""QIDO-RS wildcards without regular expressions, and the most results one answer (or API page) holds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archive import pagination
from archive.dicomweb import qido
from archive.ingest import ingest_upload
from archive.models import Study
from tests.factories.dicom import dataset_bytes, make_ct_dataset, make_ct_study

ROOT = Path(__file__).resolve().parents[2]


def store(user, datasets):
    report = ingest_upload(
        [(f"{ds.SOPInstanceUID}.dcm", dataset_bytes(ds)) for ds in datasets], user
    )
    assert report.status == "stored", report.as_dict()


def patient_ids(client, pattern):
    response = client.get("/dicomweb/studies", {"PatientID": pattern})
    assert response.status_code == 200
    return sorted(s["00100020"]["Value"][0] for s in response.json())


@pytest.mark.django_db
def test_wildcards_match_case_sensitively_and_take_percent_and_underscore_literally(
    coordinator, api_client_for, settings
):
    settings.DEID_PSEUDONYM_PATTERN = r"\S+"  # "SRM%0004" is no pseudonym by the default pattern
    for patient_id in ("SRM_0001", "SRMX0002", "srm_0003", "SRM%0004"):
        store(coordinator, [make_ct_dataset(PatientID=patient_id, PatientName=patient_id)])
    client = api_client_for(coordinator)
    assert patient_ids(client, "SRM_*") == ["SRM_0001"]
    assert patient_ids(client, "SRM?000*") == ["SRM%0004", "SRMX0002", "SRM_0001"]
    assert patient_ids(client, "SRM%*") == ["SRM%0004"]
    assert patient_ids(client, "srm*") == ["srm_0003"]
    assert patient_ids(client, "*000?") == ["SRM%0004", "SRMX0002", "SRM_0001", "srm_0003"]


def test_a_pathological_wildcard_query_on_sqlite_answers_at_once(tmp_path):
    """``*a*a*a...b`` against a long run of a's: hours for a backtracking regex (SQLite REGEXP), none for GLOB."""
    code = (
        "import django, time; django.setup()\n"
        "from django.core.management import call_command; call_command('migrate', verbosity=0)\n"
        "from archive.models import Patient, Study\n"
        "from archive.dicomweb.qido import STUDY_LOOKUPS, apply_matches\n"
        "patient = Patient.objects.create(patient_id='a' * 64)\n"
        "Study.objects.create(study_instance_uid='1.2.3', patient=patient)\n"
        "started = time.monotonic()\n"
        "found = apply_matches(Study.objects.all(), {'PatientID': '*a' * 30 + 'b'}, STUDY_LOOKUPS, 'study').count()\n"
        "print(found, round(time.monotonic() - started, 3))\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DEBUG="1",
        VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'qido.sqlite3'}",
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the wildcard query did not finish within 90 s")
    assert result.returncode == 0, result.stderr
    found, seconds = result.stdout.split()
    assert found == "0" and float(seconds) < 1.0


@pytest.mark.django_db
def test_qido_answers_at_most_the_maximum_and_says_so_in_a_warning(
    coordinator, api_client_for, monkeypatch
):
    monkeypatch.setattr(qido, "QIDO_MAX_RESULTS", 3)
    study = make_ct_study(n=1)  # four series
    store(coordinator, [ds for slices in study.values() for ds in slices])
    url = f"/dicomweb/studies/{Study.objects.get().study_instance_uid}/series"
    client = api_client_for(coordinator)
    for query in ({}, {"limit": 10}):
        response = client.get(url, query)
        assert len(response.json()) == 3
        assert response["Warning"].startswith(
            '299 portal "The number of results exceeded the maximum'
        )
    last = client.get(url, {"offset": 3})
    assert len(last.json()) == 1 and "Warning" not in last
    asked = client.get(url, {"limit": 2})  # the client's own page: no warning
    assert len(asked.json()) == 2 and "Warning" not in asked


@pytest.mark.django_db
def test_an_api_list_gives_at_most_its_maximum_whatever_limit_is_asked(
    coordinator, api_client_for, monkeypatch
):
    monkeypatch.setattr(pagination.BoundedLimitOffsetPagination, "max_limit", 2)
    for _ in range(3):
        store(coordinator, [make_ct_dataset()])
    page = api_client_for(coordinator).get("/api/v1/studies/", {"limit": 1000000}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
