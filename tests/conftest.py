"""Shared fixtures: users in each role, API clients, a clean media folder."""

import os
import shutil

import pytest
from rest_framework.test import APIClient

from portal.authentication import issue_token
from portal.roles import ADMIN, COORDINATOR, READER, ensure_roles
from tests.factories.users import UserFactory

# The scenario fixtures (two studies in two reader studies, lesions A and B) for every folder.
pytest_plugins = ["tests.factories.scenarios", "tests.object_store"]  # shared fixtures


def require_services():
    """True when CI asks that tests needing a real service fail instead of skip."""
    return os.environ.get("REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def service_missing(message):
    """Stop a test whose real service or tool is missing: a failure under REQUIRE_SERVICES=1 (CI), else a skip."""
    if require_services():
        pytest.fail(f"{message} and REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test gets its own empty storage folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    yield settings.MEDIA_ROOT
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def api_throttle_counts():
    """Every test starts with no API requests counted (DRF throttles count in Django's cache)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def make_user(db):
    """A function making a user (password ``pw-<username>``) in ``role``, for tests that log in."""

    def make(username, role=None, **extra):
        ensure_roles()
        return UserFactory(username=username, role=role, **extra)

    return make


@pytest.fixture
def reader(make_user):
    return make_user("reader1", READER)


@pytest.fixture
def other_reader(make_user):
    return make_user("reader2", READER)


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator", COORDINATOR)


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", ADMIN, is_staff=True, is_superuser=True)


@pytest.fixture
def api_client_for():
    def client_for(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


@pytest.fixture
def token_for(db):
    """A function giving the API token key of ``user`` (issued once per user and test, as scripts get it)."""
    keys = {}

    def token(user):
        if user.pk not in keys:
            keys[user.pk] = issue_token(user)
        return keys[user.pk]

    return token


@pytest.fixture
def stored_files(media_root):
    """A function listing every file under the storage folder (what uploads left on disk)."""
    return lambda: sorted(p for p in media_root.rglob("*") if p.is_file())


@pytest.fixture(autouse=True, scope="session")
def audit_log_flushable_on_sqlite():
    """Lets a transactional test's flush empty the audit log on SQLite.

    The append-only triggers (annotations.audit_guard) refuse DELETE; PostgreSQL's
    flush is a TRUNCATE, which they do not stop, SQLite's is one DELETE per table. The
    flush lifts the triggers around its statements and puts them back.
    """
    from django.db.backends.sqlite3.base import DatabaseWrapper

    from annotations import audit_guard

    DatabaseOperations = DatabaseWrapper.ops_class
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, **kwargs):
        statements = original(self, style, tables, **kwargs)
        if audit_guard.TABLE not in tables:
            return statements
        return [*audit_guard.SQLITE_REMOVE, *statements, *audit_guard.SQLITE_INSTALL]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original
