"""Scoring after ROI and pathology saves is debounced per lesion: a burst of saves queues one task per lesion.

The messages are read back from the real broker (Redis under CELERY_BROKER_URL, else the
filesystem broker under VAR_DIR), from the ``gpu`` queue the scoring tasks go to.
"""

import queue

import pytest

from annotations import services as annotations_services
from inference.models import ModelVersion, PendingScoring
from inference.tasks import score_lesion
from portal.celery import app
from tests.factories.annotated_archive import build_archive

from .celery_worker import check_broker

pytestmark = pytest.mark.django_db(transaction=True)


def _drain_gpu_queue():
    """The (task name, kwargs) of every message waiting on the gpu queue; the queue is left empty."""
    messages = []
    with app.connection_for_read() as connection:
        simple = connection.SimpleQueue("gpu", no_ack=True)
        try:
            while True:
                message = simple.get(block=True, timeout=0.5)
                messages.append((message.headers["task"], message.payload[1]))
        except queue.Empty:
            pass
        finally:
            simple.close()
    return messages


@pytest.fixture
def broker(settings):
    check_broker(settings.CELERY_BROKER_URL)
    _drain_gpu_queue()
    yield
    _drain_gpu_queue()


def _active_model(phases):
    return ModelVersion.objects.create(
        experiment_name="tiny",
        experiment={},
        variant="+".join(phases),
        phases=list(phases),
        builder="small_cnn",
        version=1,
        artifact="models/none.keras",
        artifact_sha256="0" * 64,
        is_active=True,
    )


def test_a_burst_of_roi_and_pathology_saves_queues_one_scoring_task_per_lesion(
    broker, settings, tmp_path
):
    settings.VAR_DIR = tmp_path
    first, second = build_archive(3, phases=("CM",))[:2]
    _active_model(["CM"])
    _active_model(["NG"])  # a second active model: still one task per lesion, not one per model
    for value in range(10):
        annotations_services.update_roi(first.rois.get(), None, stats={"mean": float(value)})
        annotations_services.set_pathology(first, "papillary" if value % 2 else "ccRCC")
    for value in range(3):
        annotations_services.update_roi(second.rois.get(), None, stats={"mean": float(value)})
    messages = sorted(_drain_gpu_queue(), key=lambda message: message[1]["lesion_pk"])
    assert messages == [
        ("inference.tasks.score_lesion", {"lesion_pk": first.pk}),
        ("inference.tasks.score_lesion", {"lesion_pk": second.pk}),
    ]
    assert set(PendingScoring.objects.values_list("lesion_id", flat=True)) == {first.pk, second.pk}


def test_a_save_after_the_task_began_queues_the_next_task(broker, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    lesion = build_archive(1, phases=("CM",))[0]
    _active_model(["EX"])  # reads a phase the lesion lacks: the task scores nothing, loads no model
    annotations_services.update_roi(lesion.rois.get(), None, stats={"mean": 1.0})
    assert _drain_gpu_queue() == [("inference.tasks.score_lesion", {"lesion_pk": lesion.pk})]
    assert score_lesion.apply(kwargs={"lesion_pk": lesion.pk}).get() == {
        ModelVersion.objects.get().pk: 0
    }
    assert not PendingScoring.objects.exists()
    annotations_services.update_roi(lesion.rois.get(), None, stats={"mean": 2.0})
    annotations_services.update_roi(lesion.rois.get(), None, stats={"mean": 3.0})
    assert _drain_gpu_queue() == [("inference.tasks.score_lesion", {"lesion_pk": lesion.pk})]


def test_without_an_active_model_a_save_queues_nothing(broker, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    lesion = build_archive(1, phases=("CM",))[0]
    annotations_services.update_roi(lesion.rois.get(), None, stats={"mean": 1.0})
    assert _drain_gpu_queue() == [] and not PendingScoring.objects.exists()
