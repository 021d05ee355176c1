"""The comparison page plans the next aided-versus-unaided study from this one (power over readers × cases)."""

import html

import numpy as np
import pytest
from django.urls import reverse

from annotations.models import ReaderCall, ReaderStudy, Session
from evaluation.inputs import gather_inputs
from evaluation.models import ComparisonResult
from evaluation.stats import comparison, sample_size
from tests.factories.reader_study import build_reader_study

N_LESIONS = 30


def _add_aided_calls(reader_study, seed=5):
    """Sequential design; every unaided call gets an aided one moved toward the truth (a model that helps)."""
    reader_study.design = ReaderStudy.Design.SEQUENTIAL
    reader_study.save(update_fields=["design"])
    rng = np.random.default_rng(seed)
    unaided = ReaderCall.objects.filter(
        reader_study=reader_study, session=Session.UNAIDED
    ).select_related("lesion__pathology")
    aided = []
    for call in unaided:
        target = 85 if call.lesion.pathology.malignant else 15
        probability = int(
            np.clip(
                round(call.probability + 0.4 * (target - call.probability) + rng.normal(0, 8)),
                0,
                100,
            )
        )
        aided.append(
            ReaderCall(
                reader_study=reader_study,
                lesion=call.lesion,
                reader=call.reader,
                probability=probability,
                malignant=probability >= 50,
                locked_at=call.locked_at,
                session=Session.AIDED,
            )
        )
    ReaderCall.objects.bulk_create(aided)


@pytest.fixture
def aided_study(db):
    study = build_reader_study(
        n_lesions=N_LESIONS, n_readers=3, variants=(), seed=8, username_prefix="pln"
    )
    _add_aided_calls(study.reader_study)
    return study


def _expected_plan(reader_study, effect):
    """plan_study on the same ratings, straight from the rows (lesions in the page's order, readers by username)."""
    inputs = gather_inputs(reader_study)
    lesions, readers = inputs.analysed_lesions, inputs.aided_readers
    assert len(readers) == 3 and len(lesions) == N_LESIONS
    ratings = np.array(
        [
            [[inputs.calls[(r.pk, l.pk)].probability for l in lesions] for r in readers],
            [[inputs.aided_calls[(r.pk, l.pk)].probability for l in lesions] for r in readers],
        ],
        float,
    )
    truth = np.array([int(l.malignant) for l in lesions])
    pilot = sample_size.pilot_from_ratings(ratings, truth)
    return sample_size.plan_study(pilot, effect, 0.8, 0.05)


def _url(name, reader_study):
    return reverse(f"evaluation:{name}", args=[reader_study.pk])


def test_page_and_json_show_the_plan_of_an_aided_study_equal_to_plan_study(
    client, coordinator, aided_study
):
    reader_study = aided_study.reader_study
    expected = _expected_plan(reader_study, 0.05)
    client.force_login(coordinator)

    analysis = client.get(_url("export-json", reader_study)).json()
    plan = analysis["study_plan"]
    assert (
        plan["effect"] == 0.05
        and plan["power"] == 0.8
        and plan["alpha"] == 0.05
        and plan["unit"] == "cases"
    )
    assert plan["pilot"]["treatments"] == ["unaided", "aided"] and plan["pilot"]["n_readers"] == 3
    assert plan["observed_difference"] == pytest.approx(-expected.pilot.observed_effect)
    assert "Hillis, Obuchowski & Berbaum (2011)" in plan["source"] and "RJafroc" in plan["source"]
    for analysis_key in ("rrrc", "frrc", "rrfc"):
        table = expected.tables[analysis_key]
        got = plan["analyses"][analysis_key]
        assert got["readers"] == table.readers and got["cases"] == table.cases
        np.testing.assert_allclose(got["power"], table.power, rtol=1e-12)
        assert [n["cases"] for n in got["cases_needed"]] == [
            n.n_cases for n in expected.cases_needed[analysis_key]
        ]

    page = client.get(_url("comparison", reader_study))
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert "Planning the next study" in text and 'id="plan-rrrc"' in text
    assert 'id="plan-frrc"' in text and 'id="plan-rrfc"' in text
    assert "Hillis, Obuchowski & Berbaum (2011)" in text and "validated against RJafroc" in text
    rrrc = text[text.index('id="plan-rrrc"') :]
    rrrc = rrrc[: rrrc.index("</table>")]
    first_row = expected.tables["rrrc"].power[0]
    assert f"{first_row[0]:.2f}" in rrrc and f"{first_row[-1]:.2f}" in rrrc
    needed = expected.cases_needed["rrrc"][-1]  # 15 readers
    if needed.n_cases is not None:
        assert f"{needed.n_cases} cases (power {needed.power:.2f})" in rrrc
    else:
        assert "not reachable" in rrrc or "more than 2000 cases" in rrrc


def test_the_effect_parameter_sets_the_planned_difference_on_page_and_json(
    client, coordinator, aided_study
):
    reader_study = aided_study.reader_study
    expected = _expected_plan(reader_study, 0.1)
    client.force_login(coordinator)
    plan = client.get(_url("export-json", reader_study), {"effect": "0.1"}).json()["study_plan"]
    assert plan["effect"] == 0.1
    np.testing.assert_allclose(
        plan["analyses"]["rrrc"]["power"], expected.tables["rrrc"].power, rtol=1e-12
    )
    text = html.unescape(
        client.get(_url("comparison", reader_study), {"effect": "0.1"}).content.decode()
    )
    assert "an AUC difference of 0.1 " in text and 'name="effect"' in text
    assert "effect=0.1" in text  # the downloads keep the chosen effect
    # The effect is part of the cached result's options: one row per effect.
    assert {
        row.options["effect"] for row in ComparisonResult.objects.filter(reader_study=reader_study)
    } == {0.1}


def test_the_planned_effect_defaults_to_the_setting(client, coordinator, aided_study, settings):
    settings.EVALUATION_PLAN_EFFECT = 0.08
    client.force_login(coordinator)
    plan = client.get(_url("export-json", aided_study.reader_study)).json()["study_plan"]
    assert plan["effect"] == 0.08


@pytest.mark.parametrize("effect", ["0", "-0.05", "0.6", "nan", "inf", "a lot"])
def test_a_bad_effect_is_answered_400_naming_it_and_nothing_is_computed(
    client, coordinator, aided_study, effect
):
    reader_study = aided_study.reader_study
    client.force_login(coordinator)
    for name in ("comparison", "export-json", "comparison-status", "export-csv"):
        answer = client.get(_url(name, reader_study), {"effect": effect})
        assert answer.status_code == 400, name
        assert answer.json()["field"] == "effect" and "effect" in answer.json()["error"]
    assert not ComparisonResult.objects.filter(reader_study=reader_study).exists()


def test_a_bad_effect_does_not_tell_an_outsider_the_reader_study_exists(
    client, make_user, aided_study
):
    from portal.roles import READER

    client.force_login(make_user("outsider", READER))
    assert (
        client.get(_url("comparison", aided_study.reader_study), {"effect": "9"}).status_code == 404
    )


def test_an_unaided_only_study_says_what_planning_would_need(client, coordinator, db):
    study = build_reader_study(
        n_lesions=20, n_readers=2, variants=(), seed=9, username_prefix="una"
    )
    client.force_login(coordinator)
    text = html.unescape(client.get(_url("comparison", study.reader_study)).content.decode())
    assert 'id="plan-needed"' in text and comparison.PLAN_NEEDS_A_PILOT in text
    assert "manage.py plan_reader_study" in text and 'id="plan-rrrc"' not in text
    assert 'name="effect"' not in text
    plan = client.get(_url("export-json", study.reader_study)).json()["study_plan"]
    assert plan == {"error": comparison.PLAN_NEEDS_A_PILOT}


def test_the_worker_computes_the_plan_with_the_requested_effect(
    client, coordinator, aided_study, settings, django_capture_on_commit_callbacks
):
    from evaluation.tasks import compute_comparison

    settings.EVALUATION_SYNC_MAX_RATINGS = 10  # this study goes to the worker
    reader_study = aided_study.reader_study
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.get(_url("export-json", reader_study), {"effect": "0.07"}).status_code == 202
    assert len(callbacks) == 1
    compute_comparison.run(reader_study_pk=reader_study.pk, effect=0.07)  # what the worker does
    plan = client.get(_url("export-json", reader_study), {"effect": "0.07"}).json()["study_plan"]
    expected = _expected_plan(reader_study, 0.07)
    np.testing.assert_allclose(
        plan["analyses"]["rrrc"]["power"], expected.tables["rrrc"].power, rtol=1e-12
    )


def test_plan_next_study_with_patients_counts_patients():
    rng = np.random.default_rng(0)
    truth = np.tile([0, 1], 20)
    patients = np.repeat(np.arange(20), 2)
    ratings = rng.normal(truth, 1.0, (2, 3, 40))
    plan = comparison.plan_next_study(["a", "b", "c"], truth, patients, ratings, True, 0.05)
    assert (
        plan["unit"] == "patients"
        and plan["pilot"]["n_cases"] == 20
        and "by patient" in plan["method"]
    )
    one_reader = comparison.plan_next_study(["a"], truth, patients, ratings[:, :1], True, 0.05)
    assert "at least two readers" in one_reader["error"]
