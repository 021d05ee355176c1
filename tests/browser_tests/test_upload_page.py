"""The upload page in headless Chromium: choose files, see the progress and the per-file result table."""

import pytest

from archive.models import Instance
from tests.factories.dicom import dataset_bytes, make_ct_dataset, make_ct_series

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def file_payload(name, ds):
    return {"name": name, "mimeType": "application/dicom", "buffer": dataset_bytes(ds)}


def test_upload_page_reports_each_file_and_stores_nothing_when_one_is_refused(
    new_page, login, reader, live_server, artifacts
):
    page = login(new_page(), reader)
    page.goto(f"{live_server.url}/upload/")
    good = make_ct_series(2, phase="CM")
    named = make_ct_dataset(PatientName="Doe^John")
    page.set_input_files(
        "#file-input", [file_payload("IM0001.dcm", good[0]), file_payload("IM0003.dcm", named)]
    )
    page.wait_for_selector("section.upload table.report")
    rows = {
        r.query_selector("td").inner_text(): r.inner_text()
        for r in page.query_selector_all("table.report tbody tr")
    }
    assert (
        "rejected" in rows["IM0003.dcm"]
        and "PatientName" in rows["IM0003.dcm"]
        and "Doe" not in rows["IM0003.dcm"]
    )
    assert "not stored" in rows["IM0001.dcm"]
    assert "Rejected: nothing was stored" in page.inner_text("section.upload")
    assert page.eval_on_selector("section.upload progress", "p => p.value") == 1
    assert not Instance.objects.exists()

    page.set_input_files(
        "#file-input", [file_payload(f"IM000{i}.dcm", ds) for i, ds in enumerate(good, 1)]
    )
    page.wait_for_function("() => document.querySelectorAll('section.upload').length == 2")
    newest = page.query_selector("section.upload")
    newest.wait_for_selector("table.report")
    assert "2 stored" in newest.inner_text()
    page.screenshot(path=str(artifacts / "upload_page.png"), full_page=True)
    assert Instance.objects.count() == 2
