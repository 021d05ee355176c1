"""The smallest training experiment, for the inference tests.

Studies with an annotated lesion come from ``tests.factories.annotated_archive.build_archive``.
"""

import pytest

from tests.factories.inference import TINY_EXPERIMENT

from .celery_worker import running_worker


@pytest.fixture
def tiny_experiment():
    return dict(TINY_EXPERIMENT)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """One real Celery worker per test module (tests/inference_tests/celery_worker.py)."""
    with running_worker(tmp_path_factory) as started:
        yield started


@pytest.fixture
def shared_media(settings, worker):
    """The test's storage is the worker's."""
    settings.MEDIA_ROOT = worker.media
    return worker.media
