"""A model is a model: radiomics models appear on the comparison page beside the CNNs, named by their family."""

import numpy as np
import pytest
from django.urls import reverse

from evaluation.inputs import gather_inputs
from evaluation.models import ComparisonResult
from inference.models import Prediction, PredictionKind
from tests.factories.inference import ModelVersionFactory
from tests.factories.reader_study import build_reader_study


def _radiomics_version(study, variant, version=1, active=True, seed=0):
    model = ModelVersionFactory(
        experiment_name="radiomics",
        family="radiomics",
        variant=variant,
        builder="radiomics-logistic",
        version=version,
        is_active=active,
    )
    rng = np.random.default_rng(seed)
    truth = np.array([int(l.pathology.malignant) for l in study.lesions])
    scores = 1 / (1 + np.exp(-((2 * truth - 1) + rng.normal(0, 1.3, len(truth)))))
    Prediction.objects.bulk_create(
        [
            Prediction(
                model_version=model,
                lesion=lesion,
                kind=PredictionKind.OUT_OF_FOLD,
                fold=i % 5 + 1,
                score=float(s),
            )
            for i, (lesion, s) in enumerate(zip(study.lesions, scores))
        ]
    )
    return model


@pytest.fixture
def study(db):
    return build_reader_study(n_lesions=30, n_readers=2, variants=("CM", "EX"), seed=5)


def test_a_cm_radiomics_model_is_compared_beside_the_cm_cnn_with_a_name_that_tells_its_family(
    study,
):
    _radiomics_version(study, "CM")
    _radiomics_version(study, "EX", seed=1)
    inputs = gather_inputs(study.reader_study)
    assert [(m.key, m.label) for m in inputs.analysed_models] == [
        ("model:CM", "CNN CM v1"),
        ("model:EX", "CNN EX v1"),
        ("model:radiomics-CM", "Radiomics CM v1"),
        ("model:radiomics-EX", "Radiomics EX v1"),
    ]


def test_per_family_and_variant_the_active_radiomics_version_is_the_one_compared(study):
    _radiomics_version(study, "CM", version=1, active=False)
    active = _radiomics_version(study, "CM", version=2, active=True, seed=2)
    _radiomics_version(study, "CM", version=3, active=False, seed=3)
    radiomics_models = [
        m for m in gather_inputs(study.reader_study).analysed_models if m.family == "radiomics"
    ]
    assert [m.pk for m in radiomics_models] == [active.pk]


def test_the_page_selects_a_radiomics_model_and_highlights_cm_versus_ex_within_each_family(
    client, coordinator, study
):
    _radiomics_version(study, "CM")
    _radiomics_version(study, "EX", seed=1)
    client.force_login(coordinator)
    url = reverse("evaluation:comparison", args=[study.reader_study.pk])
    response = client.get(url, {"model": "radiomics-CM"})
    assert response.status_code == 200
    page = response.content.decode()
    assert '<option value="radiomics-CM" selected>Radiomics CM v1</option>' in page
    assert '<option value="CM">CNN CM v1</option>' in page
    assert "Radiomics score (per 0.1)" in page
    context = response.context
    highlighted = [r["label"] for r in context["phases"]["rows"] if r["highlight"]]
    assert highlighted == ["CNN CM v1 − CNN EX v1", "Radiomics CM v1 − Radiomics EX v1"]
    result = ComparisonResult.objects.get(
        revision=gather_inputs(study.reader_study).revision
    ).result
    assert result["model_versions"]["model:radiomics-CM"]["family"] == "radiomics"
