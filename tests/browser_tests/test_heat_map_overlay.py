"""The model's heat map over a phase's viewport (issue 13): a coordinator turns it on and the pixels change;
a reader gets no overlay and the API refuses them."""

import io

import numpy as np
import pytest
from PIL import Image

from annotations import services
from tests.factories.inference import make_heat_maps

from .conftest import copy_to_docs
from .pages import ellipse_on, failures, record_responses, wait_until_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def cm_pixels(page):
    return np.asarray(
        Image.open(
            io.BytesIO(page.locator('.viewport-cell[data-phase="CM"]').screenshot())
        ).convert("RGB"),
        int,
    )


def test_a_coordinator_overlays_the_heat_map_on_its_slice_and_a_reader_gets_none(
    live_server, new_page, login, make_case, reader, coordinator, artifacts
):
    reader_study, study = make_case([reader], n=16, size=128)
    lesion = services.create_lesion_with_reference_rois(
        study, "L1", "left", None, {"CM": ellipse_on(study, "CM", 3, 128)}, coordinator
    )
    services.set_pathology(lesion, "ccRCC", source="surgery", user=coordinator)
    make_heat_maps(lesion, ("CM",))

    page = new_page()
    responses = record_responses(page)
    login(page, coordinator)
    page.goto(f"{live_server.url}/studies/{study.study_instance_uid}/")
    wait_until_ready(page)
    controls = page.locator(".heat-map-controls")
    assert controls.is_visible() and "Grad-CAM" in controls.text_content()
    page.wait_for_timeout(300)
    before = cm_pixels(page)
    assert (
        page.locator('.viewport-cell[data-phase="CM"] canvas.heat-map-overlay').get_attribute(
            "data-shown"
        )
        == ""
    )

    page.check("input.heat-map-toggle")
    page.wait_for_function(
        "() => document.querySelector('.viewport-cell[data-phase=\"CM\"] canvas.heat-map-overlay')"
        ".dataset.shown === '1'"
    )
    page.wait_for_timeout(200)
    after = cm_pixels(page)
    shot = artifacts / "heat-map-overlay.png"
    page.locator(".case-body").screenshot(path=str(shot))
    copy_to_docs(shot, "heat-map-overlay.png")
    changed = np.abs(after - before).sum(axis=-1) > 30
    # The 20 mm window over the mass (about 22 x 22 screen pixels here) changes colour; the rest stays.
    assert changed.sum() > 200 and changed.mean() < 0.05, (changed.sum(), changed.mean())
    colour = after[changed]
    assert (np.ptp(colour, axis=1) > 40).mean() > 0.5  # coloured, not grey
    # Other phases (no map) and a lower opacity: NG unchanged, CM less different.
    assert (
        page.locator('.viewport-cell[data-phase="NG"] canvas.heat-map-overlay').get_attribute(
            "data-shown"
        )
        == ""
    )
    page.fill("input.heat-map-opacity", "10")
    page.wait_for_timeout(200)
    faint = cm_pixels(page)
    assert np.abs(faint - before).sum() < np.abs(after - before).sum()
    # Scrolling away from the map's slice hides it.
    page.evaluate("() => document.activeElement.blur()")  # the slider has the keyboard
    page.locator('.viewport-cell[data-phase="CM"] .viewport-element').first.hover()
    page.keyboard.press("ArrowDown")
    page.wait_for_function(
        "() => document.querySelector('.viewport-cell[data-phase=\"CM\"] canvas.heat-map-overlay').dataset.shown === ''"
    )
    assert not failures(page, responses)

    page = new_page()
    responses = record_responses(page)
    login(page, reader)
    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)
    assert (
        page.locator(".heat-map-controls").count() == 0
        and page.locator("canvas.heat-map-overlay").count() == 0
    )
    assert (
        page.request.get(f"{live_server.url}/api/v1/lesions/{lesion.pk}/heat-maps/").status == 403
    )
    assert not failures(page, [r for r in responses if "/heat-maps/" not in r[1]])
    assert not [url for _, url in responses if "/heat-maps/" in url]  # the page never asked


def test_a_reader_overlays_the_frozen_models_heat_map_only_after_the_unaided_lock(
    live_server, new_page, login, make_case, reader, coordinator
):
    from annotations.models import ReaderStudy
    from inference.aided import freeze_model_version

    reader_study, study = make_case([reader], n=16, size=128)
    reader_study.design = ReaderStudy.Design.SEQUENTIAL
    reader_study.save(update_fields=["design"])
    lesion = services.create_lesion_with_reference_rois(
        study, "L1", "left", None, {"CM": ellipse_on(study, "CM", 3, 128)}, coordinator
    )
    services.set_pathology(lesion, "ccRCC", source="surgery", user=coordinator)
    frozen, _ = make_heat_maps(lesion, ("CM",), active=False)
    make_heat_maps(lesion, ("CM",))  # an active model the study does not show
    freeze_model_version(reader_study, frozen.pk, coordinator)

    page = new_page()
    responses = record_responses(page)
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, reader)
    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)
    controls = page.locator(".aided-reading .heat-map-controls")
    assert controls.count() == 1 and controls.is_hidden()
    assert page.locator(".toolbar .heat-map-controls").count() == 0
    assert not [
        url for _, url in responses if "/heat-maps/" in url
    ]  # the unaided read asks for no map
    assert (
        page.locator('.viewport-cell[data-phase="CM"] canvas.heat-map-overlay').get_attribute(
            "data-shown"
        )
        == ""
    )
    page.wait_for_timeout(300)
    before = cm_pixels(page)

    unaided_form = page.locator("form.call-form:not(.aided-call-form)")
    unaided_form.locator("input[name=malignant][value=false]").check()
    unaided_form.locator("button.lock").click()
    controls.wait_for(state="visible")
    assert str(frozen) in controls.text_content() and "Grad-CAM" in controls.text_content()
    asked = [url for _, url in responses if "/heat-maps/" in url]
    assert asked and all(f"reader_study={reader_study.pk}" in url for url in asked)
    page.check(".aided-reading input.heat-map-toggle")
    page.wait_for_function(
        "() => document.querySelector('.viewport-cell[data-phase=\"CM\"] canvas.heat-map-overlay')"
        ".dataset.shown === '1'"
    )
    page.wait_for_timeout(200)
    changed = np.abs(cm_pixels(page) - before).sum(axis=-1) > 30
    assert changed.sum() > 200 and changed.mean() < 0.05, (changed.sum(), changed.mean())
    assert not failures(page, responses)
