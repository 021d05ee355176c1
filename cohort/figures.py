"""The literature figures of the synthetic cohort: one table, :data:`FIGURES`, with a source per row.

Every number the generator draws from is here, to be checked against
``shared/data/renal_ct_physiology.md`` ("the page"). The page's sources: Urologia 2016
(doi 10.5301/uj.5000256); AJR homogeneous papillary RCC (GWU smhs_rad_facpubs/990); van
Oostenbrugge, Kidney Cancer 2018; Xie 2016, Oncol Lett; Jinzaki 2014, Abdom Imaging; Diagn
Interv Radiol 2023;29:205; Remzi, J Urol 2006; Korean J Urol 2008; Radiopaedia renal mass
protocol; DICOM PS3.3 C.8.2 and PS3.15 Annex E. Rows marked "assumed" are not on the page:
plausible values chosen here, listed so a reader can see them.

Conventions:

- A page *range* a-b used as a lesion distribution is a normal with mean
  (a+b)/2 and SD max((b-a)/4, floor): the range read as mean +- 2 SD, with an
  assumed floor for between-patient variation of contrast timing and scanner
  (:data:`FIGURES` ``lesion.sd_floor``). A tissue range is drawn uniformly per
  patient.
- Subtypes and phases are spelled as in :mod:`archive.vocabulary`; rows keyed by
  subtype (``lesion.fp_aml``) or given per subtype follow :data:`SUBTYPES` order.
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np

from archive.vocabulary import PHASES, is_malignant
from archive.vocabulary import SUBTYPES as VOCABULARY_SUBTYPES

# The subtypes the generator draws: the vocabulary's less ``other_benign``, a catch-all
# with no attenuation figures. The order is the column order of the per-subtype rows below
# and the order of the subtype draw, so it fixes every cohort's latents for a seed.
SUBTYPES: tuple[str, ...] = tuple(s for s in VOCABULARY_SUBTYPES if s != "other_benign")
PATTERNS: tuple[str, ...] = ("homogeneous", "necrosis", "scar")


class Figure(NamedTuple):
    """One row of the figures table: ``value`` in ``unit``, from ``source``."""

    key: str
    value: tuple
    unit: str
    source: str


_PAGE = "renal_ct_physiology.md"
_HU4 = "HU per phase NC, CM, NG, EX"

# THE table. Lesion rows: (mean, sd) pairs or (low, high) ranges as the page writes them.
FIGURES: tuple[Figure, ...] = (
    # -- phase timing (seconds after the start of injection) --
    Figure(
        "delay_s.NC",
        (-180, -60),
        "s, uniform",
        f"{_PAGE} Phase timing: 'before injection'; offset assumed",
    ),
    Figure("delay_s.CM", (30, 40), "s, uniform", f"{_PAGE} Phase timing: CM typically 30-40 s"),
    Figure("delay_s.NG", (90, 100), "s, uniform", f"{_PAGE} Phase timing: NG typically 90-100 s"),
    Figure("delay_s.EX", (290, 310), "s, uniform", f"{_PAGE} Phase timing: EX typically 5 min"),
    # -- normal tissue, ranges drawn uniformly per patient --
    Figure(
        "tissue.cortex",
        ((30, 50), (150, 200), (130, 170), (80, 120)),
        f"{_HU4}, range",
        f"{_PAGE} Attenuation",
    ),
    Figure(
        "tissue.medulla",
        ((30, 50), (60, 100), (130, 170), (100, 150)),
        f"{_HU4}, range",
        f"{_PAGE} Attenuation",
    ),
    Figure(
        "tissue.aorta",
        ((35, 50), (290, 360), (150, 200), (100, 130)),
        f"{_HU4}, range",
        f"{_PAGE} Attenuation",
    ),
    Figure(
        "tissue.liver",
        ((50, 70), (20, 30), (100, 120), (70, 90)),
        f"{_HU4}, range; CM is NC + range",
        f"{_PAGE} Attenuation",
    ),
    Figure("tissue.fat", ((-120, -80),) * 4, f"{_HU4}, range", f"{_PAGE} Attenuation"),
    Figure(
        "tissue.urine",
        ((0, 10), (0, 10), (0, 10), (300, 500)),
        f"{_HU4}, range",
        f"{_PAGE} Attenuation: EX urine > 300; water 0-10 and upper bound 500 assumed",
    ),
    Figure("tissue.muscle", ((45, 55), (55, 65), (60, 70), (55, 65)), f"{_HU4}, range", "assumed"),
    Figure(
        "tissue.spleen", ((40, 50), (110, 140), (110, 130), (85, 100)), f"{_HU4}, range", "assumed"
    ),
    Figure(
        "tissue.ivc", ((35, 45), (80, 120), (150, 180), (100, 130)), f"{_HU4}, range", "assumed"
    ),
    Figure("tissue.bowel", ((30, 40), (60, 80), (70, 90), (60, 80)), f"{_HU4}, range", "assumed"),
    Figure("tissue.bone_cortical", ((600, 800),) * 4, f"{_HU4}, range", "assumed"),
    Figure("tissue.bone_cancellous", ((180, 260),) * 4, f"{_HU4}, range", "assumed"),
    Figure("tissue.disc", ((70, 90),) * 4, f"{_HU4}, range", "assumed"),
    Figure("tissue.csf", ((5, 15),) * 4, f"{_HU4}, range", "assumed"),
    Figure("tissue.gas", ((-950, -850),) * 4, f"{_HU4}, range", "assumed"),
    Figure("tissue.table", ((150, 250),) * 4, f"{_HU4}, range", "assumed (CT table)"),
    # -- lesions: per-phase attenuation of the solid tumour --
    Figure(
        "lesion.ccRCC",
        ((34, 7), (173, 45), (149, 34), (98, 36)),
        f"{_HU4}, mean +- SD",
        f"{_PAGE} Attenuation, clear cell RCC <= 4 cm",
    ),
    Figure(
        "lesion.papillary",
        ((15, 51), (32, 100), (18, 91), (18, 73)),
        f"{_HU4}, range",
        f"{_PAGE} Attenuation, papillary RCC",
    ),
    Figure(
        "lesion.chromophobe",
        ((30, 45), (70, 110), (80, 110), (60, 80)),
        f"{_HU4}, range",
        f"{_PAGE} Attenuation, chromophobe RCC",
    ),
    Figure(
        "lesion.other_rcc",
        ((25, 45), (60, 160), (60, 140), (40, 100)),
        f"{_HU4}, range",
        "assumed (not on the page): spans papillary to clear cell",
    ),
    Figure(
        "lesion.oncocytoma",
        ((31, 8), (151, 36), (137, 34), (79, 22)),
        f"{_HU4}, mean +- SD",
        f"{_PAGE} Attenuation, oncocytoma",
    ),
    Figure(
        "lesion.fp_aml",
        ((45, 9), (80, 130), (90, 110), (80, 100)),
        f"{_HU4}; NC mean +- SD, others range",
        f"{_PAGE} Attenuation, fat-poor AML: NC '>= 45' read as 45 +- 9 (one series 37.8); "
        "EX 'lower washout than ccRCC' read as 80-100 (assumed)",
    ),
    Figure(
        "lesion.sd_floor",
        (6, 15, 15, 15),
        "HU per phase, least SD of a range-derived lesion row",
        "assumed",
    ),
    Figure(
        "lesion.phase_correlation",
        (0.3, 0.7, 0.5),
        "r of NC with others; adjacent enhanced; CM-EX",
        "assumed",
    ),
    Figure(
        "lesion.enhancement_reference_hu",
        (35,),
        "HU; enhancement = phase HU minus this",
        f"assumed; about the unenhanced mean of ccRCC and oncocytoma on {_PAGE}",
    ),
    Figure(
        "lesion.necrosis_hu",
        (10, 30),
        "HU, non-enhancing necrotic/cystic part, uniform",
        f"{_PAGE} Attenuation, ccRCC appearance",
    ),
    Figure(
        "lesion.size_mm", (10, 40), "mm, long axis", "brief: ellipsoid 10-40 mm (masses <= 4 cm)"
    ),
    Figure("lesion.size_beta.malignant", (2.2, 2.0), "Beta(a, b) on the size range", "assumed"),
    Figure(
        "lesion.size_beta.benign",
        (1.8, 2.4),
        "Beta(a, b) on the size range",
        f"assumed; {_PAGE} Case mix: benign fraction higher below 2 cm",
    ),
    # -- morphology: probabilities per subtype, order of SUBTYPES --
    Figure(
        "morph.pattern.ccRCC",
        (0.50, 0.35, 0.15),
        "P(homogeneous, necrosis, central scar)",
        f"assumed; {_PAGE}: ccRCC heterogeneous with necrosis",
    ),
    Figure(
        "morph.pattern.papillary",
        (0.80, 0.15, 0.05),
        "P(homogeneous, necrosis, central scar)",
        f"assumed; {_PAGE}: papillary homogeneous",
    ),
    Figure(
        "morph.pattern.chromophobe",
        (0.75, 0.10, 0.15),
        "P(homogeneous, necrosis, central scar)",
        f"assumed; {_PAGE}: chromophobe homogeneous",
    ),
    Figure(
        "morph.pattern.other_rcc",
        (0.55, 0.35, 0.10),
        "P(homogeneous, necrosis, central scar)",
        "assumed",
    ),
    Figure(
        "morph.pattern.oncocytoma",
        (0.40, 0.20, 0.40),
        "P(homogeneous, necrosis, central scar)",
        f"assumed; {_PAGE}: central stellate scar in 54-80 % (part read as necrosis-like)",
    ),
    Figure(
        "morph.pattern.fp_aml",
        (0.85, 0.10, 0.05),
        "P(homogeneous, necrosis, central scar)",
        f"assumed; {_PAGE}: AML homogeneous",
    ),
    Figure(
        "morph.inversion",
        (0.25, 0.10, 0.10, 0.10, 0.67, 0.10),
        "P(segmental enhancement inversion) by subtype",
        f"{_PAGE}: complete inversion 67 % oncocytoma vs 25 % ccRCC; others assumed",
    ),
    Figure(
        "morph.heterogeneous.CM",
        (0.65, 0.15, 0.15, 0.40, 0.35, 0.10),
        "P(heterogeneous enhancement) by subtype",
        "assumed: ccRCC heterogeneity most conspicuous in CM",
    ),
    Figure(
        "morph.heterogeneous.NG",
        (0.40, 0.15, 0.15, 0.30, 0.30, 0.10),
        "P(heterogeneous enhancement) by subtype",
        "assumed",
    ),
    Figure(
        "morph.heterogeneous.EX",
        (0.30, 0.15, 0.15, 0.25, 0.30, 0.10),
        "P(heterogeneous enhancement) by subtype",
        "assumed",
    ),
    Figure(
        "morph.exophytic",
        (0.45, 0.45, 0.45, 0.45, 0.45, 0.70),
        "P(exophytic) by subtype",
        f"assumed; {_PAGE}: fat-poor AML exophytic",
    ),
    # -- patients --
    Figure(
        "case_mix.default",
        (56, 17, 5, 2, 13, 7),
        "% by subtype (SUBTYPES order)",
        f"{_PAGE} Case mix default",
    ),
    Figure(
        "lesions_per_patient",
        (168, 159),
        "lesions, patients",
        f"{_PAGE} Case mix: the source study",
    ),
    Figure(
        "sex.female",
        (0.35, 0.25, 0.45, 0.35, 0.45, 0.80),
        "P(female) by subtype",
        f"assumed; {_PAGE}: benign more frequent in women (21.4 % vs 6.2 %), AML female predominance",
    ),
    Figure(
        "age_years",
        (61, 11, 30, 85),
        "mean, SD, clip low, clip high; same for every subtype",
        "assumed",
    ),
    # -- image --
    Figure("noise_sd_hu", (10, 15), "HU, uniform per patient", f"{_PAGE} Image noise"),
    Figure(
        "blur_sigma_px",
        (0.7,),
        "in-plane Gaussian sigma (pixels): partial volume and noise texture",
        "assumed",
    ),
    Figure(
        "fov_mm",
        (380,),
        "mm at any matrix (0.74 mm pixels at 512)",
        f"{_PAGE} DICOM: FOV 320-450 mm",
    ),
    Figure(
        "slice_mm",
        (2.5,),
        "mm default slice thickness = spacing",
        f"{_PAGE} DICOM: SliceThickness 2.5-5 mm",
    ),
    Figure(
        "shift_sd_mm",
        (2.0,),
        "mm SD of the inter-phase patient shift per axis, clipped to +-5 mm",
        "assumed",
    ),
    Figure("window", (40, 400), "WindowCenter, WindowWidth", f"{_PAGE} DICOM: abdomen W400/L40"),
)
_FIGURES_BY_KEY = {f.key: f for f in FIGURES}


def figure(key: str) -> tuple:
    """The value of row ``key`` of :data:`FIGURES` (KeyError names the key)."""
    return _FIGURES_BY_KEY[key].value


def default_subtype_mix() -> dict[str, float]:
    """The page's default case mix as fractions: 80 % malignant, 20 % benign."""
    weights = figure("case_mix.default")
    total = float(sum(weights))
    return {subtype: w / total for subtype, w in zip(SUBTYPES, weights)}


def lesion_hu_distribution(subtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sd) arrays over :data:`PHASES` of a subtype's solid-tumour attenuation (HU).

    Ranges become mean = midpoint, SD = max(width / 4, floor); mean +- SD rows are
    used as written. The fat-poor AML row mixes both (NC mean +- SD, others ranges).
    """
    row = figure(f"lesion.{subtype}")
    floors = figure("lesion.sd_floor")
    is_range = {
        "ccRCC": (False,) * 4,
        "oncocytoma": (False,) * 4,
        "fp_aml": (False, True, True, True),
    }.get(subtype, (True,) * 4)
    means, sds = [], []
    for (a, b), ranged, floor in zip(row, is_range, floors):
        if ranged:
            means.append((a + b) / 2.0)
            sds.append(max((b - a) / 4.0, floor))
        else:
            means.append(float(a))
            sds.append(float(b))
    return np.array(means), np.array(sds)


def phase_correlation() -> np.ndarray:
    """4 x 4 correlation of a lesion's per-phase attenuation (NC, CM, NG, EX)."""
    r_nc, r_adjacent, r_cm_ex = figure("lesion.phase_correlation")
    return np.array(
        [
            [1.0, r_nc, r_nc, r_nc],
            [r_nc, 1.0, r_adjacent, r_cm_ex],
            [r_nc, r_adjacent, 1.0, r_adjacent],
            [r_nc, r_cm_ex, r_adjacent, 1.0],
        ]
    )


@cache
def subtype_constants(subtype: str) -> dict:
    """Constants of a subtype's latent distributions, shared by the sampler and the oracle.

    Cached because the oracle evaluates every subtype's density for every lesion.
    """
    mean, sd = lesion_hu_distribution(subtype)
    covariance = np.outer(sd, sd) * phase_correlation()
    sign, logdet = np.linalg.slogdet(covariance)
    if sign <= 0:
        raise ValueError(f"covariance of {subtype} is not positive definite")
    column = SUBTYPES.index(subtype)
    a, b = figure(f"lesion.size_beta.{'malignant' if is_malignant(subtype) else 'benign'}")
    pattern = dict(zip(PATTERNS, figure(f"morph.pattern.{subtype}")))
    return {
        "mean": mean,
        "sd": sd,
        "inverse": np.linalg.inv(covariance),
        "mvn_norm": -0.5 * (logdet + len(PHASES) * math.log(2 * math.pi)),
        "cholesky": np.linalg.cholesky(covariance),
        "beta": (a, b, math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)),
        "exophytic": figure("morph.exophytic")[column],
        "pattern": pattern,
        "pattern_EX": {
            "homogeneous": pattern["homogeneous"] + pattern["scar"],
            "necrosis": pattern["necrosis"],
        },
        "inversion": figure("morph.inversion")[column],
        "heterogeneous": {
            p: figure(f"morph.heterogeneous.{p}")[column] for p in ("CM", "NG", "EX")
        },
        "female": figure("sex.female")[column],
    }
