"""A real Celery worker process for the worker tests: start it, wait for a run, stop it.

The worker (prefork, one child) gets the environment of the test run: the same test
database, broker (CELERY_BROKER_URL, or the filesystem broker under VAR_DIR) and a storage
folder of its own. The fixtures ``worker`` and ``shared_media`` (tests/inference_tests/conftest.py)
start one per test module.
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

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import service_missing

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


def check_broker(url):
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


@contextlib.contextmanager
def running_worker(tmp_path_factory, **extra_env):
    """A Celery worker process for a test module; ``extra_env`` adds to its environment (e.g. the storage)."""
    check_broker(settings.CELERY_BROKER_URL)
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


def wait_for(run, worker, until, timeout, poll=0.2):
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
