"""Celery application: two queues, ``default`` (CPU) and ``gpu`` (training/scoring).

Tasks are routed by name (``CELERY_TASK_ROUTES`` in settings). Workers::

    celery -A portal worker -Q default          # CPU hosts
    celery -A portal worker -Q gpu -c 1         # one per GPU host
"""

import os

from celery import Celery, shared_task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def task(name, *, bind=False):
    """Declare a Celery task of this project; every app's ``tasks.py`` uses it instead of ``shared_task``.

    ``name`` is the task's dotted path, written out because ``CELERY_TASK_ROUTES`` and the
    beat schedule refer to tasks by it. Every task is ``acks_late`` with
    ``reject_on_worker_lost``: a worker that dies hands the message back, so each task
    starts with a status guard or is idempotent. ``bind`` passes the task itself as the
    first argument, for a task that reads its own ``request`` (its message id).
    """
    return shared_task(name=name, bind=bind, acks_late=True, reject_on_worker_lost=True)
