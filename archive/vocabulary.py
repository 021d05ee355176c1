"""The portal's domain words, defined once: contrast phases, pathology subtypes, model variants,
reading sessions and call values.

Pure Python (no Django), at the ground floor so that every layer may import it: the archive's
and annotations' model choices, the cohort generator, the experiments, the statistics, and
the browser (``portal.context_processors.vocabulary`` hands :func:`as_json_ready` to every
page through ``json_script``, read by ``frontend/src/vocabulary.js``).

Stored values are the database's: subtype ``other_rcc`` and ``fp_aml`` (never the spellings
``other_RCC``/``fat_poor_AML`` of the first generator).
"""

from __future__ import annotations

# Contrast phases of a multiphase renal CT, in acquisition order (DESIGN.md, "The job").
PHASES: tuple[str, ...] = ("NC", "CM", "NG", "EX")
PHASE_LABELS: dict[str, str] = {
    "NC": "unenhanced",
    "CM": "corticomedullary",
    "NG": "nephrographic",
    "EX": "excretory",
}
UNKNOWN_PHASE = "unknown"

# Histologic subtypes of small renal masses, malignant first (value, label).
MALIGNANT_SUBTYPES: tuple[str, ...] = ("ccRCC", "papillary", "chromophobe", "other_rcc")
BENIGN_SUBTYPES: tuple[str, ...] = ("oncocytoma", "fp_aml", "other_benign")
SUBTYPES: tuple[str, ...] = MALIGNANT_SUBTYPES + BENIGN_SUBTYPES
SUBTYPE_LABELS: dict[str, str] = {
    "ccRCC": "clear cell RCC",
    "papillary": "papillary RCC",
    "chromophobe": "chromophobe RCC",
    "other_rcc": "other RCC",
    "oncocytoma": "oncocytoma",
    "fp_aml": "fat-poor angiomyolipoma",
    "other_benign": "other benign",
}
# The name Python code gives each subtype (the members of ``annotations.models.Subtype``).
SUBTYPE_NAMES: dict[str, str] = {
    "ccRCC": "CCRCC",
    "papillary": "PAPILLARY",
    "chromophobe": "CHROMOPHOBE",
    "other_rcc": "OTHER_RCC",
    "oncocytoma": "ONCOCYTOMA",
    "fp_aml": "FAT_POOR_AML",
    "other_benign": "OTHER_BENIGN",
}

# The six model variants of the source study: name -> the phases stacked as its input.
VARIANTS: dict[str, tuple[str, ...]] = {
    "NC": ("NC",),
    "CM": ("CM",),
    "NG": ("NG",),
    "EX": ("EX",),
    "CM+NG": ("CM", "NG"),
    "ALL": PHASES,
}

# Reading sessions of a reader call, and the two call values.
SESSIONS: tuple[str, ...] = ("unaided", "aided")
SESSION_LABELS: dict[str, str] = {"unaided": "unaided", "aided": "aided (the model's output shown)"}
CALL_VALUES: dict[bool, str] = {False: "benign", True: "malignant"}
PROBABILITY_RANGE: tuple[int, int] = (0, 100)  # a reader's confidence of malignancy, percent


def is_malignant(subtype: str) -> bool:
    """Whether a pathology subtype is malignant (every RCC) or benign."""
    if subtype not in SUBTYPE_LABELS:
        raise ValueError(f"unknown subtype {subtype!r}; expected one of {', '.join(SUBTYPES)}")
    return subtype in MALIGNANT_SUBTYPES


def as_json_ready() -> dict:
    """The vocabulary as plain JSON values, for the browser (``json_script``)."""
    return {
        "phases": list(PHASES),
        "phase_labels": dict(PHASE_LABELS),
        "subtypes": [
            {"value": s, "label": SUBTYPE_LABELS[s], "malignant": s in MALIGNANT_SUBTYPES}
            for s in SUBTYPES
        ],
        "malignant_subtypes": list(MALIGNANT_SUBTYPES),
        "variants": {name: list(phases) for name, phases in VARIANTS.items()},
        "sessions": list(SESSIONS),
        "probability_range": list(PROBABILITY_RANGE),
    }
