"""The web process never imports TensorFlow or Keras (DESIGN.md "Models")."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys, django
django.setup()
import portal.urls, inference.models, inference.api, inference.services, inference.tasks, inference.views
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))))
"""


def test_django_start_up_and_the_inference_web_modules_do_not_import_tensorflow_or_keras():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
