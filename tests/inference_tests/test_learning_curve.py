"""benchmarks/learning_curve.py: training draws take whole patients and never the test cohort (tiny cohorts)."""

import math

import numpy as np
import pytest

from benchmarks.learning_curve import (
    FAMILIES,
    cohort_inputs,
    draw_by_patient,
    learning_curve,
    pool_seeds,
    training_pool,
)
from benchmarks.radiomics import cohort_features, crops_features
from cohort.spec import CohortSpec
from inference.experiments import get_experiment
from inference.synthetic import lesion_crops

CNN = get_experiment("source-study", {"epochs": 1})
RADIOMICS = get_experiment("radiomics")


def tiny_cohort(seed):
    # 128 px (3 mm pixels): the smallest matrix on which every reference ROI still holds pixels for radiomics.
    return cohort_inputs(
        lesion_crops(CohortSpec(patients=5, seed=seed, size=128, slices=16)), "CM", CNN, RADIOMICS
    )


def test_pool_seeds_skip_the_test_cohort_seed():
    seeds = pool_seeds(test_seed=1001)
    assert [next(seeds) for _ in range(3)] == [1000, 1002, 1003]


def test_learning_curve_draws_whole_patients_and_never_trains_on_the_test_cohort():
    test = tiny_cohort(1001)  # a seed inside the pool's range, so the pool has to leave it out
    pool = training_pool(12, test_seed=1001, load=tiny_cohort, log=lambda text: None)

    assert len(pool) >= 12
    assert 1001 not in set(pool.seeds.tolist())
    assert not set(pool.patient_key) & set(test.patient_key)
    rng = np.random.default_rng(0)
    for n in (1, 3, 5, 8, len(pool)):
        for _ in range(10):
            chosen = draw_by_patient(pool.patient_key, n, rng)
            drawn_patients = set(pool.patient_key[chosen])
            every_lesion_of_them = np.flatnonzero(np.isin(pool.patient_key, list(drawn_patients)))
            assert sorted(chosen) == sorted(
                every_lesion_of_them
            )  # no patient split between drawn and not drawn
            assert n <= len(chosen) <= n + 1
    with pytest.raises(ValueError):
        draw_by_patient(pool.patient_key, len(pool) + 1, rng)

    rows = learning_curve(
        pool,
        test,
        sizes=[len(pool)],
        repeats=1,
        phase="CM",
        cnn=CNN,
        radiomics_experiment=RADIOMICS,
        log=lambda text: None,
    )
    assert len(rows) == 1 and rows[0]["lesions"] == len(pool)
    assert 1001 not in rows[0]["seeds"]
    assert all(math.isnan(rows[0][f]) or 0.0 <= rows[0][f] <= 1.0 for f in FAMILIES)
    with pytest.raises(ValueError, match="test cohort"):
        learning_curve(
            pool, pool, sizes=[3], repeats=1, phase="CM", cnn=CNN, radiomics_experiment=RADIOMICS
        )


def test_radiomics_features_of_crops_equal_those_of_the_whole_slice(tmp_path):
    whole = cohort_features(7, 2, 128, RADIOMICS.radiomics, tmp_path)
    cropped = crops_features(
        lesion_crops(CohortSpec(patients=2, seed=7, size=128)), ("CM", "EX"), RADIOMICS.radiomics
    )

    assert len(cropped["lesions"]) == len(whole["lesions"])
    for a, b in zip(whole["lesions"], cropped["lesions"]):
        assert (a["patient"], a["malignant"]) == (b["patient"], b["malignant"])
        for phase in ("CM", "EX"):
            assert a["features"][phase].keys() == b["features"][phase].keys()
            np.testing.assert_array_equal(
                list(a["features"][phase].values()), list(b["features"][phase].values())
            )
