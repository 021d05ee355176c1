"""Subtype and Session choices, built from archive/vocabulary.py, keep the values the database holds."""

from annotations.models import Session, Subtype


def test_subtype_choices_keep_their_stored_values_member_names_and_labels():
    assert Subtype.choices == [
        ("ccRCC", "clear cell RCC"),
        ("papillary", "papillary RCC"),
        ("chromophobe", "chromophobe RCC"),
        ("other_rcc", "other RCC"),
        ("oncocytoma", "oncocytoma"),
        ("fp_aml", "fat-poor angiomyolipoma"),
        ("other_benign", "other benign"),
    ]
    assert Subtype.names == [
        "CCRCC",
        "PAPILLARY",
        "CHROMOPHOBE",
        "OTHER_RCC",
        "ONCOCYTOMA",
        "FAT_POOR_AML",
        "OTHER_BENIGN",
    ]


def test_session_choices_keep_their_stored_values_member_names_and_labels():
    assert Session.choices == [
        ("unaided", "unaided"),
        ("aided", "aided (the model's output shown)"),
    ]
    assert Session.names == ["UNAIDED", "AIDED"]
