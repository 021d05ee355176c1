"""Worklist progress, a refused save that keeps what was typed, and the coordinator's pathology form."""

import json

import pytest
from django.utils import timezone

from annotations.models import Lesion, Pathology, ReaderCall

from .pages import wait_until_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_worklist_shows_each_case_with_its_progress_and_links_the_next_case(
    live_server, new_page, login, make_case, reader
):
    reader_study, first = make_case([reader], n=6, size=128)
    _, second = make_case([reader], n=8, size=128)
    lesion = Lesion.objects.create(study=first, label="L1", created_by=reader)
    Lesion.objects.create(study=first, label="L2", created_by=reader)
    ReaderCall.objects.create(
        reader_study=reader_study,
        lesion=lesion,
        reader=reader,
        malignant=False,
        probability=20,
        locked_at=timezone.now(),
    )
    page = new_page()
    login(page, reader)

    page.goto(f"{live_server.url}/reading/")
    page.click(f"text={reader_study.name}")
    rows = page.locator("table.worklist tbody tr")
    rows.first.wait_for()
    assert rows.count() == 2
    assert rows.nth(0).locator(".progress").text_content() == "1 of 2 lesions called"
    assert rows.nth(1).locator(".progress").text_content() == "0 of 0 lesions called"
    assert (
        "0 of 2 cases done; 1 of 2 lesions locked."
        in page.locator(".worklist-summary").text_content()
    )

    page.click("a.next-case")
    wait_until_ready(page)
    assert first.study_instance_uid in page.url
    page.locator(".case-nav").wait_for()
    assert page.locator(".case-position").text_content() == "Case 1 of 2"
    page.keyboard.press("]")
    page.wait_for_url(f"**/{second.study_instance_uid}/")
    wait_until_ready(page)
    assert page.locator(".lesion-list li.empty").count() == 1


def test_a_refused_call_save_shows_the_api_message_keeps_the_values_and_retries(
    live_server, new_page, login, make_case, reader
):
    reader_study, study = make_case([reader], n=6, size=128)
    Lesion.objects.create(study=study, label="L1", created_by=reader)
    page = new_page()
    login(page, reader)
    refusal = {"probability": ["Ensure this value is less than or equal to 100."]}

    def refuse(route):
        if route.request.method == "POST":
            route.fulfill(status=400, content_type="application/json", body=json.dumps(refusal))
        else:
            route.continue_()

    page.route("**/api/v1/calls/", refuse)
    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)
    form = page.locator("form.call-form")
    form.locator("input[name=malignant][value=false]").check()
    form.locator("input[name=probability]").evaluate(
        "(el) => { el.value = 15; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    status = form.locator(".save-status")
    page.wait_for_function(
        "() => document.querySelector('form.call-form .save-status').dataset.state === 'error'"
    )
    assert "probability: Ensure this value is less than or equal to 100." in status.text_content()
    assert "Your input is kept" in status.text_content()
    assert form.locator("input[name=malignant][value=false]").is_checked()
    assert form.locator("input[name=probability]").input_value() == "15"
    assert not ReaderCall.objects.exists()

    page.unroute("**/api/v1/calls/")
    status.locator("button.retry").click()
    page.wait_for_function(
        "() => document.querySelector('form.call-form .save-status').dataset.state === 'saved'"
    )
    call = ReaderCall.objects.get()
    assert (call.malignant, call.probability, call.locked_at) == (False, 15, None)


def test_coordinator_enters_pathology_in_the_study_viewer(
    live_server, new_page, login, make_case, reader, coordinator
):
    _, study = make_case([reader], n=6, size=128)
    lesion = Lesion.objects.create(study=study, label="L1", created_by=coordinator)
    page = new_page()
    login(page, coordinator)
    page.goto(f"{live_server.url}/studies/{study.study_instance_uid}/")
    wait_until_ready(page)
    form = page.locator("form.pathology-form")
    form.locator(".save-status", has_text="No pathology entered yet").wait_for()
    form.locator("select[name=subtype]").select_option("oncocytoma")
    assert form.locator("select[name=malignant]").input_value() == "false"
    form.locator("select[name=source]").select_option("biopsy")
    form.locator("input[name=date]").fill("2024-02-01")
    form.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => document.querySelector('form.pathology-form .save-status').dataset.state === 'saved'"
    )
    pathology = Pathology.objects.get(lesion=lesion)
    assert (pathology.subtype, pathology.malignant, pathology.source, str(pathology.date)) == (
        "oncocytoma",
        False,
        "biopsy",
        "2024-02-01",
    )


def drag(page, start, end, steps=8):
    page.mouse.move(*start)
    page.mouse.down()
    for step in range(1, steps + 1):
        page.mouse.move(
            start[0] + (end[0] - start[0]) * step / steps,
            start[1] + (end[1] - start[1]) * step / steps,
        )
        page.wait_for_timeout(40)
    page.wait_for_timeout(200)
    page.mouse.up()


def test_a_length_sets_the_long_axis_and_a_rectangle_is_the_reference_roi_of_its_phase(
    live_server, new_page, login, make_case, reader
):
    reader_study, study = make_case([reader], n=6, size=128)
    page = new_page()
    login(page, reader)
    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)
    box = page.locator('.viewport-cell[data-phase="NG"]').bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    page.click('button[data-tool="length"]')
    drag(page, (centre[0] - 60, centre[1]), (centre[0] + 60, centre[1]))
    page.locator('.lesion-list tr.roi[data-tool="length"]').wait_for()
    page.wait_for_function("() => document.querySelector('.roi-status').dataset.state === 'saved'")
    lesion = Lesion.objects.get()
    roi = lesion.rois.get()
    assert (lesion.label, roi.phase, roi.tool, roi.is_reference) == ("L1", "NG", "length", False)
    assert (
        lesion.long_axis_mm == pytest.approx(roi.stats["length"], abs=0.1)
        and lesion.long_axis_mm > 10
    )
    assert page.locator("form.lesion-fields input[name=long_axis_mm]").input_value() == str(
        lesion.long_axis_mm
    )

    page.keyboard.press("r")
    drag(page, (centre[0] - 20, centre[1] - 20), (centre[0] + 20, centre[1] + 20))
    page.locator('.lesion-list tr.roi[data-tool="rectangle"]').wait_for()
    page.wait_for_function("() => document.querySelector('.roi-status').dataset.state === 'saved'")
    rectangle = lesion.rois.get(tool="rectangle")
    assert rectangle.is_reference and rectangle.phase == "NG" and rectangle.stats["area"] > 0
