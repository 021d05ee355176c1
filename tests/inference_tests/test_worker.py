"""End to end through a real Celery worker process: train, store, score, survive a killed worker.

One worker (prefork, one child) serves the whole module, with the environment of the
test run: the same test database, broker (CELERY_BROKER_URL, or the filesystem broker
under VAR_DIR) and storage folder.
"""

import os
import signal
import time

import numpy as np
import pytest

from annotations.models import Lesion
from inference import datasets, services
from inference.experiments import Experiment
from inference.models import ModelVersion, Prediction, PredictionKind, RunState, TrainingRun
from inference.tasks import train
from tests.factories.annotated_archive import build_archive
from tests.factories.inference import TINY_EXPERIMENT, experiment_file

from .celery_worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_tiny_training_run_end_to_end(worker, shared_media, admin_user, tmp_path):
    build_archive(8, phases=("CM", "NG"))  # 8 patients, 10 lesions, 16x16 images
    (run,) = services.start_training(
        admin_user, experiment_file(tmp_path, TINY_EXPERIMENT), ["CM+NG"]
    )
    states = wait_for(run, worker, lambda r: r.finished, timeout=300)

    assert run.state == RunState.SUCCEEDED, run.log + run.error + worker.tail()
    assert states[-1] == RunState.SUCCEEDED and RunState.FAILED not in states
    assert (
        "backend tensorflow" in run.device
        and run.heartbeat_at
        and run.started_at <= run.finished_at
    )
    assert [(h["fold"], h["epoch"]) for h in run.progress["history"]] == [
        (1, 1),
        (2, 1),
        ("final", 1),
    ]
    assert set(run.progress["fold_auc"]) == {"1", "2"} and run.timings["total_s"] > 0

    version = ModelVersion.objects.get(training_run=run)
    assert version.is_active and version.phases == ["CM", "NG"] and "oof_auc" in version.metrics
    assert {e["lesion"] for e in version.training_data["lesions"]} == set(
        Lesion.objects.values_list("pk", flat=True)
    )

    # Out-of-fold scores for every lesion, each from a model that never saw its patient.
    folds = {e["lesion"]: e["fold"] for e in version.training_data["lesions"]}
    patient_of = {e["lesion"]: e["patient"] for e in version.training_data["lesions"]}
    oof = Prediction.objects.filter(model_version=version, kind=PredictionKind.OUT_OF_FOLD)
    assert sorted(oof.values_list("lesion_id", flat=True)) == sorted(folds)
    for prediction in oof:
        assert prediction.fold == folds[prediction.lesion_id]
        trained_on = {patient_of[l] for l, f in folds.items() if f != prediction.fold}
        assert patient_of[prediction.lesion_id] not in trained_on
        assert 0.0 <= prediction.score <= 1.0

    # The artifact is intact, loads, and reproduces the final model's stored scores.
    from inference import training

    with version.artifact.open("rb") as handle:
        path = tmp_path / "model.keras"
        path.write_bytes(handle.read())
    model = training.load_model(path, version.artifact_sha256)
    lesions, _ = datasets.lesions_with_phases(("CM", "NG"), require_pathology=True)
    data = datasets.build_lesion_patches(
        lesions, ("CM", "NG"), Experiment.from_dict(run.experiment).patch
    )
    stored = dict(
        Prediction.objects.filter(model_version=version, kind=PredictionKind.FINAL).values_list(
            "lesion_id", "score"
        )
    )
    recomputed = training.predict_lesions(model, data.patches)
    np.testing.assert_allclose(
        recomputed, [stored[pk] for pk in data.lesion_ids], rtol=1e-4, atol=1e-6
    )

    # A redelivered message for the finished run is a no-op, however often it comes.
    for _ in range(2):
        assert train.apply(kwargs={"training_run_pk": run.pk}).get() == "nothing to do"
    assert (
        ModelVersion.objects.filter(training_run=run).count() == 1 == ModelVersion.objects.count()
    )
    assert Prediction.objects.filter(model_version=version).count() == 2 * len(folds)


def test_killing_the_worker_process_mid_run_leaves_no_running_run_and_no_model(
    worker, shared_media, admin_user, tmp_path
):
    build_archive(8, phases=("CM",), size=32)
    slow = experiment_file(
        tmp_path,
        TINY_EXPERIMENT,
        epochs=200,
        batch_size=2,
        patch={"field_of_view_mm": 20.0, "size_px": 32, "neighbours": 3},
        builder_options={"filters": [16, 32, 64], "dense_units": 16},
    )
    (run,) = services.start_training(admin_user, slow, ["CM"])
    wait_for(
        run,
        worker,
        lambda r: r.state == RunState.RUNNING and r.progress.get("stage") == "fold",
        timeout=240,
        poll=0.05,
    )
    assert run.progress["fold"] == 1 and run.progress["epoch"] == 0  # during epoch 1
    pid = int(run.worker.rpartition(":")[2])
    os.kill(pid, signal.SIGKILL)

    # The worker hands the message back (reject_on_worker_lost); the redelivered task's guard
    # sees the dead process and fails the run. Without a redelivery the heartbeat sweep does it.
    try:
        wait_for(run, worker, lambda r: r.state != RunState.RUNNING, timeout=90)
    except pytest.fail.Exception:
        services.sweep_stale_runs(minutes=0)
        run.refresh_from_db()
    assert run.state == RunState.FAILED and "worker lost" in run.error
    time.sleep(2)  # a duplicate, if any, would have started by now
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert not ModelVersion.objects.exists() and not Prediction.objects.exists()
    assert TrainingRun.objects.count() == 1
