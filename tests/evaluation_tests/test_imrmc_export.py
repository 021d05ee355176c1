"""iMRMC input files: the comparison export (unchanged) and the two-modality writer for aided reading."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from evaluation import exports


def _comparison_inputs():
    lesions = [NS(pk=11, malignant=True), NS(pk=12, malignant=False), NS(pk=13, malignant=True)]
    readers = [
        NS(pk=1, label="Dr A", simulated=False),
        NS(pk=2, label="sim/reader 2", simulated=True),
    ]
    probabilities = [(80, 10, 55), (65.5, 30, 90)]
    calls = {
        (r.pk, l.pk): NS(probability=p)
        for r, ps in zip(readers, probabilities)
        for l, p in zip(lesions, ps)
    }
    scores = {(7, l.pk): (s, 0) for l, s in zip(lesions, (0.91234567891234, 0.1, 0.5))}
    return NS(
        analysed_lesions=lesions,
        analysed_readers=readers,
        analysed_models=[NS(pk=7, key="model:CM")],
        calls=calls,
        scores=scores,
        reader_study=NS(name="Pilot study #1", pk=4),
        revision="abc123",
    )


def test_comparison_export_is_byte_for_byte_what_it_was_before_the_writer_was_shared():
    assert exports.imrmc_text(_comparison_inputs()) == (
        "Reader study Pilot_study__1 (portal id 4) exported for iMRMC\nInput revision abc123\n"
        "Readers rate the probability of malignancy 0-100; models give held-out scores 0-1 (out-of-fold, "
        "or from a model that never trained on the patient)\nTruth: 1 = malignant (pathology), 0 = benign\n\n"
        "NR: 3\nN0: 1\nN1: 2\nNM: 2\n\nBEGIN DATA:\n-1,11,0,1\n-1,12,0,0\n-1,13,0,1\n"
        "Dr_A,11,readers,80\nDr_A,12,readers,10\nDr_A,13,readers,55\n"
        "sim_reader_2-simulated,11,readers,65.5\nsim_reader_2-simulated,12,readers,30\n"
        "sim_reader_2-simulated,13,readers,90\n"
        "model_CM,11,model_CM,0.9123456789\nmodel_CM,12,model_CM,0.1\nmodel_CM,13,model_CM,0.5\n"
    )


def test_unaided_and_aided_ratings_round_trip_through_parse_imrmc():
    rng = np.random.default_rng(3)
    readers, cases, truth = (
        ["Dr A", "Dr B", "sim 3"],
        ["101", "102", "103", "104"],
        np.array([1, 0, 1, 0]),
    )
    ratings = np.round(rng.uniform(0, 100, (2, 3, 4)), 1)
    text = exports.imrmc_modalities_text(
        readers,
        cases,
        truth,
        ratings,
        simulated_readers=["sim 3"],
        description=["Aided reading study exported for iMRMC"],
    )
    parsed = exports.parse_imrmc(text)
    assert text.startswith("Aided reading study exported for iMRMC\n\nNR: 3\n")
    assert parsed["header"] == {"NR": 3, "N0": 2, "N1": 2, "NM": 2}
    assert parsed["truth"] == {"101": 1, "102": 0, "103": 1, "104": 0}
    ids = ["Dr_A", "Dr_B", "sim_3-simulated"]
    assert len(parsed["ratings"]) == 2 * 3 * 4
    for m, modality in enumerate(("unaided", "aided")):
        for j, reader in enumerate(ids):
            for k, case in enumerate(cases):
                assert parsed["ratings"][(reader, case, modality)] == ratings[m, j, k]


def test_two_modality_export_refuses_a_missing_read_and_clashing_names():
    ratings = np.ones((2, 2, 2))
    with pytest.raises(ValueError, match="expected \\[modality, reader, case\\]"):
        exports.imrmc_modalities_text(["A", "B"], ["1", "2"], [0, 1], ratings[:, :1])
    ratings[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        exports.imrmc_modalities_text(["A", "B"], ["1", "2"], [0, 1], ratings)
    with pytest.raises(ValueError, match="two reader names give the same iMRMC ID"):
        exports.imrmc_modalities_text(["Dr A", "Dr/A"], ["1", "2"], [0, 1], np.ones((2, 2, 2)))
