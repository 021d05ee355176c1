"""Django started in a subprocess with a given environment, for tests of what happens at
start-up (settings read from the environment, what gets imported): the test process has
already configured Django and cannot start it a second time."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_django(env_changes, code="import django; django.setup(); print('started')"):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEID_SECRET", "DEBUG", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        env_changes,
        DJANGO_SETTINGS_MODULE="portal.settings",
        VAR_DIR=env.get("VAR_DIR", "/tmp/portal-settings-test"),
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
