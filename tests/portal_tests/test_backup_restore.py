"""The README's backup and restore procedure, run as written: pg_dump + a copy of the media folder,
restored into a fresh database and folder, which `manage.py verify_archive` then passes.

It needs PostgreSQL (the production database; CI runs the suite on it) and the PostgreSQL
client tools (pg_dump, pg_restore, createdb) of the server's major version.
"""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from archive.ingest import ingest_upload
from archive.models import Instance
from tests.conftest import service_missing
from tests.factories.dicom import dataset_bytes, make_ct_series

ROOT = Path(__file__).resolve().parents[2]


def postgres_url(name):
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{name}"


@pytest.fixture
def postgres_tools():
    if connection.vendor != "postgresql":
        service_missing("the backup procedure is for PostgreSQL (set DATABASE_URL=postgres://...)")
    for tool in ("pg_dump", "pg_restore", "createdb", "dropdb"):
        if shutil.which(tool) is None:
            service_missing(f"{tool} (PostgreSQL client tools) is not installed")


def run(*command, env=None):
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def manage(database_url, media_root, *arguments):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media_root),
        "SECRET_KEY": "restore-test-secret-key",
        "DEID_SECRET": "restore-test-deid-secret",
        "DEBUG": "0",
    }
    return run(sys.executable, str(ROOT / "manage.py"), *arguments, env=env)


@pytest.fixture
def restored_database(postgres_tools):
    name = f"portal_restore_{uuid.uuid4().hex[:10]}"
    yield name
    run("dropdb", "--if-exists", "--maintenance-db", postgres_url("postgres"), name)


def back_up_and_restore(tmp_path, restored_name, media_root, between=None):
    """The README procedure: database first, then media; restore both into new places."""
    dump = tmp_path / "portal.dump"
    source = postgres_url(connection.settings_dict["NAME"])
    done = run("pg_dump", "--format=custom", "--file", str(dump), "--dbname", source)
    assert done.returncode == 0, done.stderr
    if between is not None:
        between()
    media_backup = tmp_path / "media-backup"
    shutil.copytree(media_root, media_backup)

    created = run("createdb", "--maintenance-db", postgres_url("postgres"), restored_name)
    assert created.returncode == 0, created.stderr
    restored = run(
        "pg_restore",
        "--no-owner",
        "--exit-on-error",
        "--dbname",
        postgres_url(restored_name),
        str(dump),
    )
    assert restored.returncode == 0, restored.stderr
    restored_media = tmp_path / "restored-media"
    shutil.copytree(media_backup, restored_media)
    return postgres_url(restored_name), restored_media


def upload(user, count, phase):
    slices = make_ct_series(count, phase=phase)
    assert (
        ingest_upload([(f"{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)], user).status
        == "stored"
    )


@pytest.mark.django_db(transaction=True)
def test_a_backup_restored_into_a_fresh_instance_passes_verify_archive_and_a_stale_media_copy_fails_it(
    reader, media_root, tmp_path, restored_database
):
    upload(reader, 3, "NC")
    upload(reader, 2, "CM")
    assert Instance.objects.count() == 5

    database_url, restored_media = back_up_and_restore(tmp_path, restored_database, media_root)

    pending = manage(database_url, restored_media, "migrate", "--check")
    assert pending.returncode == 0, pending.stdout + pending.stderr
    checked = manage(database_url, restored_media, "verify_archive")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (
        "5 instance(s) checked: 5 ok, 0 missing, 0 unreadable, 0 corrupt; 0 file(s) without an Instance"
        in (checked.stdout + checked.stderr)
    )

    # A media copy older than the dump: the file a row names is missing, and verify_archive says which.
    lost = Instance.objects.order_by("pk").first().file.name
    (restored_media / lost).unlink()
    checked = manage(database_url, restored_media, "verify_archive")
    assert checked.returncode == 1
    assert checked.stdout.split()[:2] == ["missing", lost]
    assert "5 instance(s) checked: 4 ok, 1 missing" in checked.stderr


@pytest.mark.django_db(transaction=True)
def test_uploads_between_the_database_and_the_media_copy_are_listed_as_orphans_never_as_missing(
    reader, media_root, tmp_path, restored_database
):
    upload(reader, 2, "NC")

    database_url, restored_media = back_up_and_restore(
        tmp_path, restored_database, media_root, between=lambda: upload(reader, 1, "NG")
    )

    checked = manage(database_url, restored_media, "verify_archive")
    assert checked.returncode == 1
    assert (
        "2 instance(s) checked: 2 ok, 0 missing, 0 unreadable, 0 corrupt; 1 file(s) without an Instance"
        in (checked.stderr)
    )
    assert checked.stdout.startswith("orphan")
