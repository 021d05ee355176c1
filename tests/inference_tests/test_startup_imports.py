"""The web process never imports TensorFlow or Keras (DESIGN.md "Models").

A fresh interpreter loads what a web process loads: the WSGI application and, found by
name in every app, the URL confs, views and API modules (``archive/dicomweb/`` too), plus the
services, tasks, serializers and admin modules that views import or call while they
answer a request. New modules of those kinds are covered without editing this test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APPS = ("portal", "archive", "annotations", "inference", "evaluation", "cohort")

SCRIPT = """
import importlib, json, pkgutil, re, sys

from portal.wsgi import application

apps = sys.argv[1:]
web_part = re.compile(r"(^|_)(urls|views|api|dicomweb|services|tasks|serializers|admin)$")
imported = []
for app in apps:
    package = importlib.import_module(app)
    for module in pkgutil.walk_packages(package.__path__, app + "."):
        if any(web_part.search(part) for part in module.name.split(".")[1:]):
            importlib.import_module(module.name)
            imported.append(module.name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps({"imported": imported, "tensorflow_or_keras": loaded}))
"""


def test_the_web_process_and_every_apps_web_modules_do_not_import_tensorflow_or_keras():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *APPS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {
        "portal.urls",
        "archive.urls",
        "archive.api",
        "annotations.urls",
        "annotations.api",
        "inference.api",
        "inference.services",
        "inference.tasks",
        "evaluation.views",
        "evaluation.tasks",
    } <= set(result["imported"])
    assert result["tensorflow_or_keras"] == []
