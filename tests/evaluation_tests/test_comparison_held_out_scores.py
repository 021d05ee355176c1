"""Which score of a model meets the readers: out-of-fold, or final-model scores of patients it never trained on."""

import numpy as np
import pytest
from django.urls import reverse

from evaluation import exports
from evaluation.inputs import gather_inputs
from inference.models import Prediction, PredictionKind
from tests.factories.inference import ModelVersionFactory
from tests.factories.reader_study import build_reader_study

ELSEWHERE = (
    "independent synthetic cohort seed 1000, 300 patients, 318 lesions, 256 px, not in the archive"
)


def _final_scores(version, lesions, seed=0, training_data=None):
    rng = np.random.default_rng(seed)
    truth = np.array([int(l.pathology.malignant) for l in lesions])
    scores = 1 / (1 + np.exp(-((2 * truth - 1) + rng.normal(0, 1.0, len(truth)))))
    Prediction.objects.bulk_create(
        [
            Prediction(
                model_version=version,
                lesion=lesion,
                kind=PredictionKind.FINAL,
                score=float(s),
                in_training_data=False,
            )
            for lesion, s in zip(lesions, scores)
        ]
    )
    return dict(zip([l.pk for l in lesions], scores))


@pytest.fixture
def study(db):
    return build_reader_study(n_lesions=24, n_readers=2, variants=(), seed=3)


def test_a_model_trained_elsewhere_is_compared_on_its_final_scores_and_the_page_says_so(
    client, coordinator, study
):
    version = ModelVersionFactory(
        is_active=True, training_data={"source": ELSEWHERE, "lesions": []}
    )
    expected = _final_scores(version, study.lesions)
    inputs = gather_inputs(study.reader_study)
    [model] = inputs.analysed_models
    assert model.pk == version.pk and model.scores_source == "held-out final-model"
    assert {l.pk: inputs.scores[(model.pk, l.pk)] for l in study.lesions} == {
        pk: (pytest.approx(s), None) for pk, s in expected.items()
    }
    client.force_login(coordinator)
    page = client.get(
        reverse("evaluation:comparison", args=[study.reader_study.pk])
    ).content.decode()
    assert (
        f"CNN CM v1: final-model scores of patients it never trained on; trained on {ELSEWHERE}."
        in page
    )
    assert "CNN CM v1 held-out final-model score" in exports.joined_csv(inputs).splitlines()[0]


def test_final_scores_of_patients_the_model_trained_on_never_enter(study):
    trained = study.lesions[:4]
    version = ModelVersionFactory(
        is_active=True,
        training_data={
            "lesions": [
                {
                    "lesion": l.pk,
                    "patient": l.study.patient_id,
                    "pathology_revision": 1,
                    "malignant": True,
                    "fold": 1,
                }
                for l in trained
            ]
        },
    )
    _final_scores(version, study.lesions)
    inputs = gather_inputs(study.reader_study)
    assert inputs.analysed_models == []
    assert all((version.pk, l.pk) not in inputs.scores for l in trained)
    assert any(
        "left out: held-out scores" in line
        and f"for {len(study.lesions) - 4} of {len(study.lesions)}" in line
        for line in inputs.exclusions
    )


def test_an_out_of_fold_score_is_preferred_to_the_final_score_of_the_same_lesion(study):
    version = ModelVersionFactory(
        is_active=True, training_data={"source": ELSEWHERE, "lesions": []}
    )
    _final_scores(version, study.lesions)
    first = study.lesions[0]
    Prediction.objects.create(
        model_version=version, lesion=first, kind=PredictionKind.OUT_OF_FOLD, fold=2, score=0.123
    )
    inputs = gather_inputs(study.reader_study)
    [model] = inputs.analysed_models
    assert inputs.scores[(version.pk, first.pk)] == (pytest.approx(0.123), 2)
    assert model.scores_source == "held-out"
