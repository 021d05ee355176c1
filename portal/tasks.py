"""Celery tasks of the portal shell: training the demo's model (queue ``gpu``, beside the training runs).

Keyword arguments are plain values; the task is ``acks_late`` with
``reject_on_worker_lost``, and a repeated message is a no-op once the model exists
(:func:`portal.demo_model.existing_demo_model`). Keras is imported inside the task only.
"""

import logging

from .celery import task

logger = logging.getLogger(__name__)


@task("portal.tasks.train_demo_model")
def train_demo_model(*, experiment_name, variant_name, patients, seed, size, overrides=None):
    """Train, register, activate the demo model on an independent synthetic cohort and score the archive; its pk.

    Then the demo reader study's simulated readers read aided with it
    (:func:`portal.demo_model.simulate_demo_aided_reading`); a failure there is logged,
    the model stays.
    """
    from cohort.importer import CohortImportError

    from .demo_model import simulate_demo_aided_reading
    from .demo_model import train_demo_model as train

    version = train(experiment_name, variant_name, patients, seed, size, overrides)
    try:
        simulate_demo_aided_reading(version)
    except CohortImportError as error:
        logger.warning("demo model %s: no simulated aided calls: %s", version, error)
    return version.pk
