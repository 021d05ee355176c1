"""Training runs are capped: one queued or running run per experiment and variant, overrides within bounds;
starting, cancelling and activating are audited (who)."""

import pytest
from django.core.management import CommandError, call_command

from annotations.models import AuditEvent
from inference.experiments import OVERRIDE_LIMITS
from inference.models import ModelVersion, RunState, TrainingRun

pytestmark = pytest.mark.django_db

URL = "/api/v1/training-runs/"
START = {"experiment": "source-study", "variant": "CM", "overrides": {"epochs": 1}}


def test_a_second_run_of_a_variant_while_one_is_queued_or_running_is_a_409_naming_it(
    admin_user, api_client_for
):
    client = api_client_for(admin_user)
    first = client.post(URL, START, format="json").json()
    second = client.post(URL, START, format="json")
    assert second.status_code == 409
    assert second.json()["run"] == first["id"] and f"run {first['id']}" in second.json()["detail"]
    assert "source-study/CM" in second.json()["detail"] and "queued" in second.json()["detail"]
    TrainingRun.objects.filter(pk=first["id"]).update(state=RunState.RUNNING)
    assert "running" in client.post(URL, START, format="json").json()["detail"]
    assert TrainingRun.objects.count() == 1

    assert (
        client.post(URL, {**START, "variant": "NG"}, format="json").status_code == 201
    )  # another variant
    TrainingRun.objects.filter(pk=first["id"]).update(state=RunState.SUCCEEDED)
    assert client.post(URL, START, format="json").status_code == 201  # the first one finished
    assert TrainingRun.objects.filter(variant="CM").count() == 2


def test_the_train_command_refuses_a_variant_with_a_live_run_and_queues_nothing(
    admin_user, api_client_for
):
    api_client_for(admin_user).post(URL, {**START, "variant": "EX"}, format="json")
    with pytest.raises(CommandError, match="source-study/EX already has a queued training run"):
        call_command("train", "--experiment", "source-study", "--set", "epochs=1")
    assert TrainingRun.objects.count() == 1  # none of the other five variants was queued either


def test_the_database_holds_the_cap_when_two_requests_race():
    from django.db import IntegrityError, transaction

    TrainingRun.objects.create(experiment_name="source-study", experiment={}, variant="CM")
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(
            experiment_name="source-study", experiment={}, variant="CM", state=RunState.RUNNING
        )


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"epochs": 100000}, "epochs"),
        ({"epochs": "many"}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"batch_size": 1_000_000}, "batch_size"),
        ({"folds": 500}, "folds"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"patch": {"size_px": 100000}}, "patch.size_px"),
        ({"patch": {"neighbours": 1000}}, "patch.neighbours"),
        ({"patch": 7}, "patch"),
        ({"builder_options": {"filters": [4096] * 50}}, "builder_options.filters"),
        ({"builder_options": {"dense_units": 10**9}}, "builder_options.dense_units"),
    ],
)
def test_an_override_out_of_bounds_is_a_400_naming_the_field_and_queues_nothing(
    admin_user, api_client_for, overrides, field
):
    response = api_client_for(admin_user).post(
        URL, {**START, "overrides": overrides}, format="json"
    )
    assert response.status_code == 400, response.content
    errors = response.json()["overrides"]
    assert list(errors) == [field] and errors[field][0].startswith(f"{field}: ")
    assert not TrainingRun.objects.exists()


def test_the_bounds_are_the_documented_ones(admin_user, api_client_for):
    low, high = OVERRIDE_LIMITS["epochs"]
    assert (
        api_client_for(admin_user)
        .post(URL, {**START, "overrides": {"epochs": high}}, format="json")
        .status_code
        == 201
    )
    message = (
        api_client_for(admin_user)
        .post(URL, {**START, "variant": "NG", "overrides": {"epochs": high + 1}}, format="json")
        .json()["overrides"]["epochs"][0]
    )
    assert message == f"epochs: must be from {low} to {high} (got {high + 1})"


def test_the_train_command_names_an_override_out_of_bounds():
    with pytest.raises(CommandError, match=r"patch.size_px: must be from 4 to 512 \(got 4096\)"):
        call_command(
            "train",
            "--experiment",
            "source-study",
            "--variant",
            "CM",
            "--set",
            "patch.size_px=4096",
        )
    assert not TrainingRun.objects.exists()


def test_training_start_cancel_and_model_activation_are_audited_with_who(
    admin_user, api_client_for
):
    client = api_client_for(admin_user)
    run = client.post(URL, START, format="json").json()
    client.post(f"{URL}{run['id']}/cancel/")
    call_command("train", "--experiment", "source-study", "--variant", "NG", "--set", "epochs=2")
    version = ModelVersion.objects.create(
        experiment_name="x",
        experiment={},
        variant="CM",
        phases=["CM"],
        builder="small_cnn",
        version=1,
        artifact="a.keras",
        artifact_sha256="0" * 64,
    )
    client.post(f"/api/v1/model-versions/{version.pk}/activate/")
    events = [
        (e.action, e.object_type, e.user, e.changes)
        for e in AuditEvent.objects.order_by("id")
        if e.object_type in ("trainingrun", "modelversion")
    ]
    command_run = TrainingRun.objects.get(variant="NG")
    assert events == [
        (
            "start",
            "trainingrun",
            admin_user,
            {
                "experiment": "source-study",
                "variant": "CM",
                "overrides": {"epochs": 1},
                "by": "admin",
            },
        ),
        (
            "cancel",
            "trainingrun",
            admin_user,
            {"state": ["queued", "cancelled"], "cancel_requested": False},
        ),
        (
            "start",
            "trainingrun",
            None,
            {
                "experiment": "source-study",
                "variant": "NG",
                "overrides": {"epochs": 2},
                "by": "command line",
            },
        ),
        ("activate", "modelversion", admin_user, {"model": "x/CM v1", "deactivated": []}),
    ]
    assert AuditEvent.objects.get(action="start", user=None).object_id == command_run.pk
