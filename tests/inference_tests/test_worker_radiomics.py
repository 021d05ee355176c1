"""The radiomics family end to end through a real Celery worker process: train, store, score; no TensorFlow.

The module starts its own worker (the fixtures of ``test_worker``), so the worker's
process has run radiomics tasks only when the test looks at what it has loaded.
"""

from pathlib import Path

import numpy as np
import pytest

from inference import datasets, services
from inference.experiments import Experiment
from inference.models import ModelVersion, Prediction, PredictionKind, RunState
from inference.radiomics_training import RadiomicsModel
from inference.tasks import train
from tests.factories.annotated_archive import build_archive
from tests.factories.annotations import unlabelled_copy
from tests.factories.inference import TINY_RADIOMICS, experiment_file

from .celery_worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_tiny_radiomics_run_trains_and_scores_end_to_end_without_tensorflow(
    worker, shared_media, admin_user, tmp_path
):
    lesions = build_archive(8, phases=("CM", "NG"))  # 8 patients, 10 lesions, 16x16 images
    new = unlabelled_copy(lesions[-1])
    (run,) = services.start_training(
        admin_user, experiment_file(tmp_path, TINY_RADIOMICS), ["CM+NG"]
    )
    states = wait_for(run, worker, lambda r: r.finished, timeout=240)

    assert run.state == RunState.SUCCEEDED, run.log + run.error + worker.tail()
    assert RunState.FAILED not in states and "mirp" in run.device and "scikit-learn" in run.device
    assert [(h["fold"], h["epoch"]) for h in run.progress["history"]] == [
        (1, 1),
        (2, 1),
        ("final", 1),
    ]
    assert set(run.progress["fold_auc"]) == {"1", "2"} and run.timings["features_s"] > 0

    version = ModelVersion.objects.get(training_run=run)
    assert (
        version.family == "radiomics"
        and version.builder == "radiomics-logistic"
        and version.is_active
    )
    assert version.phases == ["CM", "NG"] and version.artifact.name.endswith(".joblib")
    assert 1 <= len(version.metrics["selected_features"]) <= 3 and "oof_auc" in version.metrics
    trained = {e["lesion"] for e in version.training_data["lesions"]}
    assert trained == {l.pk for l in lesions} and new.pk not in trained

    # Folds never mix patients: every out-of-fold score comes from a model that never saw its patient.
    folds = {e["lesion"]: e["fold"] for e in version.training_data["lesions"]}
    patient_of = {e["lesion"]: e["patient"] for e in version.training_data["lesions"]}
    for fold in set(folds.values()):
        held_out = {patient_of[l] for l, f in folds.items() if f == fold}
        trained_on = {patient_of[l] for l, f in folds.items() if f != fold}
        assert held_out and not held_out & trained_on
    oof = Prediction.objects.filter(model_version=version, kind=PredictionKind.OUT_OF_FOLD)
    assert sorted(oof.values_list("lesion_id", flat=True)) == sorted(folds)
    assert all(p.fold == folds[p.lesion_id] and 0.0 <= p.score <= 1.0 for p in oof)

    # The artifact is intact, loads, and reproduces the final model's stored scores.
    path = tmp_path / "model.joblib"
    with version.artifact.open("rb") as handle:
        path.write_bytes(handle.read())
    model = RadiomicsModel.load(path, version.artifact_sha256)
    spec = Experiment.from_dict(run.experiment).radiomics
    stored = dict(
        Prediction.objects.filter(model_version=version, kind=PredictionKind.FINAL).values_list(
            "lesion_id", "score"
        )
    )
    rows = [datasets.lesion_features(lesion, ("CM", "NG"), spec) for lesion in lesions]
    np.testing.assert_allclose(model.predict(rows), [stored[l.pk] for l in lesions], rtol=1e-9)

    # The first active model scores the lesion it did not train on, in the worker, after the commit.
    scored = Prediction.objects.filter(model_version=version, lesion=new, kind=PredictionKind.FINAL)
    wait_for(run, worker, lambda r: scored.exists(), timeout=60)
    assert scored.get().in_training_data is False
    np.testing.assert_allclose(
        scored.get().score, model.predict([datasets.lesion_features(new, ("CM", "NG"), spec)])[0]
    )

    # The worker process that trained and scored never loaded TensorFlow.
    maps = Path(f"/proc/{int(run.worker.rpartition(':')[2])}/maps")
    if maps.is_file():
        assert "tensorflow" not in maps.read_text()

    assert train.apply(kwargs={"training_run_pk": run.pk}).get() == "nothing to do"
    assert ModelVersion.objects.count() == 1
