"""Task guards, the heartbeat sweep and automatic scoring, without a worker."""

import subprocess
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotations.models import ROI
from inference import services
from inference.models import ModelVersion, RunState, TrainingRun
from inference.tasks import train
from tests.factories.annotated_archive import build_archive

pytestmark = pytest.mark.django_db


def _run(variant="CM", **fields):
    return TrainingRun.objects.create(
        experiment_name="tiny", experiment={}, variant=variant, **fields
    )


def test_a_finished_run_is_not_trained_again():
    run = _run(state=RunState.SUCCEEDED)
    assert train.apply(kwargs={"training_run_pk": run.pk}).get() == "nothing to do"
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and run.started_at is None


def test_a_message_for_a_deleted_run_or_another_task_id_is_ignored():
    assert train.apply(kwargs={"training_run_pk": 999999}).get() == "nothing to do"
    run = _run(celery_task_id="the-real-task")
    assert (
        train.apply(kwargs={"training_run_pk": run.pk}, task_id="a-stale-message").get()
        == "nothing to do"
    )
    run.refresh_from_db()
    assert run.state == RunState.QUEUED


def test_a_redelivered_run_whose_worker_process_died_is_marked_failed_not_rerun():
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = services.worker_identity().rpartition(":")[0]
    run = _run(
        state=RunState.RUNNING,
        worker=f"{host}:{dead.pid}",
        heartbeat_at=timezone.now(),
        celery_task_id="t1",
    )
    train.apply(kwargs={"training_run_pk": run.pk}, task_id="t1")
    run.refresh_from_db()
    assert run.state == RunState.FAILED and "worker lost" in run.error
    assert not ModelVersion.objects.exists()


def test_a_redelivered_run_still_heartbeating_elsewhere_is_left_alone():
    run = _run(state=RunState.RUNNING, worker="other-host:1", heartbeat_at=timezone.now())
    train.apply(kwargs={"training_run_pk": run.pk})
    run.refresh_from_db()
    assert run.state == RunState.RUNNING


def test_the_sweep_fails_runs_without_a_recent_heartbeat_and_keeps_live_ones():
    stale = _run(
        state=RunState.RUNNING, worker="h:1", heartbeat_at=timezone.now() - timedelta(minutes=30)
    )
    live = _run(
        "NG", state=RunState.RUNNING, worker="h:2", heartbeat_at=timezone.now()
    )  # one live run per variant
    call_command("sweep_training_runs", "--minutes", "15")
    stale.refresh_from_db()
    live.refresh_from_db()
    assert stale.state == RunState.FAILED and "no heartbeat" in stale.error
    assert live.state == RunState.RUNNING


def test_a_saved_roi_is_scored_by_the_active_model_after_commit(
    settings, tmp_path, django_capture_on_commit_callbacks, monkeypatch
):
    settings.VAR_DIR = tmp_path
    lesion = build_archive(1, phases=("CM",))[0]
    sent = []
    monkeypatch.setattr(
        services, "enqueue_lesion_scoring", lambda lesion_pk: sent.append(lesion_pk)
    )
    roi = lesion.rois.get(phase="CM")
    with django_capture_on_commit_callbacks(execute=True):
        roi.save()
    assert sent == []  # no active model: nothing to score with
    ModelVersion.objects.create(
        experiment_name="x",
        experiment={},
        variant="CM",
        phases=["CM"],
        builder="small_cnn",
        version=1,
        artifact="a.keras",
        artifact_sha256="0" * 64,
        is_active=True,
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ROI.objects.get(pk=roi.pk).save()
    assert sent == [lesion.pk] and len(callbacks) == 1
