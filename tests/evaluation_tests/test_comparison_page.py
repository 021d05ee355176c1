"""The comparison page and its downloads: who may open them, and that they show the core's numbers."""

import csv
import io
import json

import numpy as np
import pytest
from django.urls import reverse
from django.utils.html import escape

from annotations.models import ReaderStudy
from evaluation import exports, services
from evaluation.inputs import gather_inputs
from evaluation.models import ComparisonResult
from evaluation.stats import agreement, mrmc, operating_points, regression, roc
from portal.roles import ADMIN, COORDINATOR, READER
from tests.factories.reader_study import build_reader_study

PAGE_AND_EXPORTS = [
    "comparison",
    "comparison-status",
    "export-csv",
    "export-long-csv",
    "export-imrmc",
    "export-json",
    "roc-png",
    "roc-svg",
]


@pytest.fixture
def study(db):
    return build_reader_study(
        n_lesions=40, n_readers=3, variants=("CM", "EX"), seed=3, simulated_readers=(2,)
    )


def _arrays(study):
    """Truth, reader probabilities/calls and model scores straight from the rows, in lesion order."""
    inputs = gather_inputs(study.reader_study)
    lesions = inputs.analysed_lesions
    truth = np.array([int(l.malignant) for l in lesions])
    probability = np.array(
        [
            [inputs.calls[(r.pk, l.pk)].probability for l in lesions]
            for r in inputs.analysed_readers
        ],
        float,
    )
    calls = np.array(
        [
            [int(inputs.calls[(r.pk, l.pk)].malignant) for l in lesions]
            for r in inputs.analysed_readers
        ]
    )
    scores = np.array(
        [[inputs.scores[(m.pk, l.pk)][0] for l in lesions] for m in inputs.analysed_models]
    )
    return inputs, lesions, truth, probability, calls, scores


# --- who may open the page and the downloads ---------------------------------


@pytest.mark.parametrize("name", PAGE_AND_EXPORTS)
def test_every_role_gets_the_right_answer_for_page_and_exports(client, make_user, db, name):
    study = build_reader_study(n_lesions=16, n_readers=2, variants=("CM",), seed=4)
    reader_study = study.reader_study
    url = reverse(f"evaluation:{name}", args=[reader_study.pk])
    assert client.get(url).status_code == 302  # anonymous: to the login page
    outsider = make_user("outsider", READER)
    assigned = study.readers[0]
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(assigned)
    assert client.get(url).status_code == 403  # closed, not yet unblinded
    for role in (COORDINATOR, ADMIN):
        client.force_login(make_user(f"user-{role}", role))
        assert client.get(url).status_code == 200, role
    reader_study.state = ReaderStudy.State.UNBLINDED
    reader_study.save()
    client.force_login(assigned)
    assert client.get(url).status_code == 200
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_no_role_at_all_gets_404(client, make_user, study):
    client.force_login(make_user("nobody"))
    assert (
        client.get(reverse("evaluation:comparison", args=[study.reader_study.pk])).status_code
        == 404
    )


# --- the numbers are the core's -----------------------------------------------


def test_page_numbers_equal_the_core_functions_on_the_same_arrays(client, coordinator, study):
    client.force_login(coordinator)
    response = client.get(reverse("evaluation:comparison", args=[study.reader_study.pk]))
    assert response.status_code == 200
    inputs, lesions, truth, probability, calls, scores = _arrays(study)
    result = ComparisonResult.objects.get(revision=inputs.revision).result
    assert result["patient_level"] is False
    group = next(g for g in result["subgroups"] if g["key"] == "all")
    assert group["n"] == len(lesions) == 40
    rows = np.vstack((probability, scores))
    keys = [r.key for r in inputs.analysed_readers] + [m.key for m in inputs.analysed_models]
    auc = {row["key"]: row for row in group["auc"]}
    for key, row in zip(keys, rows):
        expected = roc.delong_auc_ci(row, truth)
        assert auc[key]["auc"] == pytest.approx(expected.auc, abs=1e-12)
        assert auc[key]["ci_low"] == pytest.approx(expected.ci_low, abs=1e-12)
        assert auc[key]["ci_high"] == pytest.approx(expected.ci_high, abs=1e-12)
        assert f"{expected.auc:.2f}" in response.content.decode()
    cm = inputs.analysed_models[0]
    assert cm.key == "model:CM"
    for i, reader in enumerate(inputs.analysed_readers):
        expected = roc.delong_test(scores[0], probability[i], truth)
        got = next(d for d in group["model_vs_reader_delong"][cm.key] if d["reader"] == reader.key)
        assert got["difference"] == pytest.approx(expected.difference, abs=1e-12)
        assert got["p"] == pytest.approx(expected.p_value, rel=1e-9)
        assert got["ci_low"] == pytest.approx(expected.ci_low, abs=1e-12)
    omnibus = roc.delong_omnibus_test(scores, truth)
    phases = group["phase_comparison"]
    assert phases["chi_square"] == pytest.approx(omnibus.chi_square, rel=1e-9)
    assert phases["pairwise"][0]["p_holm"] == pytest.approx(
        omnibus.pairwise[0].holm_p_value, rel=1e-9
    )
    assert phases["pairwise"][0]["p"] == pytest.approx(
        roc.delong_test(scores[0], scores[1], truth).p_value, rel=1e-9
    )
    cutoff = operating_points.youden_cutoff(scores[0], truth)
    point = operating_points.operating_point(scores[0], truth, cutoff.cutoff)
    got = group["operating_points"]["models"][cm.key]
    assert got["cutoff"] == pytest.approx(cutoff.cutoff)
    assert got["sensitivity"]["estimate"] == pytest.approx(point.sensitivity.estimate)
    assert got["specificity"]["ci_low"] == pytest.approx(point.specificity.wilson_low)
    assert got["npv"]["ci_high"] == pytest.approx(point.negative_predictive_value.wilson_high)
    reader_point = operating_points.operating_point(calls[0], truth, 0.5)
    got = group["operating_points"]["readers"][inputs.analysed_readers[0].key]
    assert got["accuracy"]["estimate"] == pytest.approx(reader_point.accuracy.estimate)
    assert group["reader_points"][inputs.analysed_readers[0].key]["tpr"] == pytest.approx(
        reader_point.sensitivity.estimate, abs=1e-4
    )
    age = np.array([l.age_years for l in lesions], float)
    sex = np.array([1.0 if l.sex == "M" else 0.0 for l in lesions])
    size = np.array([l.long_axis_mm for l in lesions])
    fit = regression.logistic_regression(
        truth,
        {"model_score": scores[0] / 0.1, "age": age / 10, "male_sex": sex, "long_axis": size / 10},
    )
    got = {c["name"]: c for c in group["regression"][cm.key]["coefficients"]}
    for name in ("model_score", "age", "male_sex", "long_axis"):
        assert got[name]["odds_ratio"] == pytest.approx(fit.coefficient(name).odds_ratio, rel=1e-6)
        assert got[name]["p"] == pytest.approx(fit.coefficient(name).p_value, rel=1e-6)
    assert group["regression"][cm.key]["separation"] == fit.separation
    kappa = agreement.cohen_kappa(calls[0], calls[1])
    assert group["kappa"]["cohen"][0]["kappa"] == pytest.approx(kappa.kappa)
    assert group["kappa"]["fleiss"]["kappa"] == pytest.approx(agreement.fleiss_kappa(calls.T).kappa)
    expected = mrmc.model_vs_readers(probability, scores[0], truth)
    got = group["mrmc"]["models"][cm.key]
    assert got["rrrc"]["mean_difference"] == pytest.approx(
        expected.random_readers_random_cases.mean_difference
    )
    assert got["rrrc"]["p"] == pytest.approx(expected.random_readers_random_cases.p_value, rel=1e-9)
    assert got["rrrc"]["ci_low"] == pytest.approx(expected.random_readers_random_cases.ci_low)
    assert got["sentence"].startswith(
        f"Readers' mean AUC {expected.mean_reader_metric:.2f}, model {expected.model_metric:.2f}"
    )
    assert escape(got["sentence"]) in response.content.decode()


def test_patients_with_two_lesions_get_the_clustered_analysis_by_default(client, coordinator, db):
    study = build_reader_study(
        n_lesions=40, n_readers=3, variants=("CM",), seed=5, lesions_per_patient=2
    )
    client.force_login(coordinator)
    assert (
        client.get(reverse("evaluation:comparison", args=[study.reader_study.pk])).status_code
        == 200
    )
    inputs, lesions, truth, probability, calls, scores = _arrays(study)
    result = ComparisonResult.objects.get(revision=inputs.revision).result
    assert result["patient_level"] is True
    group = result["subgroups"][0]
    patients = np.array([l.patient_pk for l in lesions])
    rows = np.vstack((probability, scores))
    covariance = mrmc.clustered_delong_covariance(rows, truth == 1, patients)
    assert [row["se"] for row in group["auc"]] == pytest.approx(
        np.sqrt(np.diag(covariance)).tolist()
    )
    expected = mrmc.model_vs_readers(probability, scores[0], truth, clusters=patients)
    got = group["mrmc"]["models"]["model:CM"]["rrrc"]
    assert got["p"] == pytest.approx(expected.random_readers_random_cases.p_value, rel=1e-9)
    off = client.get(
        reverse("evaluation:export-json", args=[study.reader_study.pk]) + "?patient_level=off"
    )
    assert json.loads(off.content)["patient_level"] is False


def test_subgroups_by_size_and_subtype_are_offered_and_computed(client, coordinator, study):
    client.force_login(coordinator)
    response = client.get(
        reverse("evaluation:comparison", args=[study.reader_study.pk])
        + "?subgroup=size_le_20&model=EX"
    )
    content = response.content.decode()
    assert "Size ≤ 2 cm" in content and "clear cell RCC vs all benign" in content
    assert 'value="EX" selected' in content
    inputs, lesions, truth, probability, calls, scores = _arrays(study)
    small = np.array([l.long_axis_mm <= 20 for l in lesions])
    result = ComparisonResult.objects.get(revision=inputs.revision).result
    group = next(g for g in result["subgroups"] if g["key"] == "size_le_20")
    assert group["n"] == small.sum()
    ex = next(row for row in group["auc"] if row["key"] == "model:EX")
    assert ex["auc"] == pytest.approx(roc.empirical_auc(scores[1][small], truth[small]))


# --- which calls enter --------------------------------------------------------


def test_unblinded_calls_are_left_out_unless_asked_for(client, coordinator, study):
    call = study.reader_study.calls.filter(reader=study.readers[0]).first()
    call.blinded = False
    call.save()
    client.force_login(coordinator)
    url = reverse("evaluation:export-json", args=[study.reader_study.pk])
    default = json.loads(client.get(url).content)
    assert [r["label"] for r in default["readers"]] == ["Reader 2", "Reader 3"]
    assert any("Reader 1 left out" in line for line in default["exclusions"])
    with_unblinded = json.loads(client.get(url + "?include_unblinded=1").content)
    assert [r["label"] for r in with_unblinded["readers"]] == ["Reader 1", "Reader 2", "Reader 3"]


def test_simulated_readers_are_marked_on_the_page_and_in_exports(client, coordinator, study):
    client.force_login(coordinator)
    page = client.get(
        reverse("evaluation:comparison", args=[study.reader_study.pk])
    ).content.decode()
    assert 'Reader 3<span class="tag sim">simulated</span>' in page
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    reverse("evaluation:export-csv", args=[study.reader_study.pk])
                ).content.decode()
            )
        )
    )
    assert {r["Simulated call"] for r in rows if r["Reader"] == "Reader 3"} == {"simulated"}
    assert {r["Simulated call"] for r in rows if r["Reader"] == "Reader 1"} == {"no"}
    imrmc = client.get(
        reverse("evaluation:export-imrmc", args=[study.reader_study.pk])
    ).content.decode()
    assert "Reader_3-simulated," in imrmc


# --- the cache ----------------------------------------------------------------


def test_cached_result_is_reused_and_invalidated_by_a_changed_call_or_pathology(
    client, coordinator, study, monkeypatch
):
    computed = []
    original = services.compute_result
    monkeypatch.setattr(
        services,
        "compute_result",
        lambda inputs: computed.append(inputs.revision) or original(inputs),
    )
    client.force_login(coordinator)
    url = reverse("evaluation:comparison", args=[study.reader_study.pk])
    client.get(url)
    client.get(url)
    assert len(computed) == 1
    call = study.reader_study.calls.first()
    call.probability = 100 - call.probability
    call.save()
    client.get(url)
    assert len(computed) == 2 and computed[0] != computed[1]
    pathology = study.lesions[0].pathology
    pathology.malignant = not pathology.malignant
    pathology.revision += 1
    pathology.save()
    client.get(url)
    client.get(url)
    assert len(computed) == 3
    assert (
        ComparisonResult.objects.filter(reader_study=study.reader_study).count() == 1
    )  # old revisions dropped


def test_a_large_study_is_computed_by_the_task_while_the_page_polls(
    client, coordinator, study, settings, django_capture_on_commit_callbacks
):
    settings.EVALUATION_SYNC_MAX_RATINGS = 10
    client.force_login(coordinator)
    url = reverse("evaluation:comparison", args=[study.reader_study.pk])
    status_url = reverse("evaluation:comparison-status", args=[study.reader_study.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.get(url)
    assert "Computing…" in response.content.decode()
    assert len(callbacks) == 1
    assert json.loads(client.get(status_url).content)["fresh"] is False
    from evaluation.tasks import compute_comparison

    pk = compute_comparison.run(reader_study_pk=study.reader_study.pk)
    assert ComparisonResult.objects.get(pk=pk).state == "done"
    assert (
        compute_comparison.run(reader_study_pk=study.reader_study.pk) == pk
    )  # a second run is a no-op
    assert json.loads(client.get(status_url).content)["fresh"] is True
    assert 'id="roc-plot"' in client.get(url).content.decode()


# --- exports ------------------------------------------------------------------


def test_joined_csv_has_one_row_per_lesion_and_reader_with_model_columns(
    client, coordinator, study
):
    client.force_login(coordinator)
    response = client.get(reverse("evaluation:export-csv", args=[study.reader_study.pk]))
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 40 * 3
    assert {(r["Lesion ID"], r["Reader"]) for r in rows} == {
        (str(l.pk), f"Reader {i + 1}") for l in study.lesions for i in range(3)
    }
    predictions = {(p.lesion_id): p.score for p in study.model_versions[0].predictions.all()}
    for row in rows:
        assert float(row["CNN CM v1 out-of-fold score"]) == pytest.approx(
            predictions[int(row["Lesion ID"])], rel=1e-5
        )
        assert row["Malignant (pathology)"] in {"yes", "no"}
        assert row["Reader call"] in {"malignant", "benign"}


def test_joined_csv_writes_a_formula_in_the_reader_study_name_as_text(study):
    ReaderStudy.objects.filter(pk=study.reader_study.pk).update(name="=cmd|' /C calc'!A0")
    study.reader_study.refresh_from_db()
    rows = list(csv.DictReader(io.StringIO(exports.joined_csv(gather_inputs(study.reader_study)))))
    assert {r["Reader study"] for r in rows} == {"'=cmd|' /C calc'!A0"}


def test_imrmc_export_parses_back_to_the_same_ratings(client, coordinator, study):
    client.force_login(coordinator)
    text = client.get(
        reverse("evaluation:export-imrmc", args=[study.reader_study.pk])
    ).content.decode()
    assert "\nBEGIN DATA:\n" in text
    parsed = exports.parse_imrmc(text)
    inputs = gather_inputs(study.reader_study)
    truth = {str(l.pk): int(l.malignant) for l in inputs.analysed_lesions}
    assert parsed["truth"] == truth
    assert parsed["header"] == {
        "NR": 5,
        "N0": list(truth.values()).count(0),
        "N1": list(truth.values()).count(1),
        "NM": 3,
    }
    expected = {}
    for reader in inputs.analysed_readers:
        reader_id = reader.label.replace(" ", "_") + ("-simulated" if reader.simulated else "")
        for lesion in inputs.analysed_lesions:
            expected[(reader_id, str(lesion.pk), "readers")] = float(
                inputs.calls[(reader.pk, lesion.pk)].probability
            )
    for model in inputs.analysed_models:
        model_id = f"model_{model.variant}"
        for lesion in inputs.analysed_lesions:
            expected[(model_id, str(lesion.pk), model_id)] = pytest.approx(
                inputs.scores[(model.pk, lesion.pk)][0], rel=1e-9
            )
    assert parsed["ratings"] == expected


def test_roc_downloads_are_png_and_svg(client, coordinator, study):
    client.force_login(coordinator)
    png = client.get(reverse("evaluation:roc-png", args=[study.reader_study.pk]))
    assert png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    svg = client.get(
        reverse("evaluation:roc-svg", args=[study.reader_study.pk]) + "?subgroup=size_20_40"
    )
    assert (
        svg["Content-Type"] == "image/svg+xml"
        and b"<svg" in svg.content
        and b"CNN CM v1" in svg.content
    )
    assert (
        client.get(
            reverse("evaluation:roc-svg", args=[study.reader_study.pk]) + "?subgroup=nonsense"
        ).status_code
        == 404
    )


def test_page_works_with_readers_only(client, coordinator, db):
    study = build_reader_study(n_lesions=20, n_readers=2, variants=(), seed=8)
    client.force_login(coordinator)
    content = client.get(
        reverse("evaluation:comparison", args=[study.reader_study.pk])
    ).content.decode()
    assert "Readers&#x27; mean AUC" in content or "Readers' mean AUC" in content
    assert 'id="auc-table"' in content
