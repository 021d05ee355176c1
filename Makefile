# make demo: set everything up and start the portal + a worker on the embedded defaults.
# make test: set everything up the same way and run the whole test suite.
# make lint: formatting, lint, types of the pure modules, layer rules (Python) and Biome (JS).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PATIENTS ?= 48

.PHONY: setup venv frontend migrate demo demo-data test lint clean

setup: venv frontend

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

frontend: frontend/node_modules/.package-lock.json
	cd frontend && node build.mjs
frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

migrate: setup
	DEBUG=1 $(PY) manage.py migrate --no-input

demo: setup
	@export DEBUG=1; set -e; \
	$(PY) manage.py migrate --no-input; \
	$(PY) manage.py collectstatic --no-input -v 0; \
	$(PY) manage.py demo_setup --patients $(DEMO_PATIENTS); \
	$(VENV)/bin/celery -A portal worker -B -s var/celerybeat-schedule -Q default,gpu -c 1 --loglevel INFO > var/worker.log 2>&1 & \
	WORKER=$$!; trap "kill $$WORKER 2>/dev/null" EXIT INT TERM; \
	echo "Worker started (log: var/worker.log)."; \
	echo "Portal: http://$(HOST):$(PORT)/  (logins above; API http://$(HOST):$(PORT)/api/v1/, DICOMweb http://$(HOST):$(PORT)/dicomweb/)"; \
	$(PY) manage.py runserver $(HOST):$(PORT)

test: setup
	$(PY) -m pytest

# Configuration: pyproject.toml (ruff, mypy, import-linter contracts), frontend/biome.json.
lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	cd frontend && npm run --silent lint

clean:
	rm -rf var portal/static/portal/build
