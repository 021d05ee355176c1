"""Power and sample size (Hillis et al. 2011) against RJafroc's published figures.

Source of every expected figure: RJafroc (github.com/dpc10ster/rjafroc, commit
edb840e5), ``tests/testthat/test-SsSampleSizeRoc.R`` and the example in
``man/SsPowerGivenJK.Rd``, with ``dataset02`` = Van Dyke et al. 1993
(vandyke.csv) and ``dataset03`` = Franken et al. 1992 (franken.csv), FOM
"Wilcoxon" (empirical AUC), jackknife covariance. ``effectSize`` NULL there
means the pilot's observed difference, treatment 1 minus treatment 2.
"""

import numpy as np
import pytest

from evaluation.stats import sample_size
from evaluation.stats.reader_study import load_reader_study

VAN_DYKE_OBSERVED_EFFECT = -0.043800322  # as RJafroc's test file passes it


def _pilot(reference_dir, name):
    study = load_reader_study(reference_dir / name)
    return sample_size.pilot_from_ratings(study.ratings, study.truth)


@pytest.fixture(scope="module")
def van_dyke(reference_dir):
    return _pilot(reference_dir, "vandyke.csv")


@pytest.fixture(scope="module")
def franken(reference_dir):
    return _pilot(reference_dir, "franken.csv")


def _power(pilot, readers, cases, effect, analysis="rrrc"):
    return sample_size.power_given_readers_and_cases(
        pilot, readers, cases, effect, analysis=analysis
    ).power


# --- the published figures ----------------------------------------------------


def test_van_dyke_variance_components_match_rjafroc_example(van_dyke):
    # man/SsPowerGivenJK.Rd, EXAMPLE 4A: UtilORVarComp(dataset02, FOM = "Wilcoxon") printed to 11 digits.
    assert (van_dyke.n_readers, van_dyke.n_cases) == (5, 114)
    assert van_dyke.var_treatment_reader == pytest.approx(0.00020040252, abs=5e-12)
    assert van_dyke.cov1 == pytest.approx(0.00034661371, abs=5e-12)
    assert van_dyke.cov2 == pytest.approx(0.00034407483, abs=5e-12)
    assert van_dyke.cov3 == pytest.approx(0.00023902837, abs=5e-12)
    assert van_dyke.var == pytest.approx(0.00080228827, abs=5e-12)
    assert van_dyke.observed_effect == pytest.approx(VAN_DYKE_OBSERVED_EFFECT, abs=5e-10)


def test_franken_negative_treatment_reader_variance_matches_rjafroc(franken):
    # R/UtilORVarComp.R comment: "my code reports VarTR = -0.00068389146" for the Franken data.
    assert franken.var_treatment_reader == pytest.approx(-0.00068389146, abs=5e-12)


def test_franken_six_readers_need_121_cases_for_power_0_8004469_rrrc(franken):
    # SsSampleSizeKGivenJ(dataset03, FOM = "Wilcoxon", effectSize = 0.05, J = 6, method = "OR")
    # -> powerRRRC 0.8004469 (expect_equivalent, 7 digits); its K is 121, the K the same
    # test file passes to SsPowerGivenJK(dataset03, ..., J = 6, K = 121).
    needed = sample_size.cases_for_power(franken, 6, 0.05, 0.8)
    assert needed.n_cases == 121
    assert needed.power == pytest.approx(0.8004469, abs=5e-8)
    assert _power(franken, 6, 120, 0.05) < 0.8


def test_van_dyke_ten_readers_powers_match_rjafroc_for_each_analysis(van_dyke):
    # SsPowerGivenJK(dataset02, FOM = "Wilcoxon", method = "OR", effectSize = -0.043800322, J = 10,
    #   K = 165)                         -> powerRRRC 0.80541995
    #   K = 131, analysisOption = "FRRC" -> powerFRRC 0.80091813
    #   K = 53,  analysisOption = "RRFC" -> powerRRFC 0.80496663   (8 digits each)
    assert _power(van_dyke, 10, 165, VAN_DYKE_OBSERVED_EFFECT, "rrrc") == pytest.approx(
        0.80541995, abs=5e-9
    )
    assert _power(van_dyke, 10, 131, VAN_DYKE_OBSERVED_EFFECT, "frrc") == pytest.approx(
        0.80091813, abs=5e-9
    )
    assert _power(van_dyke, 10, 53, VAN_DYKE_OBSERVED_EFFECT, "rrfc") == pytest.approx(
        0.80496663, abs=5e-9
    )


def test_van_dyke_six_readers_111_cases_observed_effect_power_matches_rjafroc(van_dyke):
    # SsPowerGivenJK(dataset02, FOM = "Wilcoxon", J = 6, K = 111, method = "OR")$powerRRRC 0.5526116.
    assert _power(van_dyke, 6, 111, van_dyke.observed_effect) == pytest.approx(0.5526116, abs=5e-8)


def test_van_dyke_six_readers_need_251_cases_with_the_observed_effect(van_dyke):
    # SsSampleSizeKGivenJ(dataset02, J = 6, FOM = "Wilcoxon", method = "OR")$KRRRC 251, and
    # SsPowerTable(dataset02, FOM = "Wilcoxon") row for 6 readers: numCases 251, power 0.801.
    needed = sample_size.cases_for_power(van_dyke, 6, van_dyke.observed_effect, 0.8)
    assert needed.n_cases == 251
    assert round(needed.power, 3) == 0.801


def test_rrrc_ddf_at_the_pilots_own_size_is_the_hillis_ddf_of_its_analysis(van_dyke):
    # With σ²_TR > 0 the predicted ddf at J*, K* is the ddf of the pilot's own OR test
    # (MRMCaov's VanDyke example: df 15.26, as in test_mrmc).
    power = sample_size.power_given_readers_and_cases(van_dyke, 5, 114, 0.05)
    assert power.ddf == pytest.approx(15.26, abs=0.005)


# --- behaviour ------------------------------------------------------------------


def test_power_grows_with_cases_and_readers_and_frrc_is_the_most_powerful(van_dyke):
    table = sample_size.power_table(van_dyke, [3, 6, 10], [50, 100, 200, 400], 0.05)
    assert np.all(np.diff(table.power, axis=0) > 0) and np.all(np.diff(table.power, axis=1) > 0)
    frrc = sample_size.power_table(van_dyke, [3, 6, 10], [50, 100, 200, 400], 0.05, analysis="frrc")
    assert np.all(frrc.power > table.power)


def test_power_table_entries_equal_single_power_calls(franken):
    table = sample_size.power_table(franken, [4, 8], [80, 300], 0.05, analysis="rrfc")
    assert table.power[1, 0] == pytest.approx(_power(franken, 8, 80, 0.05, "rrfc"), abs=1e-14)


def test_without_an_effect_power_is_alpha(van_dyke):
    for analysis in sample_size.Analysis:
        assert _power(van_dyke, 6, 200, 0.0, analysis) == pytest.approx(0.05, abs=1e-12)


def test_sign_of_the_effect_does_not_matter(van_dyke):
    assert _power(van_dyke, 6, 200, -0.05) == _power(van_dyke, 6, 200, 0.05)


def test_unreachable_power_gives_no_case_count_and_states_the_limit(van_dyke):
    # σ²_TR > 0: with 3 readers even unlimited cases do not give 0.8 power for a 0.05 difference.
    needed = sample_size.cases_for_power(van_dyke, 3, 0.05, 0.8)
    assert needed.n_cases is None and needed.power is None
    assert needed.power_limit < 0.8
    assert _power(van_dyke, 3, 10**7, 0.05) == pytest.approx(needed.power_limit, abs=1e-4)


def test_frrc_always_reaches_the_power_with_enough_cases(franken):
    needed = sample_size.cases_for_power(franken, 3, 0.05, 0.9, analysis="frrc")
    assert needed.power_limit == 1.0 and needed.n_cases is not None and needed.power >= 0.9


def test_readers_for_power_is_the_smallest_reader_count(van_dyke):
    needed = sample_size.readers_for_power(van_dyke, 200, 0.05, 0.8)
    assert needed.power >= 0.8
    assert _power(van_dyke, needed.n_readers - 1, 200, 0.05) < 0.8
    assert sample_size.cases_for_power(van_dyke, needed.n_readers, 0.05, 0.8).n_cases <= 200


def test_patient_clusters_make_the_pilot_count_patients(reference_dir):
    study = load_reader_study(reference_dir / "franken.csv")
    patients = np.arange(len(study.cases)) // 2
    pilot = sample_size.pilot_from_ratings(study.ratings, study.truth, clusters=patients)
    assert pilot.n_cases == 50


def test_plan_study_has_a_table_and_cases_needed_for_every_analysis(van_dyke):
    plan = sample_size.plan_study(van_dyke, 0.05, 0.8, readers=[5, 10], cases=[100, 200])
    payload = plan.as_dict()
    assert set(payload["analyses"]) == {"rrrc", "frrc", "rrfc"}
    assert payload["analyses"]["rrrc"]["power"][1][0] == pytest.approx(
        _power(van_dyke, 10, 100, 0.05)
    )
    assert [row["readers"] for row in payload["analyses"]["frrc"]["cases_needed"]] == [5, 10]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: sample_size.plan_study(p, 0.0), "effect size must be a positive"),
        (
            lambda p: sample_size.plan_study(p, 0.05, 1.0),
            "desired power must lie strictly between 0 and 1",
        ),
        (lambda p: sample_size.plan_study(p, 0.05, 0.8, alpha=0), "alpha must lie strictly"),
        (
            lambda p: sample_size.power_table(p, [1], [100], 0.05),
            "reader counts must be at least 2",
        ),
        (
            lambda p: sample_size.cases_for_power(p, 5, 0.05, analysis="xyz"),
            "'xyz' is not a valid Analysis",
        ),
    ],
)
def test_bad_planning_input_is_refused_with_a_message(van_dyke, call, message):
    with pytest.raises(ValueError, match=message):
        call(van_dyke)


def test_a_single_treatment_pilot_is_refused(reference_dir):
    study = load_reader_study(reference_dir / "franken.csv")
    with pytest.raises(ValueError, match="exactly two treatments"):
        sample_size.pilot_from_ratings(study.ratings[:1], study.truth)


def test_a_pilot_without_case_variance_between_treatments_is_refused():
    with pytest.raises(ValueError, match="Var - Cov1 is not positive"):
        sample_size.PilotComponents(
            5, 100, var=0.001, cov1=0.001, cov2=0.0, cov3=0.0, var_treatment_reader=0.0
        )
