"""The comparison page in headless Chromium: the ROC plot and the tables are there; a screenshot is kept."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.conftest import service_missing
from tests.factories.reader_study import build_reader_study

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


def test_comparison_page_shows_roc_plot_and_tables_in_chromium(
    live_server, transactional_db, make_user, client, monkeypatch
):
    sync_playwright = _chromium_or_skip()
    monkeypatch.setenv(
        "DJANGO_ALLOW_ASYNC_UNSAFE", "true"
    )  # Playwright's event loop shares the thread
    study = build_reader_study(
        n_lesions=80,
        n_readers=4,
        variants=("CM", "NG", "EX"),
        seed=21,
        lesions_per_patient=1,
        simulated_readers=(3,),
        name="Small renal masses 2024",
    )
    coordinator = make_user("coordinator", "coordinator")
    client.force_login(coordinator)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    url = f"{live_server.url}/reader-studies/{study.reader_study.pk}/comparison/"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1440, "height": 1000}, device_scale_factor=1
        )
        context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": session,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        response = page.goto(url)
        assert response.status == 200
        page.wait_for_selector("#roc-plot svg")
        assert page.locator("#roc-plot svg path").count() > 10
        assert page.locator("#auc-table tbody tr").count() == 4 + 3
        assert page.locator("#lesion-table tbody tr").count() == 80
        assert "Readers' mean AUC" in page.inner_text("#mrmc-sentence")
        for table in (
            "#model-vs-readers",
            "#phase-comparison",
            "#operating-points",
            "#regression",
            "#kappa",
        ):
            assert page.locator(table).is_visible(), table
        page.screenshot(path=str(ARTIFACTS / "comparison.png"), full_page=True)
        page.select_option("select[name=subgroup]", "size_le_20")
        page.click("form.controls button")
        page.wait_for_selector("#roc-plot svg")
        assert "Size ≤ 2 cm" in page.inner_text("h2")
        browser.close()


def _read_aided(reader_study, lesions, readers, frozen, seed=5):
    """Each reader locks an unaided call per lesion, then an aided one moved toward the frozen model's score."""
    import numpy as np

    from annotations.calls import record_call
    from annotations.models import Session
    from inference.models import Prediction

    score = dict(Prediction.objects.filter(model_version=frozen).values_list("lesion_id", "score"))
    rng = np.random.default_rng(seed)
    for weight, reader in zip((0.7, 0.5, 0.3), readers):
        for lesion in lesions:
            latent = 0.8 * (2 * int(lesion.pathology.malignant) - 1) + rng.normal(0, 1.3)
            unaided = int(np.clip(round(100 / (1 + np.exp(-latent))), 0, 100))
            aided = int(round(unaided + weight * (100 * score[lesion.pk] - unaided)))
            record_call(reader_study, lesion, reader, unaided >= 50, unaided)
            record_call(reader_study, lesion, reader, aided >= 50, aided, session=Session.AIDED)


def test_an_aided_study_shows_aided_versus_unaided_and_the_plan_in_chromium(
    live_server, transactional_db, make_user, client, monkeypatch
):
    sync_playwright = _chromium_or_skip()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from annotations.models import ReaderStudy
    from inference.aided import freeze_model_version

    synthetic = build_reader_study(
        n_lesions=40,
        n_readers=0,
        variants=("CM",),
        seed=8,
        lesions_per_patient=1,
        state=ReaderStudy.State.OPEN,
        name="Aided reading pilot",
        username_prefix="pilot",
    )
    reader_study, (frozen,) = synthetic.reader_study, synthetic.model_versions
    readers = [make_user(name, "reader") for name in ("ana", "ben", "cai")]
    reader_study.readers.add(*readers)
    ReaderStudy.objects.filter(pk=reader_study.pk).update(design=ReaderStudy.Design.SEQUENTIAL)
    reader_study.refresh_from_db()
    coordinator = make_user("coordinator", "coordinator")
    freeze_model_version(reader_study, frozen.pk, coordinator)
    _read_aided(reader_study, synthetic.lesions, readers, frozen)

    client.force_login(coordinator)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1440, "height": 1000}, device_scale_factor=1
        )
        context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": session,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        assert (
            page.goto(f"{live_server.url}/reader-studies/{reader_study.pk}/comparison/").status
            == 200
        )
        page.wait_for_selector("#aided-sentence-auc")
        assert page.inner_text("#aided-sentence-auc").startswith("Readers' mean AUC")
        assert "source-study/CM v1" in page.inner_text("#aided-model")
        assert (
            page.locator("#aided-auc tbody tr").count() == 3 + 3
        )  # RRRC, FRRC, RRFC + one row per reader
        assert page.locator("#aided-call-changes tbody tr").count() >= 3
        assert page.locator("#plan-rrrc tbody tr").count() > 3
        top = page.locator("#aided").bounding_box()["y"]
        bottom = page.locator("#plan-rrrc").bounding_box()
        shot = ARTIFACTS / "comparison_aided.png"
        page.screenshot(
            path=str(shot),
            full_page=True,
            clip={
                "x": 0,
                "y": top - 10,
                "width": 1440,
                "height": bottom["y"] + bottom["height"] - top + 20,
            },
        )
        browser.close()
    target = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "comparison_aided.png"
    if not target.exists() or os.environ.get("UPDATE_SCREENSHOTS", "") in {"1", "true", "yes"}:
        shutil.copyfile(shot, target)
