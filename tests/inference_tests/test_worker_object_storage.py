"""Training and scoring with the archive on S3-compatible object storage, through a real Celery worker.

The web side (this test process) and the worker process share nothing but PostgreSQL (or
the SQLite file), the broker and the bucket: the worker's environment names the storage
with the variables an operator sets (STORAGE_BACKEND, AWS_*), and its local media folder
stays empty.
"""

import hashlib

import numpy as np
import pytest

from inference import services
from inference.models import ModelVersion, Prediction, PredictionKind, RunState
from tests.factories.annotated_archive import build_archive
from tests.factories.annotations import unlabelled_copy
from tests.factories.inference import TINY_EXPERIMENT, experiment_file
from tests.object_store import use_object_store

from .celery_worker import running_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def s3_worker(object_store, django_db_setup, django_db_blocker, tmp_path_factory):
    with running_worker(tmp_path_factory, **object_store.settings()) as started:
        yield started


def test_training_reads_patches_from_the_bucket_and_stores_its_model_there_then_scores(
    object_store,
    s3_worker,
    settings,
    admin_user,
    tmp_path,  # noqa: F811
):
    object_store.empty()
    use_object_store(object_store, settings)
    lesions = build_archive(6, phases=("CM",))  # uploaded into the bucket by this process
    new = unlabelled_copy(lesions[-1])
    (run,) = services.start_training(admin_user, experiment_file(tmp_path, TINY_EXPERIMENT), ["CM"])
    wait_for(run, s3_worker, lambda r: r.finished, timeout=240)
    assert run.state == RunState.SUCCEEDED, run.log + run.error + s3_worker.tail()

    # The model file is an object in the bucket with the recorded SHA-256.
    version = ModelVersion.objects.get(training_run=run)
    assert version.artifact.name in object_store.keys("models/")
    assert (
        hashlib.sha256(object_store.read(version.artifact.name)).hexdigest()
        == version.artifact_sha256
    )

    # Every lesion got an out-of-fold score; the lesion it did not train on is scored by the worker.
    oof = Prediction.objects.filter(model_version=version, kind=PredictionKind.OUT_OF_FOLD)
    assert sorted(oof.values_list("lesion_id", flat=True)) == sorted(
        lesion.pk for lesion in lesions
    )
    scored = Prediction.objects.filter(model_version=version, lesion=new, kind=PredictionKind.FINAL)
    wait_for(run, s3_worker, lambda r: scored.exists(), timeout=90)
    assert scored.get().in_training_data is False and np.isfinite(scored.get().score)

    # Nothing was read from or written to the worker's local media folder.
    assert not any(path.is_file() for path in s3_worker.media.rglob("*"))
