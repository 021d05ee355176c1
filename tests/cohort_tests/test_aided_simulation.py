"""Simulated aided reading (demo only): the aided rating moves toward the model's score by a weight per reader."""

import numpy as np
import pytest

from cohort.latents import sample_cohort
from cohort.readers import AIDED_WEIGHT_RANGE, simulate_aided_reader_calls, simulate_reader_calls
from cohort.spec import CohortSpec
from evaluation.stats.roc import empirical_auc


@pytest.fixture(scope="module")
def lesions():
    return [
        lesion
        for case in sample_cohort(CohortSpec(patients=150, seed=4))
        for lesion in case.lesions
    ]


@pytest.fixture(scope="module")
def oracle_scores(lesions):
    return [1 / (1 + np.exp(-lesion.oracle_llr)) for lesion in lesions]


def test_aided_calls_are_reproducible_for_a_seed_and_leave_the_unaided_calls_as_they_were(
    lesions, oracle_scores
):
    reading = simulate_aided_reader_calls(lesions, 4, 5, oracle_scores)
    assert reading == simulate_aided_reader_calls(lesions, 4, 5, oracle_scores)
    assert reading.unaided == simulate_reader_calls(lesions, 4, 5)
    assert reading.weights != simulate_aided_reader_calls(lesions, 4, 6, oracle_scores).weights
    assert all(AIDED_WEIGHT_RANGE[0] <= w <= AIDED_WEIGHT_RANGE[1] for w in reading.weights)
    assert [(c.reader, c.lesion_id) for c in reading.aided] == [
        (c.reader, c.lesion_id) for c in reading.unaided
    ]


def test_a_reader_with_weight_zero_keeps_their_unaided_calls(lesions, oracle_scores):
    reading = simulate_aided_reader_calls(lesions, 3, 5, oracle_scores, weights=[0.0, 0.0, 0.0])
    assert reading.aided == reading.unaided


def test_aided_probabilities_lie_between_the_unaided_ones_and_the_models_and_calls_follow_them(
    lesions,
):
    scores = np.random.default_rng(1).uniform(0, 1, len(lesions))
    reading = simulate_aided_reader_calls(lesions, 3, 5, scores)
    model = {lesion.lesion_id: 100 * s for lesion, s in zip(lesions, scores)}
    for before, after in zip(reading.unaided, reading.aided):
        low, high = sorted((before.probability, model[after.lesion_id]))
        assert low - 0.05 <= after.probability <= high + 0.05
        assert after.malignant_call == (after.probability >= 50)
    adopted = simulate_aided_reader_calls(lesions, 1, 5, scores, weights=[1.0]).aided
    assert [c.probability for c in adopted] == pytest.approx(
        [round(model[c.lesion_id], 1) for c in adopted], abs=0.051
    )


def test_following_a_better_model_makes_every_simulated_reader_better(lesions, oracle_scores):
    reading = simulate_aided_reader_calls(lesions, 4, 5, oracle_scores)
    truth = [lesion.malignant for lesion in lesions]
    for reader in range(4):
        unaided = empirical_auc(
            [c.probability for c in reading.unaided if c.reader == reader], truth
        )
        aided = empirical_auc([c.probability for c in reading.aided if c.reader == reader], truth)
        assert aided > unaided


def test_model_scores_must_be_one_probability_per_lesion(lesions):
    with pytest.raises(ValueError, match="one score per lesion"):
        simulate_aided_reader_calls(lesions, 2, 5, [0.5])
    with pytest.raises(ValueError, match="between 0 and 1"):
        simulate_aided_reader_calls(lesions, 2, 5, [50.0] * len(lesions))
