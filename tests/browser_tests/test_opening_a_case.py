"""Opening a case in headless Chromium: each phase at the selected lesion's reference ROI,
and the portal's pages without a failed request or a console error."""

import json

import pytest

from annotations import services

from .pages import ellipse_on, failures, record_responses, slice_indices, wait_until_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_each_phase_opens_at_the_lesions_reference_roi_and_a_phase_without_one_at_the_same_level(
    live_server, new_page, login, make_case, reader, coordinator
):
    # 16 slices: the middle one is 9/16. L1 has reference ROIs on CM (slice 4) and NG (slice 13);
    # NC and EX have none and open at CM's level (the first phase with one), as the slice
    # synchronizer would put them. L2 (not selected) has one on EX that must not count.
    reader_study, study = make_case([reader], n=16, size=128)
    rois = {"CM": ellipse_on(study, "CM", 3, 128), "NG": ellipse_on(study, "NG", 12, 128)}
    services.create_lesion_with_reference_rois(study, "L1", "left", None, rois, coordinator)
    services.create_lesion_with_reference_rois(
        study, "L2", "left", None, {"EX": ellipse_on(study, "EX", 14, 128)}, coordinator
    )
    page = new_page()
    login(page, reader)
    responses = record_responses(page)

    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)
    assert slice_indices(page) == {
        "NC": "NC 4/16",
        "CM": "CM 4/16",
        "NG": "NG 13/16",
        "EX": "EX 4/16",
    }
    # The ROIs are drawn on the slices shown, and opening moved no phase afterwards (synchronizers).
    page.locator(
        '.viewport-cell[data-phase="CM"] svg ellipse, .viewport-cell[data-phase="CM"] svg path'
    ).first.wait_for()
    page.locator(
        '.viewport-cell[data-phase="NG"] svg ellipse, .viewport-cell[data-phase="NG"] svg path'
    ).first.wait_for()
    page.wait_for_timeout(300)
    assert slice_indices(page) == {
        "NC": "NC 4/16",
        "CM": "CM 4/16",
        "NG": "NG 13/16",
        "EX": "EX 4/16",
    }
    # The page preloaded exactly the slices it opened at, not the middle ones.
    files = {
        url.split("/instances/")[1].split("/")[0]
        for status, url in responses
        if url.endswith("/file/")
    }
    assert rois["CM"]["sop_instance_uid"] in files and rois["NG"]["sop_instance_uid"] in files
    assert not failures(page, responses), json.dumps(failures(page, responses), indent=1)

    # Scrolling the active phase (CM) takes every phase to its position (synchronized slice position).
    page.keyboard.press("ArrowDown")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.slice-index')].every((label) => label.dataset.index === '5')"
    )


def test_a_case_without_a_reference_roi_opens_every_phase_at_its_middle_slice(
    live_server, new_page, login, make_case, reader
):
    reader_study, study = make_case([reader], n=16, size=128)
    page = new_page()
    login(page, reader)
    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)
    assert slice_indices(page) == {phase: f"{phase} 9/16" for phase in ("NC", "CM", "NG", "EX")}


def test_the_portals_pages_load_without_a_failed_request_or_a_console_error(
    live_server, new_page, login, make_case, reader, coordinator
):
    reader_study, study = make_case([reader], n=4, size=64)
    pages = {
        reader: [
            "/",
            "/reading/",
            f"/reading/{reader_study.pk}/",
            f"/reading/{reader_study.pk}/{study.study_instance_uid}/",
        ],
        coordinator: ["/", "/upload/", f"/studies/{study.study_instance_uid}/"],
    }
    for user, paths in pages.items():
        page = new_page()
        responses = record_responses(page)
        login(page, user)
        for path in paths:
            page.goto(f"{live_server.url}{path}")
            if page.locator("#case").count():
                wait_until_ready(page)
            page.wait_for_load_state("networkidle")
        assert not failures(page, responses), json.dumps(
            {user.username: failures(page, responses)}, indent=1
        )
        # The icon is declared, so the browser never asks for /favicon.ico (which redirects to it anyway).
        assert not [url for _, url in responses if url.endswith("/favicon.ico")]
