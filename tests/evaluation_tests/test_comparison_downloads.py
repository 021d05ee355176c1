"""The comparison's downloads take the page's path: a large study is computed by the worker, never in the
web process, and the download answers 202 until the result is there; every download is audited."""

import json

import pytest
from django.urls import reverse

from annotations.models import AuditEvent
from evaluation import services
from evaluation.inputs import gather_inputs
from evaluation.models import ComparisonResult
from evaluation.tasks import compute_comparison
from tests.factories.reader_study import build_reader_study

ANALYSIS_DOWNLOADS = ["export-json", "roc-png", "roc-svg"]


@pytest.fixture
def study(db):
    return build_reader_study(n_lesions=24, n_readers=2, variants=("CM",), seed=5)


@pytest.fixture
def computed_here(monkeypatch):
    """The inputs the web process computed a comparison for (the real computation still runs)."""
    computed = []
    original = services.compute_result
    monkeypatch.setattr(
        services,
        "compute_result",
        lambda inputs: computed.append(inputs.revision) or original(inputs),
    )
    return computed


def test_a_cold_download_of_a_large_study_is_a_202_and_one_task_not_a_computation_in_the_web_process(
    client, coordinator, study, settings, computed_here, django_capture_on_commit_callbacks
):
    settings.EVALUATION_SYNC_MAX_RATINGS = 10  # this study goes to the worker, as on the page
    client.force_login(coordinator)
    pk = study.reader_study.pk
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answers = [
            client.get(reverse(f"evaluation:{name}", args=[pk])) for name in ANALYSIS_DOWNLOADS
        ]
    for answer in answers:
        assert answer.status_code == 202 and answer["Retry-After"]
        body = json.loads(answer.content)
        assert body["state"] == "pending" and body["status_url"] == reverse(
            "evaluation:comparison-status", args=[pk]
        )
    assert computed_here == []
    assert len(callbacks) == 1  # one compute_comparison task for the three downloads
    assert not AuditEvent.objects.filter(action="export").exists()  # nothing was downloaded

    compute_comparison.run(reader_study_pk=pk)  # what the worker does
    computed_by_worker = len(computed_here)
    png = client.get(reverse("evaluation:roc-png", args=[pk]))
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    analysis = client.get(reverse("evaluation:export-json", args=[pk]))
    assert analysis.status_code == 200 and "subgroups" in json.loads(analysis.content)
    assert len(computed_here) == computed_by_worker  # served from the cache


def test_a_download_of_a_failed_comparison_is_a_409_with_its_error(
    client, coordinator, study, settings
):
    settings.EVALUATION_SYNC_MAX_RATINGS = 10
    inputs = gather_inputs(study.reader_study)
    ComparisonResult.objects.create(
        reader_study=study.reader_study,
        revision=inputs.revision,
        state="failed",
        error="LinAlgError: singular matrix",
        finished_at="2026-01-01T00:00:00Z",
        options=inputs.options.as_dict(),
    )
    client.force_login(coordinator)
    answer = client.get(reverse("evaluation:export-json", args=[study.reader_study.pk]))
    assert answer.status_code == 409 and "singular matrix" in json.loads(answer.content)["detail"]


def test_every_comparison_download_is_audited_with_its_file(client, coordinator, study):
    client.force_login(coordinator)
    pk = study.reader_study.pk
    names = ["export-csv", "export-long-csv", "export-imrmc", *ANALYSIS_DOWNLOADS]
    for name in names:
        assert client.get(reverse(f"evaluation:{name}", args=[pk])).status_code == 200, name
    events = AuditEvent.objects.filter(action="export").order_by("id")
    assert [(e.user, e.object_type, e.object_id) for e in events] == [
        (coordinator, "readerstudy", pk)
    ] * len(names)
    assert [e.changes["file"] for e in events] == [
        f"reader-study-{pk}-comparison.csv",
        f"reader-study-{pk}-comparison-long.csv",
        f"reader-study-{pk}-comparison.imrmc",
        f"reader-study-{pk}-comparison.json",
        f"reader-study-{pk}-comparison-roc-all.png",
        f"reader-study-{pk}-comparison-roc-all.svg",
    ]
