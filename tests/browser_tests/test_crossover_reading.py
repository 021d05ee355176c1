"""A reader in a crossover reader study (issue 13): the case's first read shows first; the second read
only once the washout has passed, with the date it opens before then; the model's output only during
the aided read."""

import datetime

import pytest

from annotations import services
from annotations.calls import record_call
from annotations.models import ReaderCall, ReaderStudy
from inference.aided import freeze_model_version
from tests.factories.inference import make_heat_maps

from .pages import ellipse_on, record_responses, wait_until_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNAIDED_FORM = "form.call-form:not(.aided-call-form)"


def crossover_study(make_case, reader, coordinator, washout_days):
    """A crossover of two cases (one aided first, one unaided first for ``reader``), a lesion with a
    CM heat map on each, the model frozen: ``(reader_study, {first session: (study, lesion)})``."""
    name = f"Crossover, washout {washout_days} days"
    cases = [
        make_case([reader], n=n, size=128, name=name) for n in (8, 10)
    ]  # two distinct phantoms
    reader_study = cases[0][0]
    reader_study.design = ReaderStudy.Design.CROSSOVER
    reader_study.washout_days = washout_days
    reader_study.save(update_fields=["design", "washout_days"])
    version = None
    by_first = {}
    for _, study in cases:
        lesion = services.create_lesion_with_reference_rois(
            study, "L1", "left", None, {"CM": ellipse_on(study, "CM", 3, 128)}, coordinator
        )
        services.set_pathology(lesion, "ccRCC", source="surgery", user=coordinator)
        version, _ = make_heat_maps(lesion, ("CM",), version=version, active=False)
        by_first[reader_study.first_session(reader, study.pk)] = (study, lesion)
    assert set(by_first) == {"aided", "unaided"}
    freeze_model_version(reader_study, version.pk, coordinator)
    return reader_study, by_first


def open_case(page, live_server, reader_study, study):
    page.goto(f"{live_server.url}/reading/{reader_study.pk}/{study.study_instance_uid}/")
    wait_until_ready(page)


def lock(form, malignant):
    form.locator(f"input[name=malignant][value={'true' if malignant else 'false'}]").check()
    form.locator("button.lock").click()


def model_asks(responses):
    return [url for _, url in responses if "/model-output/" in url or "/heat-maps/" in url]


def test_crossover_without_washout_shows_the_first_read_first_and_the_model_only_during_the_aided_read(
    live_server, new_page, login, make_case, reader, coordinator
):
    reader_study, by_first = crossover_study(make_case, reader, coordinator, washout_days=0)
    page = new_page()
    responses = record_responses(page)
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, reader)

    study, lesion = by_first[
        "aided"
    ]  # aided first: the model's output, heat map and aided form at once
    open_case(page, live_server, reader_study, study)
    aided = page.locator("section.aided-reading")
    page.wait_for_function(
        "() => document.querySelector('.aided-reading .model-output').dataset.state === 'shown'"
    )
    assert (
        aided.is_visible()
        and "75% probability of malignancy" in aided.locator(".model-output").text_content()
    )
    aided.locator(".heat-map-controls").wait_for(state="visible")
    assert page.locator(UNAIDED_FORM).is_hidden()
    schedule = page.locator(".reading-schedule")
    assert (
        "Aided read first: your unaided read of this case opens once you lock your aided call"
        in schedule.text_content()
    )

    lock(aided.locator("form.aided-call-form"), malignant=True)
    page.locator(UNAIDED_FORM).wait_for(
        state="visible"
    )  # no washout: the unaided read opens at once
    asked = len(model_asks(responses))
    assert aided.is_hidden() and page.locator(".aided-reading .model-output").is_hidden()
    assert page.locator(".aided-reading .heat-map-controls").is_hidden() and schedule.is_hidden()
    lock(page.locator(UNAIDED_FORM), malignant=False)
    aided.wait_for(
        state="visible"
    )  # both reads locked: the aided call shows again, without the model
    assert page.locator("form.aided-call-form").evaluate(
        "(form) => form.classList.contains('locked')"
    )
    assert (
        page.locator(".aided-reading .model-output").is_hidden()
        and len(model_asks(responses)) == asked
    )
    calls = {
        c.session: (c.malignant, c.locked)
        for c in ReaderCall.objects.filter(reader=reader, lesion=lesion)
    }
    assert calls == {"aided": (True, True), "unaided": (False, True)}

    study, lesion = by_first["unaided"]  # unaided first: no model until the unaided lock
    responses.clear()
    open_case(page, live_server, reader_study, study)
    assert (
        aided.is_hidden() and page.locator(UNAIDED_FORM).is_visible() and not model_asks(responses)
    )
    assert (
        "Unaided read first: your aided read (with the model's output) opens once you lock your unaided call"
        in (schedule.text_content())
    )
    lock(page.locator(UNAIDED_FORM), malignant=False)
    page.wait_for_function(
        "() => document.querySelector('.aided-reading .model-output').dataset.state === 'shown'"
    )
    assert aided.is_visible() and schedule.is_hidden()


def test_crossover_with_a_washout_names_the_date_the_second_read_opens_and_shows_no_model_output(
    live_server, new_page, login, make_case, reader, coordinator
):
    reader_study, by_first = crossover_study(make_case, reader, coordinator, washout_days=28)
    _, aided_first = by_first["aided"]
    record_call(
        reader_study, aided_first, reader, True, 80, session="aided"
    )  # read and locked earlier
    page = new_page()
    responses = record_responses(page)
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, reader)

    def opens_on(lesion, session):
        locked_at = ReaderCall.objects.get(reader=reader, lesion=lesion, session=session).locked_at
        return f"{locked_at + datetime.timedelta(days=28):%Y-%m-%d %H:%M} UTC"

    study, lesion = by_first["unaided"]
    open_case(page, live_server, reader_study, study)
    schedule = page.locator(".reading-schedule")
    assert (
        "your aided read (with the model's output) opens 28 days after you lock your unaided call"
        in (schedule.text_content())
    )
    lock(page.locator(UNAIDED_FORM), malignant=False)
    page.wait_for_function(
        "() => document.querySelector('.reading-schedule').textContent.includes('opens on')"
    )
    assert (
        schedule.text_content()
        == f"Your aided read of this case opens on {opens_on(lesion, 'unaided')}."
    )
    assert (
        page.locator("section.aided-reading").is_hidden()
        and page.locator(UNAIDED_FORM).is_visible()
    )
    page.reload()
    wait_until_ready(page)
    assert (
        schedule.text_content()
        == f"Your aided read of this case opens on {opens_on(lesion, 'unaided')}."
    )

    study, lesion = by_first[
        "aided"
    ]  # its aided call locked: the unaided read waits for the washout
    open_case(page, live_server, reader_study, study)
    assert (
        schedule.text_content()
        == f"Your unaided read of this case opens on {opens_on(lesion, 'aided')}."
    )
    assert (
        page.locator("section.aided-reading").is_hidden() and page.locator(UNAIDED_FORM).is_hidden()
    )
    assert not model_asks(responses)  # the model's output and heat maps were never asked for
