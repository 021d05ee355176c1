"""Settings for the test run: the portal's settings with test secrets and a private var/ folder.

Everything else (DATABASE_URL, CELERY_BROKER_URL) comes from the environment as usual, so
CI runs the same suite against PostgreSQL and Redis.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DEID_SECRET", "test-deid-secret-not-for-production")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="portal-test-var-"))

from portal.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# Serve static files straight from the apps (no collectstatic needed for live-server tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# The worker integration test (tests/inference_tests/test_worker.py) runs a Celery worker in a
# separate process; an SQLite test database must be a file so that process sees the same data.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test-portal.sqlite3")  # noqa: F405
