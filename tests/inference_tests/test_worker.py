"""End to end through a real Celery worker process: train, store, score, survive a killed worker.

One worker (prefork, one child) serves the whole module, with the environment of the
test run: the same test database, broker (CELERY_BROKER_URL, or the filesystem broker
under VAR_DIR) and storage folder.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from django.conf import settings
from django.db import connection

from annotations.models import Lesion
from inference import datasets, services
from inference.experiments import Experiment
from inference.models import ModelVersion, Prediction, PredictionKind, RunState, TrainingRun
from inference.tasks import train
from tests.conftest import service_missing
from tests.factories.annotated_archive import build_archive
from tests.factories.inference import TINY_EXPERIMENT, experiment_file

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).with_name("celery")


def _database_url():
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "") + (
        ":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else ""
    )
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _check_broker(url):
    if not url.startswith("redis"):
        return
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        service_missing(f"Redis at {url} is not reachable ({exc})")


def _purge_queues():
    from portal.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "gpu"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # a queue that does not exist yet has nothing to purge
                pass


class Worker:
    def __init__(self, process, media, log):
        self.process, self.media, self.log = process, media, log

    def tail(self, n=60):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_worker(tmp_path_factory) as started:
        yield started


@contextlib.contextmanager
def running_worker(tmp_path_factory, **extra_env):
    """A Celery worker process for a test module; ``extra_env`` adds to its environment (e.g. the storage)."""
    _check_broker(settings.CELERY_BROKER_URL)
    media = tmp_path_factory.mktemp("worker-media")
    log = tmp_path_factory.mktemp("worker-log") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(media),
        "VAR_DIR": str(settings.VAR_DIR),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **extra_env,
    }
    _purge_queues()
    command = [
        str(CELERY),
        "-A",
        "portal",
        "worker",
        "-Q",
        "default,gpu",
        "-c",
        "1",
        "--pool",
        "prefork",
        "--loglevel",
        "INFO",
        "-n",
        f"test-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    started = Worker(process, media, log)
    deadline = time.monotonic() + 90
    while "ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the Celery worker did not start:\n" + started.tail())
        time.sleep(0.5)
    try:
        yield started
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def shared_media(settings, worker):
    settings.MEDIA_ROOT = worker.media
    return worker.media


def _wait(run, worker, until, timeout, poll=0.2):
    states = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not states or states[-1] != run.state:
            states.append(run.state)
        if until(run):
            return states
        time.sleep(poll)
    pytest.fail(
        f"run {run.pk} stuck in {run.state} ({run.progress}); log:\n{run.log}\nworker:\n{worker.tail()}"
    )


def test_a_tiny_training_run_end_to_end(worker, shared_media, admin_user, tmp_path):
    build_archive(8, phases=("CM", "NG"))  # 8 patients, 10 lesions, 16x16 images
    (run,) = services.start_training(
        admin_user, experiment_file(tmp_path, TINY_EXPERIMENT), ["CM+NG"]
    )
    states = _wait(run, worker, lambda r: r.finished, timeout=300)

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
    _wait(
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
        _wait(run, worker, lambda r: r.state != RunState.RUNNING, timeout=90)
    except pytest.fail.Exception:
        services.sweep_stale_runs(minutes=0)
        run.refresh_from_db()
    assert run.state == RunState.FAILED and "worker lost" in run.error
    time.sleep(2)  # a duplicate, if any, would have started by now
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert not ModelVersion.objects.exists() and not Prediction.objects.exists()
    assert TrainingRun.objects.count() == 1
