"""Celery application: two queues, ``default`` (CPU) and ``gpu`` (training/scoring).

Tasks are routed by name (``CELERY_TASK_ROUTES`` in settings). Workers::

    celery -A portal worker -Q default          # CPU hosts
    celery -A portal worker -Q gpu -c 1         # one per GPU host
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
