"""The latent cohort: case mix, lesion rate, the oracle ceiling, simulated readers."""

import dataclasses
import math

import numpy as np
import pytest

from archive.vocabulary import BENIGN_SUBTYPES, PHASES
from cohort.figures import FIGURES, SUBTYPES, default_subtype_mix, lesion_hu_distribution
from cohort.latents import sample_cohort
from cohort.oracle import lesion_llr, oracle_auc, phase_latents
from cohort.readers import simulate_reader_calls
from cohort.spec import CohortSpec
from evaluation.stats.roc import empirical_auc


def lesions_of(cases):
    return [lesion for case in cases for lesion in case.lesions]


def test_subtype_mix_and_benign_fraction_match_the_default_over_2000_lesions(large_latents):
    lesions = lesions_of(large_latents)
    assert len(lesions) >= 1950
    mix = default_subtype_mix()
    n = len(lesions)
    for subtype in SUBTYPES:
        observed = sum(lesion.subtype == subtype for lesion in lesions) / n
        tolerance = 4 * math.sqrt(mix[subtype] * (1 - mix[subtype]) / n)
        assert abs(observed - mix[subtype]) <= tolerance, subtype
    benign = sum(not lesion.malignant for lesion in lesions) / n
    assert abs(benign - 0.20) <= 4 * math.sqrt(0.2 * 0.8 / n)
    assert all(lesion.malignant == (lesion.subtype not in BENIGN_SUBTYPES) for lesion in lesions)


def test_a_configured_mix_is_what_the_cohort_contains():
    spec = CohortSpec(patients=300, seed=3, subtype_mix={"ccRCC": 1, "oncocytoma": 1})
    lesions = lesions_of(sample_cohort(spec))
    assert {lesion.subtype for lesion in lesions} == {"ccRCC", "oncocytoma"}
    benign = sum(not lesion.malignant for lesion in lesions) / len(lesions)
    assert abs(benign - 0.5) <= 4 * math.sqrt(0.25 / len(lesions))


def test_unknown_subtype_in_the_mix_is_an_error_naming_it():
    with pytest.raises(ValueError, match="angiosarcoma"):
        CohortSpec(subtype_mix={"angiosarcoma": 1.0})


def test_lesions_per_patient_follow_the_source_study_rate(large_latents):
    counts = [len(case.lesions) for case in large_latents]
    assert set(counts) <= {1, 2}
    rate = sum(counts) / len(counts)
    assert abs(rate - 168 / 159) < 0.02


def test_sizes_lie_in_10_to_40_mm_and_lesions_lie_on_a_kidney(large_latents):
    for case in large_latents[:300]:
        kidneys = {k.side: k for k in case.kidneys}
        for lesion in case.lesions:
            assert 10 <= lesion.size_mm <= 40
            kidney = kidneys[lesion.side]
            d = np.subtract(lesion.centre_mm, kidney.centre_mm)
            assert (
                np.linalg.norm(
                    d / np.array([max(kidney.semi_axes_mm[:2])] * 2 + [kidney.semi_axes_mm[2]])
                )
                <= 1.15
            )


def test_latent_attenuation_matches_the_table_per_subtype_and_phase(large_latents):
    lesions = lesions_of(large_latents)
    for subtype in ("ccRCC", "papillary", "oncocytoma"):
        mean, sd = lesion_hu_distribution(subtype)
        values = np.array(
            [[lesion.mean_hu[p] for p in PHASES] for lesion in lesions if lesion.subtype == subtype]
        )
        standard_error = sd / math.sqrt(len(values))
        assert np.all(np.abs(values.mean(axis=0) - mean) <= 4 * standard_error), subtype


def test_ccrcc_and_oncocytoma_overlap_in_every_phase(large_latents):
    lesions = lesions_of(large_latents)
    for phase in PHASES:
        cc = [l.mean_hu[phase] for l in lesions if l.subtype == "ccRCC"]
        onco = [l.mean_hu[phase] for l in lesions if l.subtype == "oncocytoma"]
        separation = empirical_auc(cc + onco, [True] * len(cc) + [False] * len(onco))
        assert 0.3 < separation < 0.75, phase


def test_oracle_auc_lies_well_between_chance_and_perfect_with_cm_the_best_phase(large_latents):
    oracle = oracle_auc(lesions_of(large_latents))
    assert 0.80 <= oracle.overall <= 0.95
    for phase in PHASES:
        assert 0.55 <= getattr(oracle, phase) <= oracle.overall
    assert oracle.CM == max(getattr(oracle, phase) for phase in PHASES)


def test_simulated_readers_are_deterministic_and_stay_below_the_oracle(large_latents):
    lesions = lesions_of(large_latents)[:600]
    calls = simulate_reader_calls(lesions, k=3, seed=5)
    assert calls == simulate_reader_calls(lesions, k=3, seed=5)
    assert len(calls) == 3 * len(lesions)
    truth = [lesion.malignant for lesion in lesions]
    ceiling = empirical_auc([lesion.oracle_llr for lesion in lesions], truth)
    for reader in range(3):
        probabilities = [c.probability for c in calls if c.reader == reader]
        assert 0.6 < empirical_auc(probabilities, truth) < ceiling
        assert all((c.probability >= 50) == c.malignant_call for c in calls)


def test_latents_are_deterministic_for_a_seed_and_differ_between_seeds():
    a = sample_cohort(CohortSpec(patients=5, seed=1))
    assert a == sample_cohort(CohortSpec(patients=5, seed=1))
    assert a != sample_cohort(CohortSpec(patients=5, seed=2))


def test_clinical_latents_do_not_change_with_the_image_geometry():
    big = sample_cohort(CohortSpec(patients=5, seed=1))
    small = sample_cohort(CohortSpec(patients=5, seed=1, size=128, slices=16))
    for a, b in zip(big, small):
        assert [(l.subtype, l.size_mm, l.mean_hu) for l in a.lesions] == [
            (l.subtype, l.size_mm, l.mean_hu) for l in b.lesions
        ]


def test_every_figure_names_its_source():
    assert all(row.source for row in FIGURES)
    assert len({row.key for row in FIGURES}) == len(FIGURES)


@pytest.mark.parametrize(
    "phase, hidden_change",
    [
        (
            "NC",
            {
                "pattern": "scar",
                "inversion": True,
                "heterogeneous": {"NC": False, "CM": True, "NG": True, "EX": True},
            },
        ),
        ("EX", {"pattern": "homogeneous"}),  # a scar has filled in by EX
        ("NG", {"inversion": True}),  # segmental inversion shows in CM and EX only
    ],
)
def test_phase_latents_are_exactly_what_that_phases_oracle_reads(phase, hidden_change):
    """A change the phase cannot show leaves its latents and its oracle alike; one it shows changes both."""
    (case,) = sample_cohort(CohortSpec(patients=1, seed=3))
    lesion = dataclasses.replace(
        case.lesions[0],
        pattern="scar",
        inversion=False,
        heterogeneous={"NC": False, "CM": False, "NG": False, "EX": False},
    )
    hidden = dataclasses.replace(lesion, **hidden_change)
    mix = default_subtype_mix()
    assert phase_latents(hidden, phase) == phase_latents(lesion, phase)
    assert lesion_llr(hidden, case.sex, mix, phase) == pytest.approx(
        lesion_llr(lesion, case.sex, mix, phase)
    )
    shown = (
        dataclasses.replace(lesion, heterogeneous={**lesion.heterogeneous, phase: True})
        if phase != "NC"
        else dataclasses.replace(
            lesion, mean_hu={**lesion.mean_hu, "NC": lesion.mean_hu["NC"] + 20}
        )
    )
    assert phase_latents(shown, phase) != phase_latents(lesion, phase)
    assert lesion_llr(shown, case.sex, mix, phase) != pytest.approx(
        lesion_llr(lesion, case.sex, mix, phase)
    )
