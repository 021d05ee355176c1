"""Browser-test fixtures: headless Debian Chromium through Playwright, logged-in pages,
and cases (a phantom study ingested through the one ingest path, in a reader study).

Chromium is ``/usr/bin/chromium`` (never ``playwright install``); without it the tests
skip, or fail when ``REQUIRE_SERVICES=1``. The JS bundle must have been built
(``make frontend``); the live server serves it straight from the app's static folder.

The pages run under the portal's Content-Security-Policy, which refuses ``eval``: give
``page.wait_for_function`` a function (``"() => ..."``), which Playwright evaluates once,
not an expression, which it evaluates again at every poll (microsoft/playwright#36986).
"""

import os
import shutil
from pathlib import Path

import pytest

from annotations.models import ReaderStudy, ReaderStudyCase
from archive.ingest import ingest_upload
from archive.models import Study
from tests.conftest import service_missing

from .phantom import phantom_study_files

CHROMIUM = Path("/usr/bin/chromium")
REPOSITORY = Path(__file__).resolve().parents[2]
BUILD = REPOSITORY / "portal" / "static" / "portal" / "build"
ARTIFACTS = REPOSITORY / "test-artifacts"
# Playwright's defaults already use SwiftShader WebGL in headless mode; running as root needs --no-sandbox.
CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-swiftshader"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        service_missing(
            f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)"
        )
    missing = [
        name
        for name in ("case.js", "worklist.js", "decodeImageFrameWorker.js")
        if not (BUILD / name).exists()
    ]
    if missing:
        pytest.fail(
            f"the JS bundle is not built ({', '.join(missing)} missing in {BUILD}): run `make frontend`"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests
    # make between page actions are still synchronous and safe.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser):
    """A function giving a page in a fresh browser profile; console errors are collected on ``page.log``."""
    contexts = []

    def make(width=1500, height=950):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.log = []
        page.on(
            "console",
            lambda message: page.log.append(
                f"{message.type}: {message.text} ({message.location.get('url', '')})"
            ),
        )
        page.on("pageerror", lambda error: page.log.append(f"pageerror: {error}"))
        page.set_default_timeout(20_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def login(live_server):
    """Log ``user`` in through the login form (password ``pw-<username>``, as tests.conftest makes them)."""

    def log_in(page, user):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", f"pw-{user.username}")
        page.click("form.login button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    return log_in


@pytest.fixture
def make_case(coordinator):
    """A phantom study (``n`` slices of ``size``² per phase) uploaded by the coordinator, as a case
    of a reader study."""

    def make(readers, n=64, size=512, name="Renal masses"):
        study_uid, files = phantom_study_files(n, size)
        report = ingest_upload(list(files), coordinator)
        assert report.status == "stored", report.as_dict()
        study = Study.objects.get(study_instance_uid=study_uid)
        reader_study, _ = ReaderStudy.objects.get_or_create(
            name=name,
            defaults={"case_order": ReaderStudy.CaseOrder.FIXED, "created_by": coordinator},
        )
        reader_study.readers.add(*readers)
        ReaderStudyCase.objects.get_or_create(
            reader_study=reader_study,
            study=study,
            defaults={"position": reader_study.cases.count() + 1},
        )
        return reader_study, study

    return make


@pytest.fixture(scope="session")
def artifacts():
    """``test-artifacts/`` (git-ignored): screenshots of the test run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def copy_to_docs(path, name):
    """Copy a screenshot to docs/screenshots/ when it is missing there or UPDATE_SCREENSHOTS=1
    (so that a test run leaves the committed one alone otherwise)."""
    target = REPOSITORY / "docs" / "screenshots" / name
    if target.exists() and os.environ.get("UPDATE_SCREENSHOTS", "") not in {"1", "true", "yes"}:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
