"""End to end: a sequential reader study, two readers, a frozen model; unaided calls, the model's output only
after the unaided lock, aided calls; the comparison shows aided − unaided and the iMRMC export both modalities."""

import html

import numpy as np
import pytest

from annotations.models import ReaderCall
from evaluation import exports
from evaluation.stats import aided_reading, reader_study
from inference.models import ModelVersion, Prediction, PredictionKind
from tests.factories.inference import ModelVersionFactory
from tests.factories.reader_study import build_reader_study

CALLS = "/api/v1/calls/"
N_LESIONS = 30
AIDED_WEIGHT = {"alice": 0.6, "bob": 0.4}  # how far each reader moves toward the model's score


def _unaided_probability(rng, truth):
    latent = 0.9 * (2 * truth - 1) + rng.normal(0, 1.2)
    return int(np.clip(round(100 / (1 + np.exp(-latent))), 0, 100))


@pytest.mark.django_db
def test_sequential_aided_reading_end_to_end(make_user, coordinator, api_client_for, client):
    from annotations.models import ReaderStudy
    from portal.roles import READER

    synthetic = build_reader_study(
        n_lesions=N_LESIONS,
        n_readers=0,
        variants=("CM",),
        seed=3,
        state=ReaderStudy.State.OPEN,
        name="Aided CM study",
        username_prefix="aid",
    )
    rs, lesions, (frozen,) = synthetic.reader_study, synthetic.lesions, synthetic.model_versions
    readers = {name: make_user(name, READER) for name in AIDED_WEIGHT}
    boss = api_client_for(coordinator)

    # The coordinator chooses the sequential design, assigns two readers and freezes CNN CM v1.
    changed = boss.patch(
        f"/api/v1/reader-studies/{rs.pk}/",
        {"design": "sequential", "readers": list(readers)},
        format="json",
    )
    assert changed.status_code == 200 and changed.json()["design"] == "sequential"
    frozen_answer = boss.put(
        f"/api/v1/reader-studies/{rs.pk}/model/", {"model_version": frozen.pk}, format="json"
    )
    assert frozen_answer.json()["model_version"]["name"] == "source-study/CM v1"

    # A retrain during the study: v2 becomes the active model; the aided readers still see v1.
    ModelVersion.objects.filter(pk=frozen.pk).update(is_active=False)
    retrained = ModelVersionFactory(version=2, artifact_sha256="1" * 64, is_active=True)
    Prediction.objects.bulk_create(
        [
            Prediction(
                model_version=retrained,
                lesion=lesion,
                kind=PredictionKind.OUT_OF_FOLD,
                fold=1,
                score=0.5,
            )
            for lesion in lesions
        ]
    )
    frozen_score = dict(
        Prediction.objects.filter(model_version=frozen).values_list("lesion_id", "score")
    )
    truth = {lesion.pk: int(lesion.pathology.malignant) for lesion in lesions}

    rng = np.random.default_rng(11)
    for name, user in readers.items():
        client = api_client_for(user)
        for lesion in lesions:
            output_url = f"/api/v1/reader-studies/{rs.pk}/lesions/{lesion.pk}/model-output/"
            assert (
                client.get(output_url).status_code == 403
            )  # the unaided session never sees the model
            unaided = _unaided_probability(rng, truth[lesion.pk])
            body = {
                "reader_study": rs.pk,
                "lesion": lesion.pk,
                "malignant": unaided >= 50,
                "probability": unaided,
            }
            assert (
                client.post(
                    CALLS, {**body, "session": "aided", "lock": True}, format="json"
                ).status_code
                == 409
            )
            assert client.post(CALLS, {**body, "lock": True}, format="json").status_code == 201
            shown = client.get(output_url)
            assert shown.status_code == 200, shown.json()
            assert shown.json()["model_version"]["name"] == "source-study/CM v1"
            assert shown.json()["probability"] == pytest.approx(frozen_score[lesion.pk])
            assert (
                client.get(f"/api/v1/lesions/{lesion.pk}/pathology/").status_code == 403
            )  # not before the aided lock
            aided = int(
                round(unaided + AIDED_WEIGHT[name] * (100 * shown.json()["probability"] - unaided))
            )
            aided_body = {
                **body,
                "malignant": aided >= 50,
                "probability": aided,
                "session": "aided",
                "lock": True,
            }
            assert client.post(CALLS, aided_body, format="json").status_code == 201
            assert client.get(f"/api/v1/lesions/{lesion.pk}/pathology/").status_code == 200
        assert (
            client.post(CALLS, {**body, "probability": 1, "lock": True}, format="json").status_code
            == 409
        )

    # The comparison: aided − unaided, the frozen model named, the standalone models as before.
    client.force_login(coordinator)
    page = client.get(f"/reader-studies/{rs.pk}/comparison/")
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert "Aided versus unaided reading" in text and "source-study/CM v1" in text
    assert (
        'id="auc-table"' in text and "CNN CM v2" in text
    )  # the standalone (active) model stays on the page

    lesion_order = sorted(
        lesions, key=lambda l: (l.study.patient.patient_id, l.study_id, l.label, l.pk)
    )
    ratings = np.zeros((2, 2, N_LESIONS))
    calls = np.zeros((2, 2, N_LESIONS), dtype=int)
    for j, user in enumerate(sorted(readers.values(), key=lambda u: u.username)):
        for m, session in enumerate(("unaided", "aided")):
            values = {
                c.lesion_id: c for c in ReaderCall.objects.filter(reader=user, session=session)
            }
            ratings[m, j] = [values[l.pk].probability for l in lesion_order]
            calls[m, j] = [int(values[l.pk].malignant) for l in lesion_order]
    expected = aided_reading.analyze_aided_reading(
        ratings, np.array([truth[l.pk] for l in lesion_order]), calls, ["alice", "bob"]
    )
    sentence = reader_study.aided_vs_unaided_sentence(expected.auc, expected.confidence)
    assert sentence.startswith("Readers' mean AUC") and sentence in text
    assert "Calls after seeing the model" in text

    analysis = client.get(f"/reader-studies/{rs.pk}/comparison/analysis.json").json()
    block = analysis["aided_vs_unaided"]
    assert (
        block["auc"]["sentence"] == sentence
        and block["frozen_model"]["name"] == "source-study/CM v1"
    )
    assert block["auc"]["rrrc"]["difference"] == pytest.approx(
        expected.auc.random_readers_random_cases.difference
    )
    assert analysis["frozen_model"]["version"] == 1

    exported = client.get(f"/reader-studies/{rs.pk}/comparison/imrmc.imrmc")
    parsed = exports.parse_imrmc(exported.content.decode())
    assert parsed["header"] == {
        "NR": 2,
        "N0": N_LESIONS - sum(truth.values()),
        "N1": sum(truth.values()),
        "NM": 2,
    }
    assert {modality for (_, _, modality) in parsed["ratings"]} == {"unaided", "aided"}
    assert len(parsed["ratings"]) == 2 * 2 * N_LESIONS
    assert "source-study/CM v1" in exported.content.decode()
    models_file = exports.parse_imrmc(
        client.get(
            f"/reader-studies/{rs.pk}/comparison/imrmc.imrmc", {"modalities": "models"}
        ).content.decode()
    )
    assert "readers" in {modality for (_, _, modality) in models_file["ratings"]}
