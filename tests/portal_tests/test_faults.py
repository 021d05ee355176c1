"""Fault tests: what a user relies on when Redis, PostgreSQL, a web worker or the disk fail.

Each test runs the portal under gunicorn against its OWN private services, started on
free ports (the shared PostgreSQL and Redis of CI are never stopped): a PostgreSQL
cluster made once per session (initdb + migrate, about 8 s), a redis-server per test
(no persistence) and the media folder of the test. Users and data are made through
``manage.py shell`` against the same services; outcomes are read back through the API,
``manage.py verify_archive`` and SQL.
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

import psycopg2
import pytest
import redis
import requests

from benchmarks.processes import (
    PostgresCluster,
    Processes,
    gunicorn_workers,
    start_gunicorn,
    start_redis,
)
from tests.conftest import service_missing
from tests.factories.dicom import dataset_bytes, make_ct_series

pytestmark = pytest.mark.faults

REPOSITORY = Path(__file__).resolve().parents[2]
TEMPLATE = "portal_faults_template"


@pytest.fixture(scope="session")
def private_postgres():
    """A private PostgreSQL cluster with the portal's tables, made once per session; removed afterwards."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        service_missing("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        service_missing("runuser is needed to run PostgreSQL as the postgres user")
    folder = Path(tempfile.mkdtemp(prefix="portal-faults-pg-"))
    cluster = PostgresCluster(folder / "data").create()
    cluster.start()
    try:
        connection = psycopg2.connect(cluster.url("postgres"))
        connection.autocommit = True
        connection.cursor().execute(f"CREATE DATABASE {TEMPLATE}")
        connection.close()
        environment = portal_environment(cluster, TEMPLATE, redis_port=1, media=folder / "media")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"],
            cwd=REPOSITORY,
            env=environment,
            check=True,
            timeout=300,
        )
        yield cluster
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(cluster.bindir / "pg_ctl"),
                "stop",
                "-D",
                str(cluster.datadir),
                "-m",
                "immediate",
            ]
            if os.geteuid() == 0
            else [
                str(cluster.bindir / "pg_ctl"),
                "stop",
                "-D",
                str(cluster.datadir),
                "-m",
                "immediate",
            ],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def portal_environment(cluster, database, redis_port, media):
    """The environment of a production-like portal process on the private services."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    environment.update(
        DEBUG="0",
        SECRET_KEY="fault-tests-secret-key",
        DEID_SECRET="fault-tests-deid-secret",
        DATABASE_URL=cluster.url(database),
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
        MEDIA_ROOT=str(media),
        VAR_DIR=str(Path(media).parent / "var"),
        LOG_LEVEL="WARNING",
    )
    return environment


class Portal:
    """gunicorn serving the portal on a private Redis and a database of its own, with its own media folder.

    The database is a copy of the migrated template (``CREATE DATABASE … TEMPLATE``, well under a second).
    """

    def __init__(self, cluster, workdir):
        if shutil.which("redis-server") is None:
            service_missing("redis-server is not installed")
        self.cluster = cluster
        self.database = f"portal_faults_{uuid.uuid4().hex[:8]}"
        connection = psycopg2.connect(cluster.url("postgres"))
        connection.autocommit = True
        connection.cursor().execute(f"CREATE DATABASE {self.database} TEMPLATE {TEMPLATE}")
        connection.close()
        self.workdir = Path(workdir)
        self.media = self.workdir / "media"
        self.media.mkdir(exist_ok=True)
        self.processes = Processes()
        self.redis, self.redis_port = start_redis(self.processes, self.workdir)
        self.environment = portal_environment(cluster, self.database, self.redis_port, self.media)
        self.base = self.gunicorn = None

    def start(self, workers=1):
        self.base, _ = start_gunicorn(
            self.processes,
            self.workdir,
            self.environment,
            workers=workers,
            threads=1,
            ready_path="/accounts/login/",
            repository=REPOSITORY,
        )
        self.gunicorn = next(
            child for child, _ in self.processes.children if "gunicorn" in child.args[0]
        )
        return self

    def stop_redis(self):
        self.redis.terminate()
        self.redis.wait(timeout=10)

    def start_redis(self):
        self.redis, _ = start_redis(self.processes, self.workdir, port=self.redis_port)

    def manage(self, *arguments, check=True):
        """``manage.py`` on this portal's services; returns the finished process (stdout and stderr as text)."""
        return subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=REPOSITORY,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def shell(self, code):
        """Run ``code`` in ``manage.py shell``; it prints one JSON value, which is returned."""
        return json.loads(self.manage("shell", "-c", code).stdout.strip().splitlines()[-1])

    def sql(self, query, *parameters):
        with psycopg2.connect(self.cluster.url(self.database)) as connection:
            cursor = connection.cursor()
            cursor.execute(query, parameters)
            return cursor.fetchall()

    def post(self, path, token, timeout=60, **kwargs):
        return requests.post(
            f"{self.base}{path}",
            headers={"Authorization": f"Token {token}"},
            timeout=timeout,
            **kwargs,
        )

    def verify_archive(self, *options):
        """``manage.py verify_archive``: (exit code, output)."""
        done = self.manage("verify_archive", *options, check=False)
        return done.returncode, done.stdout + done.stderr

    def close(self):
        self.processes.stop_all()


@pytest.fixture
def portal(private_postgres, tmp_path):
    running = Portal(private_postgres, tmp_path)
    yield running
    running.close()


USERS = """
import json
from django.contrib.auth.models import Group
from django.core.management import call_command
from io import StringIO
from portal.roles import ensure_roles
from django.contrib.auth import get_user_model

ensure_roles()
tokens = {}
for name, role, extra in NAMES:
    user = get_user_model().objects.create_user(username=name, password="fault-test-pw-" + name, **extra)
    user.groups.add(Group.objects.get(name=role))
    out = StringIO()
    call_command("drf_create_token", name, stdout=out)
    tokens[name] = out.getvalue().split()[2]
"""


def make_users(portal, *roles, then=None):
    """One new user per role ("reader", "coordinator", "admin"); returns {role: (username, API token)}.

    With ``then`` (code run next in the same shell, which prints ``[tokens, value]``): also that value.
    """
    names = [f"{role}-{uuid.uuid4().hex[:8]}" for role in roles]
    spec = [
        (name, role, {"is_staff": True} if role == "admin" else {})
        for name, role in zip(names, roles)
    ]
    code = (
        f"NAMES = {spec!r}\n"
        + USERS
        + (then or f"print(json.dumps([tokens[n] for n in {names!r}]))")
    )
    printed = portal.shell(code)
    tokens, value = printed if then else (printed, None)
    users = {role: (name, token) for role, name, token in zip(roles, names, tokens)}
    return (users, value) if then else users


def upload_count(portal, username):
    return portal.sql(
        "SELECT count(*) FROM portal_upload u JOIN auth_user a ON a.id = u.user_id WHERE a.username = %s",
        username,
    )[0][0]


def study_files(n, rows=64):
    """``n`` CT slices of one new series as (name, Part 10 bytes)."""
    return [
        (f"{i}.dcm", dataset_bytes(ds))
        for i, ds in enumerate(make_ct_series(n, phase="CM", Rows=rows, Columns=rows))
    ]


def as_zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


def instance_count(portal, files):
    uids = [make_uid(data) for _, data in files]
    return portal.sql(
        "SELECT count(*) FROM portal_instance WHERE sop_instance_uid = ANY(%s)", uids
    )[0][0]


def make_uid(data):
    import pydicom

    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


# --- 1. Redis stopped --------------------------------------------------------------

DISPATCH_TWICE = """
import json
from inference.tasks import dispatch_waiting_runs
print(json.dumps([dispatch_waiting_runs(), dispatch_waiting_runs()]))
"""


def test_with_redis_stopped_an_upload_is_stored_whole_and_a_training_request_gets_503_and_is_sent_later(
    portal,
):
    users = make_users(portal, "reader", "admin")
    portal.start()
    portal.stop_redis()

    files = study_files(4)
    answer = portal.post(
        "/api/v1/uploads/", users["reader"][1], files=[("files", f) for f in files]
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["stored"] == 4 and instance_count(portal, files) == 4

    training = {"experiment": "source-study", "variant": "CM"}
    answer = portal.post("/api/v1/training-runs/", users["admin"][1], json=training)
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert "task queue" in error and "queued" in error, error
    run_pk = answer.json()["training_run"]
    assert portal.sql("SELECT state FROM inference_trainingrun WHERE id = %s", run_pk) == [
        ("queued",)
    ]

    portal.start_redis()
    broker = redis.Redis(port=portal.redis_port)
    assert broker.llen("gpu") == 0  # Redis came back empty
    # What the beat task inference.tasks.dispatch_waiting_runs does every minute; the second call sends nothing.
    assert portal.shell(DISPATCH_TWICE) == [[run_pk], []]
    (task_id,) = portal.sql(
        "SELECT celery_task_id FROM inference_trainingrun WHERE id = %s", run_pk
    )[0]
    messages = [json.loads(m) for m in broker.lrange("gpu", 0, -1)]
    assert [(m["headers"]["task"], m["headers"]["id"]) for m in messages] == [
        ("inference.tasks.train", task_id)
    ]
    code, output = portal.verify_archive()
    assert code == 0 and "4 instance(s) checked: 4 ok" in output, output


SAVE_ROI_WITHOUT_REDIS = """
import json
from annotations import services
from inference.models import ModelVersion, PendingScoring
from tests.factories.annotated_archive import build_archive

lesion = build_archive(1, phases=("CM",))[0]
ModelVersion.objects.create(
    experiment_name="tiny", experiment={}, variant="CM", phases=["CM"], builder="small_cnn",
    version=1, artifact="models/none.keras", artifact_sha256="0" * 64, is_active=True,
)
services.update_roi(lesion.rois.get(), None, stats={"mean": 1.0})  # the scoring task cannot be sent
print(json.dumps([lesion.pk, list(PendingScoring.objects.values_list("lesion_id", flat=True))]))
"""

RESEND_SCORING = """
import json
from datetime import timedelta
from django.utils import timezone
from inference import services
later = timezone.now() + timedelta(seconds=services.scoring_debounce_seconds() + services.SCORING_RESEND_AFTER_S + 1)
print(json.dumps([services.dispatch_waiting_scoring(), services.dispatch_waiting_scoring(now=later),
                  services.dispatch_waiting_scoring(now=later)]))
"""


def test_with_redis_stopped_an_roi_save_stands_and_its_scoring_is_sent_when_redis_is_back(portal):
    portal.stop_redis()
    lesion, pending = portal.shell(SAVE_ROI_WITHOUT_REDIS)
    assert pending == [lesion]  # the save committed; the lesion waits to be scored

    portal.start_redis()
    # The beat task inference.tasks.dispatch_waiting_scoring: nothing while the mark is fresh, then one send.
    assert portal.shell(RESEND_SCORING) == [[], [lesion], []]
    messages = [json.loads(m) for m in redis.Redis(port=portal.redis_port).lrange("gpu", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["inference.tasks.score_lesion"]


# --- 2. PostgreSQL restarted during a call save ------------------------------------

CASE = """
import json
from annotations import services
from annotations.models import ReaderStudy
from django.contrib.auth import get_user_model
from archive.ingest import ingest_upload
from archive.models import Study
from tests.factories.dicom import dataset_bytes, make_ct_series

users = get_user_model().objects
coordinator, reader = users.get(username=NAMES[1][0]), users.get(username=NAMES[0][0])
slices = make_ct_series(2, phase="CM")
assert ingest_upload([(f"{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)], coordinator).status == "stored"
study = Study.objects.get(study_instance_uid=slices[0].StudyInstanceUID)
reader_study = ReaderStudy.objects.create(name="faults", seed=1, created_by=coordinator)
reader_study.cases.create(study=study, position=1)
reader_study.readers.add(reader)
lesions = [services.create_lesion(study, coordinator, f"L{i}").pk for i in (1, 2, 3)]
print(json.dumps([[tokens[n] for n, _, _ in NAMES], {"reader_study": reader_study.pk, "lesions": lesions}]))
"""


def test_after_a_postgresql_restart_a_call_save_succeeds_and_a_retry_makes_no_duplicate(portal):
    users, case = make_users(portal, "reader", "coordinator", then=CASE)
    token = users["reader"][1]
    first, second, third = case["lesions"]
    portal.start()

    def save_call(lesion):
        call = {
            "reader_study": case["reader_study"],
            "lesion": lesion,
            "malignant": True,
            "probability": 80,
        }
        return portal.post("/api/v1/calls/", token, json=call)

    assert save_call(first).status_code == 201  # the worker now holds a database connection
    portal.cluster.restart()
    answer = save_call(second)  # on the connection the restart closed
    assert answer.status_code == 201, answer.text

    # A restart while a save waits inside its transaction (on a table lock held here).
    holder = psycopg2.connect(portal.cluster.url(portal.database))
    holder.cursor().execute("LOCK TABLE annotations_readercall IN EXCLUSIVE MODE")
    answers = []
    saving = threading.Thread(target=lambda: answers.append(save_call(third)))
    saving.start()
    deadline = time.monotonic() + 20
    while not portal.sql("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
        assert time.monotonic() < deadline, "the call save never waited for the lock"
        time.sleep(0.05)
    portal.cluster.restart()
    saving.join(timeout=60)
    holder.close()
    (interrupted,) = answers
    assert interrupted.status_code == 503, interrupted.text
    assert "database" in interrupted.json()["error"]
    retried = save_call(third)  # the client's retry
    assert retried.status_code == 201, retried.text
    again = save_call(third)  # a retry of a save whose answer was lost: the same call, not a second
    assert again.status_code == 200, again.text
    assert again.json()["id"] == retried.json()["id"]
    rows = portal.sql(
        "SELECT lesion_id, count(*) FROM annotations_readercall WHERE reader_study_id = %s GROUP BY lesion_id",
        case["reader_study"],
    )
    assert sorted(rows) == [(first, 1), (second, 1), (third, 1)]


# --- 3. A gunicorn worker killed mid-upload ----------------------------------------


def test_a_worker_killed_mid_upload_stores_nothing_and_its_files_are_cleaned(portal):
    ((reader, token),) = make_users(portal, "reader").values()
    portal.start()
    files = study_files(8)
    body = as_zip(files)
    answers = []

    def upload():
        try:
            answers.append(
                portal.post("/api/v1/uploads/", token, files=[("files", ("study.zip", body))])
            )
        except requests.ConnectionError as error:
            answers.append(error)

    # The worst moment to die: every file written, the rows not yet committed. A lock held
    # here stops the upload's transaction at its first row (an Upload), with the files written.
    holder = psycopg2.connect(portal.cluster.url(portal.database))
    holder.cursor().execute("LOCK TABLE portal_upload IN EXCLUSIVE MODE")
    (worker,) = gunicorn_workers(portal.gunicorn)
    uploading = threading.Thread(target=upload)
    uploading.start()
    deadline = time.monotonic() + 60
    while not portal.sql("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
        assert uploading.is_alive(), f"the upload ended without waiting for its rows: {answers}"
        assert time.monotonic() < deadline, "the upload never reached its rows"
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    uploading.join(timeout=60)
    holder.close()
    assert isinstance(answers[0], requests.ConnectionError), answers
    assert instance_count(portal, files) == 0 and upload_count(portal, reader) == 0
    left = [p for p in (portal.media / "instances").rglob("*") if p.is_file()]
    assert (
        len(left) == 8
    )  # files without rows: what verify_archive lists and --remove-orphans deletes

    code, output = portal.verify_archive("--remove-orphans", "--orphan-minutes", "0")
    assert code == 0, output
    assert output.count("removed  instances/") == 8, output
    assert (
        "0 instance(s) checked: 0 ok, 0 missing, 0 unreadable, 0 corrupt; 0 file(s) without an Instance"
        in output
    )

    retried = portal.post("/api/v1/uploads/", token, files=[("files", ("study.zip", body))])
    assert retried.status_code == 201, retried.text
    code, output = portal.verify_archive()
    assert code == 0 and "8 instance(s) checked: 8 ok" in output, output


# --- 4. Media storage full -----------------------------------------------------------


@pytest.fixture
def full_media(portal):
    """The portal's media folder on a 2 MiB tmpfs (a real ENOSPC when it fills)."""
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(portal.media)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        service_missing(f"this machine does not allow mounting a tmpfs: {mounted.stderr.strip()}")
    yield portal.media
    subprocess.run(["umount", "-l", str(portal.media)], capture_output=True)


def test_an_upload_onto_a_full_disk_gets_a_clear_error_and_nothing_is_stored(portal, full_media):
    ((reader, token),) = make_users(portal, "reader").values()
    portal.start()
    files = study_files(24, rows=256)  # 24 x 128 KiB: more than 2 MiB
    answer = portal.post("/api/v1/uploads/", token, files=[("files", f) for f in files])
    assert answer.status_code == 507, answer.text
    assert "storage is full" in answer.json()["error"]
    assert instance_count(portal, files) == 0
    assert upload_count(portal, reader) == 0
    assert [p for p in full_media.rglob("*") if p.is_file()] == []
    code, output = portal.verify_archive()
    assert code == 0, output
    small = study_files(2)  # the disk is usable again for what fits
    assert (
        portal.post("/api/v1/uploads/", token, files=[("files", f) for f in small]).status_code
        == 201
    )


@pytest.mark.django_db
def test_a_file_cut_short_at_an_instance_storage_name_is_replaced_by_the_next_upload(
    reader, media_root
):
    """What a writer killed mid-write left (before writes went through a temporary name) is not trusted."""
    from archive.ingest import ingest_upload, storage_name
    from archive.integrity import verify_archive

    files = study_files(2)
    name, data = files[0]
    cut_short = media_root / storage_name(hashlib.sha256(data).hexdigest())
    cut_short.parent.mkdir(parents=True)
    cut_short.write_bytes(data[: len(data) // 2])
    assert ingest_upload(files, reader).status == "stored"
    report = verify_archive()
    assert report.ok and report.intact == 2, report.findings
    assert cut_short.read_bytes() == data
