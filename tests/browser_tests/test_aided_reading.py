"""A reader in a sequential reader study: the model's output and the aided form appear only after the
unaided call is locked; both calls are stored."""

import pytest

from annotations import services
from annotations.models import Lesion, ReaderCall, ReaderStudy
from inference.aided import freeze_model_version
from tests.factories.inference import ModelVersionFactory, PredictionFactory

from .pages import wait_until_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_model_output_and_the_aided_form_appear_after_the_unaided_lock(
    live_server, new_page, login, make_case, reader, coordinator
):
    reader_study, study = make_case([reader], n=6, size=128)
    reader_study.design = ReaderStudy.Design.SEQUENTIAL
    reader_study.save(update_fields=["design"])
    lesion = Lesion.objects.create(study=study, label="L1", created_by=coordinator)
    services.set_pathology(lesion, "ccRCC", user=coordinator)
    version = ModelVersionFactory(is_active=True)
    PredictionFactory(model_version=version, lesion=lesion, score=0.72)
    freeze_model_version(reader_study, version.pk, coordinator)

    page = new_page()
    asked = []
    page.on(
        "request",
        lambda request: asked.append(request.url) if "model-output" in request.url else None,
    )
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, reader)
    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)
    aided = page.locator("section.aided-reading")
    assert aided.is_hidden() and not asked  # the unaided session never asks for the model's output

    unaided_form = page.locator("form.call-form:not(.aided-call-form)")
    unaided_form.locator("input[name=malignant][value=false]").check()
    unaided_form.locator("input[name=probability]").evaluate(
        "(el) => { el.value = 30; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    unaided_form.locator("button.lock").click()
    page.wait_for_function(
        "() => document.querySelector('.aided-reading .model-output').dataset.state === 'shown'"
    )
    assert aided.is_visible()
    assert (
        "Model source-study/CM v1: 72% probability of malignancy"
        in aided.locator(".model-output").text_content()
    )
    assert unaided_form.locator(
        "input[name=probability]"
    ).is_disabled()  # the locked unaided call is final
    assert unaided_form.locator("button.revise").is_hidden()

    aided_form = aided.locator("form.aided-call-form")
    aided_form.locator("input[name=malignant][value=true]").check()
    aided_form.locator("input[name=probability]").evaluate(
        "(el) => { el.value = 65; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    aided_form.locator("button.lock").click()
    page.wait_for_function(
        "() => document.querySelector('form.aided-call-form').classList.contains('locked')"
    )
    calls = {
        c.session: (c.malignant, c.probability, c.locked)
        for c in ReaderCall.objects.filter(reader=reader)
    }
    assert calls == {"unaided": (False, 30, True), "aided": (True, 65, True)}

    page.reload()  # both calls restored, the aided panel shown again with the model's output
    wait_until_ready(page)
    page.wait_for_function(
        "() => document.querySelector('.aided-reading .model-output').dataset.state === 'shown'"
    )
    assert page.locator("form.aided-call-form input[name=probability]").input_value() == "65"
    assert (
        page.locator("form.call-form:not(.aided-call-form) input[name=probability]").input_value()
        == "30"
    )
