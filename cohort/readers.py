"""Simulated readers of a synthetic cohort: unaided calls, and aided calls that lean on a model.

Pure and deterministic for a seed; :mod:`cohort.importer` records these calls in the portal
so that the comparison pages have human readers to set against the models. Each reader's
rating is a noisy, skill-scaled copy of the lesion's oracle log-likelihood ratio
(:mod:`cohort.oracle`), so every reader stays below the oracle's AUC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from cohort.latents import LesionLatents


class SimulatedCall(NamedTuple):
    reader: int
    lesion_id: str
    probability: float  # 0-100, probability of malignancy
    malignant_call: bool


def simulate_reader_calls(
    lesions: Sequence[LesionLatents], k: int, seed: int
) -> list[SimulatedCall]:
    """Simulated calls of ``k`` readers on every lesion (for the importer; pure, deterministic for ``seed``).

    Model: reader ``r`` has a skill ``s_r`` drawn uniformly in [0.4, 0.9] and a
    noise SD ``sigma_r`` uniformly in [1.0, 2.0]; their rating of a lesion is
    ``s_r * oracle_llr + N(0, sigma_r)``, their probability of malignancy
    ``100 * logistic(rating)`` (rounded to 1 decimal), and their binary call is
    malignant when that probability is >= 50. The added noise keeps every reader
    below the oracle AUC; readers differ in skill as in a real study.
    """
    return _reader_calls(lesions, _simulated_ratings(lesions, k, seed))


def _simulated_ratings(lesions: Sequence[LesionLatents], k: int, seed: int) -> np.ndarray:
    """The simulated readers' ratings (log-odds scale) ``[reader, lesion]``; see :func:`simulate_reader_calls`."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 9091]))
    llr = np.array([lesion.oracle_llr for lesion in lesions])
    ratings = np.empty((k, llr.size))
    for reader in range(k):
        skill, sigma = rng.uniform(0.4, 0.9), rng.uniform(1.0, 2.0)
        ratings[reader] = skill * llr + rng.normal(0.0, sigma, llr.size)
    return ratings


def _reader_calls(lesions: Sequence[LesionLatents], ratings: np.ndarray) -> list[SimulatedCall]:
    """Calls from log-odds ratings: probability ``100 * logistic`` to 1 decimal, malignant when >= 50."""
    calls = []
    for reader, rating in enumerate(ratings):
        probability = np.round(100.0 / (1.0 + np.exp(-rating)), 1)
        calls += [
            SimulatedCall(reader, lesion.lesion_id, float(p), bool(p >= 50.0))
            for lesion, p in zip(lesions, probability)
        ]
    return calls


AIDED_WEIGHT_RANGE = (0.2, 0.6)
_MODEL_SCORE_CLIP = 1e-4


class AidedReading(NamedTuple):
    """Simulated calls of the same readers on the same lesions without and with the model.

    ``unaided`` equals :func:`simulate_reader_calls` for the same lesions, k
    and seed; ``aided`` is in the same order; ``weights[r]`` is reader r's
    weight on the model.
    """

    unaided: list[SimulatedCall]
    aided: list[SimulatedCall]
    weights: tuple[float, ...]


def simulate_aided_reader_calls(
    lesions: Sequence[LesionLatents],
    k: int,
    seed: int,
    model_scores: Sequence[float],
    weights: Sequence[float] | None = None,
) -> AidedReading:
    """Simulated unaided and aided calls of ``k`` readers (demo only; pure, deterministic for ``seed``).

    Model of aided reading: the reader sees the model's probability of
    malignancy ``s`` (``model_scores``, 0-1, one per lesion, in ``lesions``
    order) and moves their rating toward it by a weight ``w_r`` of their
    own, on the log-odds rating scale of :func:`simulate_reader_calls`::

        aided rating = (1 - w_r) * unaided rating + w_r * logit(s)

    (``s`` clipped to [1e-4, 1 - 1e-4]). The aided probability and call
    follow from the aided rating as the unaided ones do (``100 *
    logistic``, 1 decimal, malignant when >= 50), so each aided
    probability lies between the reader's unaided probability and ``100 *
    s``. ``w_r`` is drawn uniformly in :data:`AIDED_WEIGHT_RANGE` (0.2-0.6)
    from its own stream of ``seed``, so adding aided reading leaves the
    unaided calls unchanged; ``weights`` overrides it (0 = ignores the model,
    1 = adopts its score). A reader who follows a better model gets
    better; one who follows a worse model gets worse, as in real studies.
    """
    scores = np.asarray(model_scores, dtype=float)
    if scores.shape != (len(lesions),):
        raise ValueError(
            f"{scores.size} model scores for {len(lesions)} lesions (one score per lesion, in order)"
        )
    if not np.all((scores >= 0) & (scores <= 1)):
        raise ValueError("model scores must be probabilities of malignancy between 0 and 1")
    if weights is None:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 9092]))
        weight = rng.uniform(*AIDED_WEIGHT_RANGE, k)
    else:
        weight = np.asarray(weights, dtype=float)
    if weight.shape != (k,) or not np.all((weight >= 0) & (weight <= 1)):
        raise ValueError(f"weights must be {k} numbers between 0 and 1, one per reader")
    unaided = _simulated_ratings(lesions, k, seed)
    clipped = np.clip(scores, _MODEL_SCORE_CLIP, 1 - _MODEL_SCORE_CLIP)
    model_rating = np.log(clipped / (1 - clipped))
    aided = (1 - weight[:, None]) * unaided + weight[:, None] * model_rating[None, :]
    return AidedReading(
        _reader_calls(lesions, unaided),
        _reader_calls(lesions, aided),
        tuple(float(w) for w in weight),
    )
