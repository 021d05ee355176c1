"""The radiomics family in the registry without a worker: features from the archive, bad input, two active families."""

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotations.models import ROI
from inference import datasets, services
from inference.experiments import get_experiment
from inference.models import ModelFamily, ModelVersion, Prediction, RunState, TrainingRun
from inference.tasks import train
from tests.factories.annotated_archive import build_archive
from tests.factories.inference import TINY_RADIOMICS, experiment_file

pytestmark = pytest.mark.django_db


def test_lesion_features_are_each_phases_roi_features_prefixed_by_phase_and_cached_by_content(
    settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path
    lesion = build_archive(1, phases=("CM", "NG"))[0]
    spec = get_experiment("radiomics", {"radiomics": {"families": ["statistics"]}}).radiomics
    features = datasets.lesion_features(lesion, ("CM", "NG"), spec)
    assert {name.split(":")[0] for name in features} == {"CM", "NG"}
    assert features["CM:stat_mean"] > features["CM:stat_min"]

    monkeypatch.setattr(
        datasets.radiomics, "compute_features", lambda *a: pytest.fail("recomputed a cached ROI")
    )
    assert datasets.lesion_features(lesion, ("CM", "NG"), spec) == features
    roi = lesion.rois.get(phase="CM")
    roi.points = [[x + 0.5, y, z] for x, y, z in roi.points]
    roi.save()
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        datasets.lesion_features(lesion, ("CM",), spec)


def test_an_roi_with_no_pixels_fails_the_run_naming_the_roi_and_stores_nothing(
    settings, tmp_path, admin_user, stored_files
):
    settings.VAR_DIR = tmp_path
    lesions = build_archive(6, phases=("CM",))
    roi = lesions[3].rois.get(phase="CM")
    roi.tool, roi.points = ROI.Tool.LENGTH, roi.points[:2]
    roi.save()
    before = stored_files()
    (run,) = services.start_training(
        admin_user, experiment_file(tmp_path, TINY_RADIOMICS), ["CM"], enqueue=False
    )
    train.apply(kwargs={"training_run_pk": run.pk}, task_id=run.celery_task_id)
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert (
        f"ROI {roi.pk} (CM, lesion {roi.lesion_id})" in run.error
        and "length ROI has no area" in run.error
    )
    assert not ModelVersion.objects.exists() and not Prediction.objects.exists()
    assert stored_files() == before


def test_an_unknown_radiomics_option_is_refused_naming_it_and_nothing_is_stored(
    admin_user, api_client_for
):
    start = {
        "experiment": "radiomics",
        "variant": "CM",
        "overrides": {"radiomics": {"bin_widht": 10}},
    }
    response = api_client_for(admin_user).post("/api/v1/training-runs/", start, format="json")
    assert response.status_code == 400 and "bin_widht" in str(response.json())
    with pytest.raises(CommandError, match="bin_widht"):
        call_command("train", "--experiment", "radiomics", "--set", "radiomics.bin_widht=10")
    assert not TrainingRun.objects.exists() and not ModelVersion.objects.exists()


def test_the_api_and_the_command_start_radiomics_runs(
    admin_user, api_client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = api_client_for(admin_user).post(
            "/api/v1/training-runs/", {"experiment": "radiomics", "variant": "CM"}, format="json"
        )
        call_command(
            "train",
            "--experiment",
            "radiomics",
            "--variant",
            "ALL",
            "--set",
            "classifier.max_features=5",
        )
    assert response.status_code == 201 and response.json()["experiment"]["family"] == "radiomics"
    runs = TrainingRun.objects.order_by("pk")
    assert [(r.experiment_name, r.variant) for r in runs] == [
        ("radiomics", "CM"),
        ("radiomics", "ALL"),
    ]
    assert runs[1].experiment["classifier"]["max_features"] == 5


def _version(experiment_name, family, version=1, active=False):
    return ModelVersion.objects.create(
        experiment_name=experiment_name,
        family=family,
        experiment={},
        variant="CM",
        phases=["CM"],
        builder="small_cnn" if family == ModelFamily.CNN else "radiomics-logistic",
        version=version,
        artifact=f"{experiment_name}-{version}",
        artifact_sha256="0" * 64,
        is_active=active,
    )


def test_a_cm_cnn_and_a_cm_radiomics_model_are_active_together_and_activation_replaces_only_its_own(
    admin_user, api_client_for
):
    cnn = _version("source-study", ModelFamily.CNN, active=True)
    first = _version("radiomics", ModelFamily.RADIOMICS, active=True)
    second = _version("radiomics", ModelFamily.RADIOMICS, version=2)
    response = api_client_for(admin_user).post(f"/api/v1/model-versions/{second.pk}/activate/")
    assert response.status_code == 200 and response.json()["family"] == "radiomics"
    active = set(ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True))
    assert active == {cnn.pk, second.pk} and first.pk not in active


def test_a_saved_roi_is_scored_by_every_active_model_of_both_families(
    settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    settings.VAR_DIR = tmp_path
    lesion = build_archive(1, phases=("CM",))[0]
    cnn = _version("source-study", ModelFamily.CNN, active=True)
    radiomics_version = _version("radiomics", ModelFamily.RADIOMICS, active=True)
    sent = []
    monkeypatch.setattr(
        services, "enqueue_lesion_scoring", lambda lesion_pk: sent.append(lesion_pk)
    )
    with django_capture_on_commit_callbacks(execute=True):
        lesion.rois.get(phase="CM").save()
    assert sorted(services.score_changed_lesion(lesion.pk)) == sorted(
        [cnn.pk, radiomics_version.pk]
    )
    assert sent == [
        lesion.pk
    ]  # one task for the lesion; it scores with every active model (inference.tasks.score_lesion)


def test_the_feature_matrix_has_one_column_per_phase_feature_in_a_fixed_order(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    lesions = build_archive(3, phases=("CM", "NG"))
    spec = get_experiment("radiomics", {"radiomics": {"families": ["statistics"]}}).radiomics
    data = datasets.build_lesion_features(lesions, ("CM", "NG"), spec)
    assert data.features.shape == (
        len(lesions),
        len(data.feature_names),
    ) and data.feature_names == sorted(data.feature_names)
    assert data.lesion_ids == [l.pk for l in lesions] and list(data.labels) == [
        int(l.pathology.malignant) for l in lesions
    ]
    assert np.isfinite(data.features[:, data.feature_names.index("CM:stat_mean")]).all()
