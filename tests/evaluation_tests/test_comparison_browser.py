"""The comparison page in headless Chromium: the ROC plot and the tables are there; a screenshot is kept."""
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.conftest import service_missing

from .test_comparison_factories import build_reader_study

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


def _chromium_or_skip():
    playwright = None
    try:
        from playwright.sync_api import sync_playwright as playwright
    except ImportError:
        pass
    if playwright is None or not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        service_missing(f"Chromium ({CHROMIUM}) or Playwright is missing")
    return playwright


def test_comparison_page_shows_roc_plot_and_tables_in_chromium(live_server, transactional_db, make_user, client, monkeypatch):
    sync_playwright = _chromium_or_skip()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's event loop shares the thread
    study = build_reader_study(n_lesions=80, n_readers=4, variants=("CM", "NG", "EX"), seed=21,
                               lesions_per_patient=1, simulated_readers=(3,), name="Small renal masses 2024")
    coordinator = make_user("coordinator", "coordinator")
    client.force_login(coordinator)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    url = f"{live_server.url}/reader-studies/{study.reader_study.pk}/comparison/"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
        context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        page = context.new_page()
        response = page.goto(url)
        assert response.status == 200
        page.wait_for_selector("#roc-plot svg")
        assert page.locator("#roc-plot svg path").count() > 10
        assert page.locator("#auc-table tbody tr").count() == 4 + 3
        assert page.locator("#lesion-table tbody tr").count() == 80
        assert "Readers' mean AUC" in page.inner_text("#mrmc-sentence")
        for table in ("#model-vs-readers", "#phase-comparison", "#operating-points", "#regression", "#kappa"):
            assert page.locator(table).is_visible(), table
        page.screenshot(path=str(ARTIFACTS / "comparison.png"), full_page=True)
        page.select_option("select[name=subgroup]", "size_le_20")
        page.click("form.controls button")
        page.wait_for_selector("#roc-plot svg")
        assert "Size ≤ 2 cm" in page.inner_text("h2")
        browser.close()
