"""The pages work in headless Chromium under the Content-Security-Policy: the models page,
the comparison page and the studies page's phase menus (their scripts now bundles), a JPEG-LS
case (decode worker and codec WebAssembly), Swagger UI and the admin; an injected inline
script does not run."""

import io
import json
import re

import pydicom
import pytest
from pydicom.uid import JPEGLSLossless

from annotations.models import ReaderStudy, ReaderStudyCase
from archive.ingest import ingest_upload
from archive.models import Study
from evaluation.tasks import compute_comparison
from inference.models import RunState, TrainingRun
from tests.factories.dicom import dataset_bytes
from tests.factories.inference import ModelVersionFactory
from tests.factories.reader_study import build_reader_study

from .pages import canvas_pixels, failures, record_responses, wait_until_ready
from .phantom import phantom_study_files

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_models_page_shows_runs_and_versions_and_starts_and_activates(
    live_server, new_page, login, admin_user
):
    history = [
        {"fold": f, "epoch": e, "loss": 1 / e, "val_auc": 0.6 + 0.05 * e}
        for f in (1, 2)
        for e in (1, 2, 3, 4)
    ]
    TrainingRun.objects.create(
        experiment_name="source-study",
        experiment={},
        variant="NG",
        state=RunState.RUNNING,
        created_by=admin_user,
        progress={
            "stage": "folds",
            "folds": 3,
            "epochs": 4,
            "fold": 2,
            "epoch": 2,
            "loss": 0.5,
            "history": history,
        },
    )
    version = ModelVersionFactory(
        artifact="models/x.keras",
        metrics={"oof_auc": 0.812, "n_lesions": 40, "n_malignant": 25},
    )
    page = new_page()
    responses = record_responses(page)
    login(page, admin_user)
    page.goto(f"{live_server.url}/models/")
    run_row = page.locator("#runs tr").first
    run_row.wait_for()
    # Fold 1 done, fold 2 at epoch 2 of 4, fold 3 and the final model not started (CSSOM widths).
    widths = page.evaluate(
        "[...document.querySelectorAll('#runs .bar > span')].map((s) => s.style.width)"
    )
    assert widths == ["100%", "50%", "0%", "0%"], widths
    assert (
        page.locator("#runs .curves svg polyline").count() == 4
    )  # loss and validation AUC of two folds
    assert "0.812" in page.locator("#versions tr").first.text_content()
    checked = page.locator("[name=variant]:checked").evaluate_all(
        "(boxes) => boxes.map((b) => b.value)"
    )
    assert checked == ["CM"]

    page.click("#start-button")
    page.locator("#start-message", has_text="queued 1 run(s)").wait_for()
    page.locator("#runs tr").nth(1).wait_for()
    assert TrainingRun.objects.filter(variant="CM", state=RunState.QUEUED).count() == 1
    page.locator("#versions button", has_text="Activate").click()
    page.locator("#versions tr td:last-child", has_text=re.compile("^active$")).wait_for()
    version.refresh_from_db()
    assert version.is_active
    assert not failures(page, responses), json.dumps(failures(page, responses), indent=1)


def test_the_comparison_page_polls_while_a_worker_computes_and_then_shows_the_result(
    live_server, new_page, login, admin_user, settings
):
    settings.EVALUATION_SYNC_MAX_RATINGS = 10  # 16 lesions x 3 ratings: computed by the worker
    reader_study = build_reader_study(
        n_lesions=16, n_readers=2, variants=("CM",), seed=4
    ).reader_study
    page = new_page()
    responses = record_responses(page)
    login(page, admin_user)
    page.goto(f"{live_server.url}/reader-studies/{reader_study.pk}/comparison/")
    page.locator("#computing").wait_for()
    page.wait_for_timeout(500)
    assert page.locator("#roc-plot").count() == 0
    compute_comparison.run(reader_study_pk=reader_study.pk)  # the worker's part
    page.locator("#roc-plot svg").wait_for(timeout=15_000)  # the page's poll reloaded it
    # matplotlib's inline SVG keeps its style attributes (white background, not black).
    fill = page.evaluate("getComputedStyle(document.querySelector('#roc-plot svg path')).fill")
    assert fill == "rgb(255, 255, 255)", fill
    assert not failures(page, responses), json.dumps(failures(page, responses), indent=1)


def jpeg_ls_case(reader, coordinator):
    """A 4-slice phantom study stored as JPEG-LS (decoded by the charls WebAssembly codec in the worker)."""
    study_uid, files = phantom_study_files(4, 64)
    compressed = []
    for name, data in files:
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.compress(JPEGLSLossless)
        compressed.append((name, dataset_bytes(ds)))
    report = ingest_upload(compressed, coordinator)
    assert report.status == "stored", report.as_dict()
    study = Study.objects.get(study_instance_uid=study_uid)
    reader_study = ReaderStudy.objects.create(
        name="JPEG-LS", case_order=ReaderStudy.CaseOrder.FIXED, created_by=coordinator
    )
    reader_study.readers.add(reader)
    ReaderStudyCase.objects.create(reader_study=reader_study, study=study, position=1)
    return reader_study, study


def test_a_jpeg_ls_case_is_decoded_and_drawn_under_the_policy(
    live_server, new_page, login, reader, coordinator
):
    reader_study, study = jpeg_ls_case(reader, coordinator)
    assert study.series.first().instances.first().transfer_syntax_uid == JPEGLSLossless
    page = new_page()
    responses = record_responses(page)
    login(page, reader)
    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)
    page.wait_for_load_state("networkidle")
    assert any(url.endswith("/codecs/charlswasm_decode.wasm") for _, url in responses)
    for phase in ("NC", "CM", "NG", "EX"):
        pixels = canvas_pixels(page, phase)
        # The phantom, not a black viewport.
        assert pixels["lit"] > 0.2 and pixels["sd"] > 10, (phase, pixels)
    assert not failures(page, responses), json.dumps(failures(page, responses), indent=1)


def test_a_phase_picked_on_the_studies_page_is_saved_at_once(
    live_server, new_page, login, make_case, coordinator
):
    _, study = make_case([], n=2, size=64)
    series = study.series.get(phase="NG")
    page = new_page()
    responses = record_responses(page)
    login(page, coordinator)
    page.goto(f"{live_server.url}/")
    menu = f'form[action="/series/{series.series_instance_uid}/phase/"] select'
    page.select_option(menu, "EX")  # no button pressed
    page.locator("p.notice", has_text="is now EX (set by you)").wait_for()
    series.refresh_from_db()
    assert series.phase == "EX" and series.phase_source == "manual"
    assert not failures(page, responses), json.dumps(failures(page, responses), indent=1)


def test_swagger_ui_and_the_admin_work_under_the_policy(live_server, new_page, login, admin_user):
    reader_study = ReaderStudy.objects.create(name="Pilot", case_order=ReaderStudy.CaseOrder.FIXED)
    page = new_page()
    responses = record_responses(page)
    login(page, admin_user)
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".swagger-ui .info .title").wait_for()
    assert (
        "Renal mass reader-study portal API"
        in page.locator(".swagger-ui .info .title").text_content()
    )
    page.locator(".swagger-ui .opblock").first.wait_for()
    change_list = "/admin/annotations/readerstudy/"
    for path in ("/admin/", change_list, f"{change_list}{reader_study.pk}/change/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    # The admin's own scripts ran: its jQuery namespace is there.
    page.goto(f"{live_server.url}{change_list}")
    assert page.evaluate("typeof window.django") == "object"
    assert not failures(page, responses), json.dumps(failures(page, responses), indent=1)


def test_an_injected_inline_script_is_refused_and_reported_to_the_page(
    live_server, new_page, login, admin_user
):
    page = new_page()
    login(page, admin_user)
    page.goto(f"{live_server.url}/models/")
    violation = page.evaluate(
        """() => new Promise((resolve) => {
            const report = (e) => resolve(e.effectiveDirective);
            document.addEventListener('securitypolicyviolation', report, { once: true });
            setTimeout(() => resolve(null), 3000);
            const script = document.createElement('script');
            script.textContent = 'window.injected = true';
            document.body.append(script);
        })"""
    )
    assert violation and violation.startswith("script-src"), violation
    assert page.evaluate("window.injected") is None
    assert any("Content Security Policy" in line for line in page.log), page.log
