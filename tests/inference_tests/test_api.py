"""Retraining is an admin action: API, models page, command; readers and coordinators cannot start it."""

import pytest
from django.core.management import call_command

from inference.models import ModelVersion, RunState, TrainingRun

pytestmark = pytest.mark.django_db

START = {"experiment": "source-study", "variant": "CM", "overrides": {"epochs": 1}}


def test_a_readers_post_to_start_training_is_403(reader, api_client_for):
    response = api_client_for(reader).post("/api/v1/training-runs/", START, format="json")
    assert response.status_code == 403
    assert not TrainingRun.objects.exists()


def test_a_coordinators_post_to_start_training_is_403(coordinator, api_client_for):
    response = api_client_for(coordinator).post("/api/v1/training-runs/", START, format="json")
    assert response.status_code == 403
    assert not TrainingRun.objects.exists()


def test_an_admins_post_creates_a_queued_run_with_the_resolved_experiment(
    admin_user, api_client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client_for(admin_user).post("/api/v1/training-runs/", START, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (
        body["state"] == "queued" and body["variant"] == "CM" and body["experiment"]["epochs"] == 1
    )
    run = TrainingRun.objects.get()
    assert run.created_by == admin_user and run.celery_task_id
    assert len(callbacks) == 1  # the train task is enqueued only after the commit


def test_an_unknown_variant_is_a_400_naming_the_choices(admin_user, api_client_for):
    response = api_client_for(admin_user).post(
        "/api/v1/training-runs/", {**START, "variant": "XX"}, format="json"
    )
    assert response.status_code == 400 and "CM+NG" in str(response.json())


def test_cancel_of_a_queued_run_cancels_it_and_a_running_one_asks_it_to_stop(
    admin_user, api_client_for
):
    client = api_client_for(admin_user)
    queued = TrainingRun.objects.create(experiment_name="x", experiment={}, variant="CM")
    running = TrainingRun.objects.create(
        experiment_name="x", experiment={}, variant="NG", state=RunState.RUNNING
    )
    assert client.post(f"/api/v1/training-runs/{queued.pk}/cancel/").json()["state"] == "cancelled"
    body = client.post(f"/api/v1/training-runs/{running.pk}/cancel/").json()
    assert body["state"] == "running" and body["cancel_requested"] is True


def test_readers_see_no_runs_or_models_and_coordinators_cannot_activate(
    reader, coordinator, api_client_for
):
    version = ModelVersion.objects.create(
        experiment_name="x",
        experiment={},
        variant="CM",
        phases=["CM"],
        builder="small_cnn",
        version=1,
        artifact="models/x.keras",
        artifact_sha256="0" * 64,
    )
    assert api_client_for(reader).get("/api/v1/training-runs/").status_code == 403
    assert api_client_for(reader).get("/api/v1/model-versions/").status_code == 403
    assert api_client_for(coordinator).get("/api/v1/model-versions/").status_code == 200
    assert (
        api_client_for(coordinator)
        .post(f"/api/v1/model-versions/{version.pk}/activate/")
        .status_code
        == 403
    )


def test_activating_a_version_deactivates_the_other_of_its_variant(admin_user, api_client_for):
    common = dict(
        experiment_name="x",
        experiment={},
        variant="CM",
        phases=["CM"],
        builder="small_cnn",
        artifact_sha256="0" * 64,
    )
    old = ModelVersion.objects.create(version=1, artifact="a.keras", is_active=True, **common)
    new = ModelVersion.objects.create(version=2, artifact="b.keras", **common)
    response = api_client_for(admin_user).post(f"/api/v1/model-versions/{new.pk}/activate/")
    assert response.status_code == 200 and response.json()["is_active"] is True
    old.refresh_from_db()
    assert old.is_active is False


def test_the_models_page_is_for_admins_only(client, reader, coordinator, admin_user):
    for user, expected in ((reader, 403), (coordinator, 403), (admin_user, 200)):
        client.force_login(user)
        assert client.get("/models/").status_code == expected
    assert b"Start training" in client.get("/models/").content


def test_train_command_queues_one_run_per_variant(capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        call_command("train", "--experiment", "source-study", "--set", "epochs=1")
    assert sorted(TrainingRun.objects.values_list("variant", flat=True)) == sorted(
        ["NC", "CM", "NG", "EX", "CM+NG", "ALL"]
    )


def test_the_model_versions_api_says_what_each_model_was_trained_on(admin_user, api_client_for):
    common = dict(
        experiment_name="x",
        experiment={},
        variant="CM",
        phases=["CM"],
        builder="small_cnn",
        artifact_sha256="0" * 64,
    )
    ModelVersion.objects.create(
        version=1,
        artifact="a.keras",
        training_data={"lesions": [{"lesion": 1}, {"lesion": 2}]},
        **common,
    )
    ModelVersion.objects.create(
        version=2,
        artifact="b.keras",
        **common,
        training_data={
            "source": "independent synthetic cohort seed 1000, 300 patients, not in the archive",
            "lesions": [],
        },
    )
    versions = api_client_for(admin_user).get("/api/v1/model-versions/").json()["results"]
    assert {v["version"]: v["trained_on"] for v in versions} == {
        1: "2 lesions of this archive",
        2: "independent synthetic cohort seed 1000, 300 patients, not in the archive",
    }
