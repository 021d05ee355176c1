"""The one vocabulary (archive/vocabulary.py) and the archive's phase choices built from it."""

import pytest

from archive import vocabulary
from archive.models import Phase


def test_every_subtype_is_malignant_or_benign_and_an_unknown_one_is_an_error():
    assert [vocabulary.is_malignant(s) for s in vocabulary.SUBTYPES] == [True] * 4 + [False] * 3
    with pytest.raises(ValueError, match="other_RCC"):
        vocabulary.is_malignant("other_RCC")


def test_phase_choices_keep_their_stored_values_member_names_and_labels():
    assert Phase.choices == [
        ("NC", "unenhanced"),
        ("CM", "corticomedullary"),
        ("NG", "nephrographic"),
        ("EX", "excretory"),
        ("unknown", "unknown"),
    ]
    assert Phase.names == ["NC", "CM", "NG", "EX", "UNKNOWN"]
    assert Phase.UNKNOWN == vocabulary.UNKNOWN_PHASE


def test_the_six_source_study_variants_stack_the_phases_in_acquisition_order():
    assert list(vocabulary.VARIANTS) == ["NC", "CM", "NG", "EX", "CM+NG", "ALL"]
    for phases in vocabulary.VARIANTS.values():
        assert list(phases) == sorted(phases, key=vocabulary.PHASES.index)
