"""A real Celery worker scores a lesion with a tiny CNN and stores its heat map (Grad-CAM), readable through the API."""

import time

import pytest

from inference import datasets, services
from inference.models import HeatMap
from tests.factories.annotated_archive import build_archive
from tests.factories.inference import TINY_EXPERIMENT, experiment_file, tiny_model_version

from .celery_worker import running_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_worker(tmp_path_factory) as started:
        yield started


def test_the_worker_stores_a_heat_map_per_phase_when_it_scores_a_lesion(
    worker, settings, coordinator, api_client_for
):
    settings.MEDIA_ROOT = worker.media
    lesion = build_archive(1, phases=("CM", "NG"))[0]
    version = tiny_model_version(("CM", "NG"))
    services.enqueue_scoring(version.pk, [lesion.pk])
    deadline = time.monotonic() + 90
    while HeatMap.objects.filter(prediction__lesion=lesion).count() < 2:
        if time.monotonic() > deadline:
            pytest.fail("no heat maps stored; worker:\n" + worker.tail())
        time.sleep(0.3)
    body = api_client_for(coordinator).get(f"/api/v1/lesions/{lesion.pk}/heat-maps/").json()
    assert [(m["phase"], m["method"], m["model_version"]) for m in body["heat_maps"]] == [
        ("CM", "grad_cam", version.pk),
        ("NG", "grad_cam", version.pk),
    ]
    for heat_map in body["heat_maps"]:
        assert (
            heat_map["sop_instance_uid"]
            == datasets.reference_roi(lesion, heat_map["phase"]).sop_instance_uid
        )
        assert heat_map["shape"] == [2, 2] and heat_map["score"] is not None


def test_a_first_trained_model_gets_heat_maps_for_the_lesions_it_trained_on(
    worker, settings, admin_user, tmp_path
):
    from inference.models import ModelVersion, PredictionKind, RunState

    from .celery_worker import wait_for

    settings.MEDIA_ROOT = worker.media
    lesions = build_archive(4, phases=("CM",))
    (run,) = services.start_training(admin_user, experiment_file(tmp_path, TINY_EXPERIMENT), ["CM"])
    wait_for(run, worker, lambda r: r.finished, timeout=120)
    assert run.state == RunState.SUCCEEDED, run.log + worker.tail()
    version = ModelVersion.objects.get(training_run=run)
    deadline = time.monotonic() + 60
    while HeatMap.objects.filter(prediction__model_version=version).count() < len(lesions):
        if time.monotonic() > deadline:
            pytest.fail("the trained lesions got no heat maps; worker:\n" + worker.tail())
        time.sleep(0.3)
    maps = HeatMap.objects.filter(prediction__model_version=version)
    assert {m.prediction.lesion_id for m in maps} == {lesion.pk for lesion in lesions}
    assert {(m.phase, m.method, m.prediction.kind) for m in maps} == {
        ("CM", "grad_cam", PredictionKind.FINAL)
    }
