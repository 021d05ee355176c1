"""Synthetic multiphase renal CT cohort: latents, oracle, volumes and DICOM files.

No real renal CT can be shipped, so the demo, the training tests and the
benchmarks run on a generated cohort that looks and behaves like the source
study's (159 patients, 168 solid renal masses <= 4 cm, phases NC/CM/NG/EX,
pathology for every lesion, about 20 % benign).

Pipeline (each step a pure function; no Django here):

1. :func:`sample_cohort` draws the latents of every patient and lesion (cheap,
   no pixels): subtype, size, position, per-phase mean attenuation, morphology,
   timing, patient shift. Each lesion carries its oracle log-likelihood ratio.
2. :func:`render_volumes` turns one case into four HU volumes (one per phase);
   :func:`render_study` wraps them as CT Image Storage datasets.
3. :func:`write_cohort` writes every study plus ``cohort.csv`` and returns the
   rows and paths an importer needs.

Every figure the generator uses is in :data:`FIGURES`, one table with the
source of each row, to be checked against ``shared/data/renal_ct_physiology.md``
("the page"). The page's sources: Urologia 2016 (doi 10.5301/uj.5000256); AJR
homogeneous papillary RCC (GWU smhs_rad_facpubs/990); van Oostenbrugge, Kidney
Cancer 2018; Xie 2016, Oncol Lett; Jinzaki 2014, Abdom Imaging; Diagn Interv
Radiol 2023;29:205; Remzi, J Urol 2006; Korean J Urol 2008; Radiopaedia renal
mass protocol; DICOM PS3.3 C.8.2 and PS3.15 Annex E. Rows marked "assumed" are
not on the page: plausible values chosen here, listed so a reader can see them.

Conventions:

- A page *range* a-b used as a lesion distribution is a normal with mean
  (a+b)/2 and SD max((b-a)/4, floor): the range read as mean +- 2 SD, with an
  assumed floor for between-patient variation of contrast timing and scanner
  (:data:`FIGURES` ``lesion.sd_floor``). A tissue range is drawn uniformly per
  patient.
- A lesion's per-phase "mean HU" is the mean attenuation inside its ROI on the
  centre slice (the ROI of ``cohort.csv``: a disc of 0.6 x the smaller in-plane
  semi-axis); the rendered texture is shifted so that this holds before blur
  and noise. A phase's image of a lesion depends on that phase's mean HU only
  (plus morphology), which keeps the per-phase oracle an upper bound.
- Coordinates are DICOM patient coordinates (LPS, mm): x to the patient's
  left, y posterior, z superior. Image rows run +y, columns +x.
"""

from __future__ import annotations

import csv
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)
from scipy import ndimage, stats

PHASES: tuple[str, ...] = ("NC", "CM", "NG", "EX")
MALIGNANT_SUBTYPES: tuple[str, ...] = ("ccRCC", "papillary", "chromophobe", "other_RCC")
BENIGN_SUBTYPES: tuple[str, ...] = ("oncocytoma", "fat_poor_AML")
SUBTYPES: tuple[str, ...] = MALIGNANT_SUBTYPES + BENIGN_SUBTYPES
PATTERNS: tuple[str, ...] = ("homogeneous", "necrosis", "scar")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
TRANSFER_SYNTAXES = {
    "explicit-le": ExplicitVRLittleEndian,
    "implicit-le": ImplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless,
    "jpeg2000": JPEG2000Lossless,
}


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
        "lesion.other_RCC",
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
        "lesion.fat_poor_AML",
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
        "morph.pattern.other_RCC",
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
        "morph.pattern.fat_poor_AML",
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
        "fat_poor_AML": (False, True, True, True),
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


# ----------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class CohortSpec:
    """What to generate. ``subtype_mix`` weights are normalised; unknown subtypes are errors."""

    patients: int = 160
    seed: int = 0
    size: int = 512
    slices: int = 64
    slice_mm: float = 2.5
    fov_mm: float = 380.0
    transfer_syntax: str = "explicit-le"
    subtype_mix: Mapping[str, float] = field(default_factory=default_subtype_mix)
    lesions_per_patient: float = 168 / 159

    def __post_init__(self):
        if self.patients < 1:
            raise ValueError("patients must be at least 1")
        if self.size < 64:
            raise ValueError("size must be at least 64 pixels")
        if self.slices < 8:
            raise ValueError(
                "slices must be at least 8 (the lesion and the inter-phase shift must fit)"
            )
        if self.slice_mm <= 0 or self.fov_mm <= 0:
            raise ValueError("slice_mm and fov_mm must be positive")
        if self.transfer_syntax not in TRANSFER_SYNTAXES:
            raise ValueError(f"transfer_syntax must be one of {', '.join(TRANSFER_SYNTAXES)}")
        if not 1.0 <= self.lesions_per_patient <= 2.0:
            raise ValueError("lesions_per_patient must lie in [1, 2]")
        unknown = sorted(set(self.subtype_mix) - set(SUBTYPES))
        if unknown:
            raise ValueError(f"unknown subtypes {unknown}; known: {', '.join(SUBTYPES)}")
        weights = {s: float(self.subtype_mix.get(s, 0.0)) for s in SUBTYPES}
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("subtype_mix weights must be >= 0 with a positive sum")
        total = sum(weights.values())
        object.__setattr__(self, "subtype_mix", {s: w / total for s, w in weights.items()})

    @property
    def pixel_mm(self) -> float:
        return self.fov_mm / self.size

    @property
    def z_top_mm(self) -> float:
        """z of the first (most superior) slice; the scan is centred on z = -120 mm."""
        return -120.0 + (self.slices - 1) * self.slice_mm / 2.0

    def slice_z(self, index: np.ndarray | int) -> np.ndarray | float:
        return self.z_top_mm - np.asarray(index) * self.slice_mm

    @property
    def first_pixel_mm(self) -> float:
        """x (and y) of the centre of the first column (row)."""
        return -self.fov_mm / 2.0 + self.pixel_mm / 2.0


# ----------------------------------------------------------------------------- latents


@dataclass(frozen=True)
class Kidney:
    side: str  # "R" or "L"
    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]  # towards the hilum, across, craniocaudal
    hilum_angle_rad: float  # direction of the hilum in the axial plane


@dataclass(frozen=True)
class Lesion:
    """A lesion's latents. ``centre_mm`` is the unshifted centre, on a slice of the grid."""

    lesion_id: str
    subtype: str
    malignant: bool
    side: str
    size_mm: float
    semi_axes_mm: tuple[float, float, float]
    rotation_rad: float
    centre_mm: tuple[float, float, float]
    centre_slice: int
    roi_radius_mm: float
    mean_hu: dict[str, float]
    pattern: str
    inversion: bool
    heterogeneous: dict[str, bool]
    exophytic: bool
    texture_seed: int
    oracle_llr: float = math.nan
    oracle_llr_phase: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PatientCase:
    """One patient's latents: everything :func:`render_volumes` needs, no pixels."""

    index: int
    patient_id: str
    age: int
    sex: str
    lesions: tuple[Lesion, ...]
    kidneys: tuple[Kidney, Kidney]
    anatomy: dict[str, float]
    tissue_hu: dict[str, dict[str, float]]
    injection_time_s: float
    delay_s: dict[str, float]
    shift_voxels: dict[str, tuple[int, int, int]]  # (z slices, y rows, x columns) per phase
    noise_sd: float
    study_date: str

    def shift_mm(self, phase: str, spec: CohortSpec) -> tuple[float, float, float]:
        """The patient's displacement (x, y, z) in ``phase`` in mm (z slices count downwards)."""
        dz, dy, dx = self.shift_voxels[phase]
        return dx * spec.pixel_mm, dy * spec.pixel_mm, -dz * spec.slice_mm


def _rng(spec: CohortSpec, patient: int, stream: int) -> np.random.Generator:
    # Separate streams: changing the image geometry leaves the clinical latents unchanged.
    return np.random.default_rng(np.random.SeedSequence([spec.seed, patient, stream]))


_CLINICAL, _ANATOMY, _ACQUISITION, _PIXELS = range(4)


def sample_cohort(spec: CohortSpec) -> list[PatientCase]:
    """The latents of every patient of ``spec`` (cheap: no pixels), each lesion with its oracle LLR.

    Generative model, per patient: sex from the mix-implied marginal, then the
    number of lesions (1, or 2 at the source study's rate), then each lesion's
    subtype from P(subtype | sex) so that the marginal subtype mix is exactly
    ``spec.subtype_mix``; then size, per-phase attenuation (multivariate normal
    over phases), morphology and position. Age is independent of the subtype.
    """
    return [_sample_patient(spec, i) for i in range(spec.patients)]


def _sample_patient(spec: CohortSpec, index: int) -> PatientCase:
    clinical = _rng(spec, index, _CLINICAL)
    mix = np.array([spec.subtype_mix[s] for s in SUBTYPES])
    p_female_given_subtype = np.array(figure("sex.female"))
    p_female = float(mix @ p_female_given_subtype)
    female = clinical.random() < p_female
    p_subtype = mix * (p_female_given_subtype if female else 1 - p_female_given_subtype)
    p_subtype /= p_subtype.sum()
    mean_age, sd_age, low_age, high_age = figure("age_years")
    age = int(np.clip(round(clinical.normal(mean_age, sd_age)), low_age, high_age))
    n_lesions = 1 + int(clinical.random() < spec.lesions_per_patient - 1.0)
    drawn = [
        _sample_lesion_latents(clinical, SUBTYPES[clinical.choice(len(SUBTYPES), p=p_subtype)])
        for _ in range(n_lesions)
    ]

    anatomy_rng = _rng(spec, index, _ANATOMY)
    anatomy, kidneys = _sample_anatomy(anatomy_rng)
    patient_id = f"SRM-{index + 1:04d}"
    lesions = []
    for number, latents in enumerate(drawn, start=1):
        placed = _place_lesion(anatomy_rng, spec, kidneys, latents, lesions)
        lesions.append(Lesion(lesion_id=f"{patient_id}-L{number}", **latents, **placed))
    lesions = [_with_oracle(lesion, "F" if female else "M", spec.subtype_mix) for lesion in lesions]

    acquisition = _rng(spec, index, _ACQUISITION)
    tissue_hu = _sample_tissue_hu(acquisition)
    delay_s = {phase: float(acquisition.uniform(*figure(f"delay_s.{phase}"))) for phase in PHASES}
    shift_sd = figure("shift_sd_mm")[0]
    shift_voxels = {}
    for phase in PHASES:
        mm = np.clip(acquisition.normal(0.0, shift_sd, 3), -5.0, 5.0)
        shift_voxels[phase] = (
            int(round(mm[2] / spec.slice_mm)),
            int(round(mm[1] / spec.pixel_mm)),
            int(round(mm[0] / spec.pixel_mm)),
        )
    return PatientCase(
        index=index,
        patient_id=patient_id,
        age=age,
        sex="F" if female else "M",
        lesions=tuple(lesions),
        kidneys=kidneys,
        anatomy=anatomy,
        tissue_hu=tissue_hu,
        injection_time_s=float(acquisition.uniform(8 * 3600, 16 * 3600)),
        delay_s=delay_s,
        shift_voxels=shift_voxels,
        noise_sd=float(acquisition.uniform(*figure("noise_sd_hu"))),
        study_date=f"2000{1 + index % 12:02d}{1 + index % 28:02d}",
    )


def _sample_lesion_latents(rng: np.random.Generator, subtype: str) -> dict:
    malignant = subtype in MALIGNANT_SUBTYPES
    low, high = figure("lesion.size_mm")
    a, b = figure(f"lesion.size_beta.{'malignant' if malignant else 'benign'}")
    size = low + (high - low) * rng.beta(a, b)
    constants = _subtype_constants(subtype)
    hu = constants["mean"] + constants["cholesky"] @ rng.standard_normal(len(PHASES))
    column = SUBTYPES.index(subtype)
    pattern = PATTERNS[rng.choice(3, p=figure(f"morph.pattern.{subtype}"))]
    heterogeneous = {"NC": False}
    for phase in ("CM", "NG", "EX"):
        heterogeneous[phase] = bool(rng.random() < figure(f"morph.heterogeneous.{phase}")[column])
    return dict(
        subtype=subtype,
        malignant=malignant,
        size_mm=float(size),
        semi_axes_mm=(
            size / 2,
            size / 2 * rng.uniform(0.75, 1.0),
            size / 2 * rng.uniform(0.75, 1.0),
        ),
        rotation_rad=float(rng.uniform(0, np.pi)),
        mean_hu={phase: float(v) for phase, v in zip(PHASES, hu)},
        pattern=pattern,
        inversion=bool(rng.random() < figure("morph.inversion")[column]),
        heterogeneous=heterogeneous,
        exophytic=bool(rng.random() < figure("morph.exophytic")[column]),
        texture_seed=int(rng.integers(2**31)),
    )


def _sample_anatomy(rng: np.random.Generator) -> tuple[dict[str, float], tuple[Kidney, Kidney]]:
    anatomy = {
        "cavity_ax": rng.uniform(118, 132),
        "cavity_ay": rng.uniform(88, 98),
        "muscle_mm": rng.uniform(8, 12),
        "subcutaneous_fat_mm": rng.uniform(10, 35),
        "liver_bottom_mm": rng.uniform(-150, -125),
        "spleen_bottom_mm": rng.uniform(-110, -90),
        "disc_phase_mm": rng.uniform(0, 35),
        "bowel_seed": float(rng.integers(2**31)),
    }
    kidneys = []
    for side, sign, z in (("R", -1.0, -128.0), ("L", 1.0, -113.0)):
        centre = (sign * rng.uniform(70, 78), rng.uniform(42, 50), z + rng.uniform(-6, 6))
        axes = (rng.uniform(23, 27), rng.uniform(21, 25), rng.uniform(50, 58))
        # The hilum faces anteromedially: medial is -sign in x, anterior is -y.
        angle = math.atan2(-rng.uniform(0.5, 0.8), -sign)
        kidneys.append(Kidney(side, centre, axes, angle))
    return anatomy, (kidneys[0], kidneys[1])


def _sample_tissue_hu(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    rows = [row for row in FIGURES if row.key.startswith("tissue.")]
    ranges = np.array([row.value for row in rows], dtype=float)  # tissue, phase, (low, high)
    draws = ranges[..., 0] + (ranges[..., 1] - ranges[..., 0]) * rng.random(ranges.shape[:2])
    tissue_hu = {
        phase: {row.key.removeprefix("tissue."): float(draws[i, j]) for i, row in enumerate(rows)}
        for j, phase in enumerate(PHASES)
    }
    tissue_hu["CM"]["liver"] += tissue_hu["NC"]["liver"]  # the page gives liver CM as NC + 20-30
    return tissue_hu


def _place_lesion(rng, spec: CohortSpec, kidneys, latents: dict, placed: list[Lesion]) -> dict:
    """Centre on (exophytic) or inside the kidney surface, away from the hilum, on a slice that every phase shows."""
    max_shift = int(math.ceil(5.0 / spec.slice_mm))
    rz = latents["semi_axes_mm"][2]
    reach = max_shift + int(math.ceil(rz / spec.slice_mm))
    if spec.slices - 1 - 2 * reach < 0:
        reach = max_shift
    for attempt in range(20):
        kidney = (
            kidneys[int(rng.integers(2))]
            if attempt < 19 or not placed
            else kidneys[1 - [k.side for k in kidneys].index(placed[0].side)]
        )
        au, av, aw = kidney.semi_axes_mm
        cz = kidney.centre_mm[2]
        z_low = max(spec.slice_z(spec.slices - 1 - reach), cz - 0.8 * aw)
        z_high = min(spec.slice_z(reach), cz + 0.8 * aw)
        z = rng.uniform(z_low, z_high) if z_low < z_high else (z_low + z_high) / 2
        centre_slice = int(
            np.clip(round((spec.z_top_mm - z) / spec.slice_mm), reach, spec.slices - 1 - reach)
        )
        z = float(spec.slice_z(centre_slice))
        w = np.clip((z - cz) / aw, -0.95, 0.95)
        scale = math.sqrt(1 - w * w)
        phi = rng.uniform(np.radians(70), np.radians(290))  # angle from the hilum direction
        depth = rng.uniform(0.95, 1.1) if latents["exophytic"] else rng.uniform(0.55, 0.75)
        u, v = depth * scale * au * math.cos(phi), depth * scale * av * math.sin(phi)
        c, s = math.cos(kidney.hilum_angle_rad), math.sin(kidney.hilum_angle_rad)
        x = kidney.centre_mm[0] + u * c - v * s
        y = kidney.centre_mm[1] + u * s + v * c
        far_enough = all(
            math.dist((x, y, z), other.centre_mm) > latents["size_mm"] / 2 + other.size_mm / 2 + 5
            for other in placed
        )
        if far_enough:
            break
    r1, r2, _ = latents["semi_axes_mm"]
    return dict(
        side=kidney.side,
        centre_mm=(float(x), float(y), z),
        centre_slice=centre_slice,
        roi_radius_mm=float(0.6 * min(r1, r2)),
    )


# ----------------------------------------------------------------------------- oracle


class OracleAUC(NamedTuple):
    """Oracle AUC per phase (that phase's latents) and overall (all latents)."""

    NC: float
    CM: float
    NG: float
    EX: float
    overall: float
    n_malignant: int
    n_benign: int


def _visible_pattern(pattern: str, phase: str | None) -> str | None:
    # NC renders every lesion homogeneous; in EX a scar has filled in (delayed enhancement).
    if phase == "NC":
        return None
    if phase == "EX" and pattern == "scar":
        return "homogeneous"
    return pattern


@lru_cache(maxsize=None)
def _subtype_constants(subtype: str) -> dict:
    """Cached constants of a subtype's latent distributions (plain floats: this runs per lesion)."""
    mean, sd = lesion_hu_distribution(subtype)
    covariance = np.outer(sd, sd) * phase_correlation()
    sign, logdet = np.linalg.slogdet(covariance)
    if sign <= 0:
        raise ValueError(f"covariance of {subtype} is not positive definite")
    column = SUBTYPES.index(subtype)
    a, b = figure(f"lesion.size_beta.{'malignant' if subtype in MALIGNANT_SUBTYPES else 'benign'}")
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


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _log_bernoulli(p: float, outcome: bool) -> float:
    return math.log(p if outcome else 1.0 - p)


def _log_densities(lesion: Lesion, sex: str, subtype: str) -> dict[str | None, float]:
    """log p(latents visible in a phase | subtype) per phase; key None: every latent (and sex)."""
    k = _subtype_constants(subtype)
    low, high = figure("lesion.size_mm")
    a, b, log_beta = k["beta"]
    t = (lesion.size_mm - low) / (high - low)
    shared = (a - 1) * math.log(t) + (b - 1) * math.log1p(-t) - log_beta
    shared += _log_bernoulli(k["exophytic"], lesion.exophytic)
    inversion = _log_bernoulli(k["inversion"], lesion.inversion)
    heterogeneous = {
        p: _log_bernoulli(q, lesion.heterogeneous[p]) for p, q in k["heterogeneous"].items()
    }
    pattern = math.log(k["pattern"][lesion.pattern])
    pattern_ex = math.log(k["pattern_EX"][_visible_pattern(lesion.pattern, "EX")])
    hu = [lesion.mean_hu[p] for p in PHASES]
    out: dict[str | None, float] = {}
    for j, phase in enumerate(PHASES):
        z = (hu[j] - k["mean"][j]) / k["sd"][j]
        out[phase] = shared - 0.5 * z * z - math.log(k["sd"][j] * math.sqrt(2 * math.pi))
    out["CM"] += pattern + inversion + heterogeneous["CM"]
    out["NG"] += pattern + heterogeneous["NG"]
    out["EX"] += pattern_ex + inversion + heterogeneous["EX"]
    d = np.array(hu) - k["mean"]
    out[None] = (
        shared
        + k["mvn_norm"]
        - 0.5 * float(d @ k["inverse"] @ d)
        + pattern
        + inversion
        + sum(heterogeneous.values())
        + _log_bernoulli(k["female"], sex == "F")
    )
    return out


def lesion_llrs(
    lesion: Lesion, sex: str, subtype_mix: Mapping[str, float]
) -> dict[str | None, float]:
    """:func:`lesion_llr` for every phase and overall (key None) at once."""
    by_class: dict[bool, list[dict]] = {True: [], False: []}
    for subtype in SUBTYPES:
        weight = subtype_mix.get(subtype, 0.0)
        if weight > 0:
            densities = _log_densities(lesion, sex, subtype)
            by_class[subtype in MALIGNANT_SUBTYPES].append(
                {key: math.log(weight) + v for key, v in densities.items()}
            )
    keys = (None,) + PHASES
    if not by_class[True] or not by_class[False]:
        return {key: math.nan for key in keys}
    return {
        key: _logsumexp([d[key] for d in by_class[True]])
        - _logsumexp([d[key] for d in by_class[False]])
        for key in keys
    }


def lesion_llr(
    lesion: Lesion, sex: str, subtype_mix: Mapping[str, float], phase: str | None = None
) -> float:
    """Oracle log-likelihood ratio of malignancy, log p(x | malignant) - log p(x | benign).

    ``x`` is what the generator sampled and drew into the images: the per-phase
    mean attenuation (multivariate normal over phases; one phase's marginal when
    ``phase`` is given), size, exophytic growth, the internal pattern as that phase
    shows it (none in NC; a scar looks homogeneous in EX), segmental enhancement
    inversion (CM and EX), heterogeneous enhancement (that phase), and, overall
    only, the patient's sex. Each class density is the mixture of its subtypes
    weighted by ``subtype_mix``. Since every rendered image is a function of these
    latents plus class-independent anatomy and noise, no reader or model of those
    images can beat the AUC of this statistic in expectation. NaN when the mix has
    no subtype of one class.
    """
    return lesion_llrs(lesion, sex, subtype_mix)[phase]


def _with_oracle(lesion: Lesion, sex: str, mix: Mapping[str, float]) -> Lesion:
    llrs = lesion_llrs(lesion, sex, mix)
    per_phase = {phase: llrs[phase] for phase in PHASES}
    return Lesion(**{**lesion.__dict__, "oracle_llr": llrs[None], "oracle_llr_phase": per_phase})


def auc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n1 n0)); ties count one half; NaN without both classes."""
    scores = np.asarray(scores, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


PHASE_LATENT_NAMES = (
    "mean_hu",
    "size_mm",
    "exophytic",
    "necrosis",
    "scar",
    "inversion",
    "heterogeneous",
)


def phase_latents(lesion: Lesion, phase: str) -> list[float]:
    """The latents ``phase``'s image of ``lesion`` shows, as numbers (:data:`PHASE_LATENT_NAMES` order).

    Exactly what the per-phase oracle of :func:`lesion_llr` reads: that phase's mean HU,
    size, exophytic growth, the internal pattern as the phase shows it (none in NC, a
    scar homogeneous in EX), segmental inversion (CM and EX only) and heterogeneous
    enhancement in that phase. A classifier *learned* on these, perfectly measured, is
    the most an image-based model trained on the same lesions can hope for
    (``benchmarks/learnability.py``); the oracle itself knows the true distributions.
    """
    pattern = _visible_pattern(lesion.pattern, phase)
    return [
        lesion.mean_hu[phase],
        lesion.size_mm,
        float(lesion.exophytic),
        float(pattern == "necrosis"),
        float(pattern == "scar"),
        float(lesion.inversion and phase in ("CM", "EX")),
        float(lesion.heterogeneous[phase]),
    ]


def oracle_auc(lesions: Sequence[Lesion]) -> OracleAUC:
    """The oracle AUC (benign vs malignant) per phase and overall over ``lesions``: the ceiling for readers and models."""
    truth = [lesion.malignant for lesion in lesions]
    per_phase = [auc([lesion.oracle_llr_phase[p] for lesion in lesions], truth) for p in PHASES]
    return OracleAUC(
        *per_phase,
        auc([lesion.oracle_llr for lesion in lesions], truth),
        n_malignant=sum(truth),
        n_benign=len(truth) - sum(truth),
    )


class ReaderCall(NamedTuple):
    reader: int
    lesion_id: str
    probability: float  # 0-100, probability of malignancy
    malignant_call: bool


def simulate_reader_calls(lesions: Sequence[Lesion], k: int, seed: int) -> list[ReaderCall]:
    """Simulated calls of ``k`` readers on every lesion (for the importer; pure, deterministic for ``seed``).

    Model: reader ``r`` has a skill ``s_r`` drawn uniformly in [0.4, 0.9] and a
    noise SD ``sigma_r`` uniformly in [1.0, 2.0]; their rating of a lesion is
    ``s_r * oracle_llr + N(0, sigma_r)``, their probability of malignancy
    ``100 * logistic(rating)`` (rounded to 1 decimal), and their binary call is
    malignant when that probability is >= 50. The added noise keeps every reader
    below the oracle AUC; readers differ in skill as in a real study.
    """
    return _reader_calls(lesions, _simulated_ratings(lesions, k, seed))


def _simulated_ratings(lesions: Sequence[Lesion], k: int, seed: int) -> np.ndarray:
    """The simulated readers' ratings (log-odds scale) ``[reader, lesion]``; see :func:`simulate_reader_calls`."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 9091]))
    llr = np.array([lesion.oracle_llr for lesion in lesions])
    ratings = np.empty((k, llr.size))
    for reader in range(k):
        skill, sigma = rng.uniform(0.4, 0.9), rng.uniform(1.0, 2.0)
        ratings[reader] = skill * llr + rng.normal(0.0, sigma, llr.size)
    return ratings


def _reader_calls(lesions: Sequence[Lesion], ratings: np.ndarray) -> list[ReaderCall]:
    """Calls from log-odds ratings: probability ``100 * logistic`` to 1 decimal, malignant when >= 50."""
    calls = []
    for reader, rating in enumerate(ratings):
        probability = np.round(100.0 / (1.0 + np.exp(-rating)), 1)
        calls += [
            ReaderCall(reader, lesion.lesion_id, float(p), bool(p >= 50.0))
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

    unaided: list[ReaderCall]
    aided: list[ReaderCall]
    weights: tuple[float, ...]


def simulate_aided_reader_calls(
    lesions: Sequence[Lesion],
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
        weights = rng.uniform(*AIDED_WEIGHT_RANGE, k)
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (k,) or not np.all((weights >= 0) & (weights <= 1)):
        raise ValueError(f"weights must be {k} numbers between 0 and 1, one per reader")
    unaided = _simulated_ratings(lesions, k, seed)
    clipped = np.clip(scores, _MODEL_SCORE_CLIP, 1 - _MODEL_SCORE_CLIP)
    model_rating = np.log(clipped / (1 - clipped))
    aided = (1 - weights[:, None]) * unaided + weights[:, None] * model_rating[None, :]
    return AidedReading(
        _reader_calls(lesions, unaided),
        _reader_calls(lesions, aided),
        tuple(float(w) for w in weights),
    )


# ----------------------------------------------------------------------------- anatomy and pixels


class Tissue(IntEnum):
    """Labels of the anatomy map; each is a ``tissue.<name>`` row of :data:`FIGURES` (AIR is -1000 HU)."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    LIVER = 3
    SPLEEN = 4
    BOWEL = 5
    GAS = 6
    BONE_CORTICAL = 7
    BONE_CANCELLOUS = 8
    DISC = 9
    CSF = 10
    AORTA = 11
    IVC = 12
    CORTEX = 13
    MEDULLA = 14
    URINE = 15
    TABLE = 16


@dataclass(frozen=True)
class _Grid:
    """The padded base grid: the unshifted patient, larger than the image by the largest shift."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    pad: int
    pad_z: int


def _base_grid(spec: CohortSpec) -> _Grid:
    pad = int(math.ceil(5.0 / spec.pixel_mm)) + 1
    pad_z = int(math.ceil(5.0 / spec.slice_mm)) + 1
    xy = spec.first_pixel_mm + (np.arange(spec.size + 2 * pad) - pad) * spec.pixel_mm
    z = spec.z_top_mm - (np.arange(spec.slices + 2 * pad_z) - pad_z) * spec.slice_mm
    return _Grid(xy, xy.copy(), z, pad, pad_z)


def _ellipse(X, Y, cx, cy, ax, ay, angle=0.0):
    c, s = math.cos(angle), math.sin(angle)
    u = ((X - cx) * c + (Y - cy) * s) / ax
    v = (-(X - cx) * s + (Y - cy) * c) / ay
    return u * u + v * v <= 1.0


def _box(grid: _Grid, centre, half_extent) -> tuple[slice, slice, slice]:
    """Index box (z, y, x) of the base grid covering centre +- half_extent (mm)."""

    def axis(coords, c, h):
        inside = np.nonzero(np.abs(coords - c) <= h)[0]
        return slice(inside[0], inside[-1] + 1) if inside.size else slice(0, 0)

    return (
        axis(grid.z, centre[2], half_extent[2]),
        axis(grid.y, centre[1], half_extent[1]),
        axis(grid.x, centre[0], half_extent[0]),
    )


def _paint(labels, box, mask, tissue: Tissue, allowed: Sequence[Tissue] | None = None) -> None:
    region = labels[box]
    if allowed is not None:
        permitted = np.zeros(len(Tissue), dtype=bool)
        permitted[list(allowed)] = True
        mask = mask & permitted[region]
    region[mask] = tissue


_SOFT = (Tissue.FAT, Tissue.BOWEL, Tissue.GAS)


def anatomy_labels(case: PatientCase, spec: CohortSpec) -> np.ndarray:
    """The :class:`Tissue` label volume (z, y, x) of the unshifted patient on the padded base grid."""
    grid = _base_grid(spec)
    a = case.anatomy
    X, Y = np.meshgrid(grid.x, grid.y)
    cy = 8.0
    cax, cay, m, f = a["cavity_ax"], a["cavity_ay"], a["muscle_mm"], a["subcutaneous_fat_mm"]
    plane = np.full(X.shape, Tissue.AIR, dtype=np.uint8)
    back = cy + cay + m + f
    table_top = back + 6 - 0.0012 * X * X  # the cradle rises at the sides
    plane[(Y >= table_top) & (Y <= table_top + 6) & (np.abs(X) < 0.42 * spec.fov_mm)] = Tissue.TABLE
    plane[_ellipse(X, Y, 0, cy, cax + m + f, cay + m + f)] = Tissue.FAT
    plane[_ellipse(X, Y, 0, cy, cax + m, cay + m)] = Tissue.MUSCLE
    cavity = _ellipse(X, Y, 0, cy, cax, cay)
    plane[cavity] = Tissue.FAT
    for sign in (-1, 1):
        plane[_ellipse(X, Y, sign * 30, 88, 22, 18)] = Tissue.MUSCLE  # erector spinae
        plane[_ellipse(X, Y, sign * 32, 50, 12, 16)] = Tissue.MUSCLE  # psoas
    plane[_ellipse(X, Y, 0, 75, 15, 14) & (Y > 68)] = Tissue.BONE_CORTICAL  # lamina
    plane[_ellipse(X, Y, 0, 96, 5, 13)] = Tissue.BONE_CORTICAL  # spinous process
    plane[_ellipse(X, Y, 0, 75, 8, 8)] = Tissue.CSF
    plane[_ellipse(X, Y, 0, 48, 20, 18)] = Tissue.BONE_CORTICAL
    plane[_ellipse(X, Y, 0, 48, 17.5, 15.5)] = Tissue.BONE_CANCELLOUS
    plane[_ellipse(X, Y, 14, 18, 11, 11)] = Tissue.AORTA
    plane[_ellipse(X, Y, -22, 20, 13, 9)] = Tissue.IVC
    for x0, y0, r in ((-92, 5, 17), (95, -5, 15)):  # ascending and descending colon
        plane[_ellipse(X, Y, x0, y0, r, r)] = Tissue.BOWEL
        plane[_ellipse(X, Y, x0, y0, r - 3, r - 3)] = Tissue.GAS
    labels = np.repeat(plane[None], grid.z.size, axis=0)

    disc = ((grid.z - a["disc_phase_mm"]) % 35.0) < 7.0
    body = _ellipse(X, Y, 0, 48, 20, 18)
    labels[np.ix_(disc, *(np.arange(n) for n in X.shape))] = np.where(body, Tissue.DISC, plane)

    bowel = np.random.default_rng(int(a["bowel_seed"]))
    for _ in range(int(0.35 * (grid.z.max() - grid.z.min())) + 6):
        centre = (
            bowel.uniform(-60, 95),
            bowel.uniform(-85, 5),
            bowel.uniform(grid.z.min(), grid.z.max()),
        )
        r = bowel.uniform(9, 16)
        box = _box(grid, centre, (r, r, r))
        Xb, Yb, Zb = (
            grid.x[box[2]][None, None, :],
            grid.y[box[1]][None, :, None],
            grid.z[box[0]][:, None, None],
        )
        d2 = ((Xb - centre[0]) ** 2 + (Yb - centre[1]) ** 2 + (Zb - centre[2]) ** 2) / (r * r)
        _paint(labels, box, d2 <= 1, Tissue.BOWEL, (Tissue.FAT,))
        if bowel.random() < 0.4:
            _paint(labels, box, (d2 <= 0.35) & (Yb < centre[1]), Tissue.GAS, (Tissue.BOWEL,))

    for tissue, (x0, y0, ax, ay, angle), bottom, taper in (
        (Tissue.LIVER, (-78, -5, 62, 72, 0.3), a["liver_bottom_mm"], 90.0),
        (Tissue.SPLEEN, (88, 45, 22, 45, -0.5), a["spleen_bottom_mm"], 40.0),
    ):
        # The cross-section shrinks towards the organ's lower tip: inside where q <= scale(z)^2.
        c, s = math.cos(angle), math.sin(angle)
        q = (((X - x0) * c + (Y - y0) * s) / ax) ** 2 + ((-(X - x0) * s + (Y - y0) * c) / ay) ** 2
        q = np.where(cavity, q, np.inf).astype(np.float32)
        scale2 = np.clip((grid.z - bottom) / taper, 0.0, 1.0).astype(np.float32)
        present = np.nonzero(scale2 > 0)[0]
        if present.size:
            zs = slice(present[0], present[-1] + 1)
            _paint(
                labels,
                (zs, slice(None), slice(None)),
                q[None] <= scale2[zs, None, None],
                tissue,
                _SOFT,
            )

    for kidney in case.kidneys:
        _paint_kidney(labels, grid, kidney)
    return labels


def _paint_kidney(labels: np.ndarray, grid: _Grid, kidney: Kidney) -> None:
    au, av, aw = kidney.semi_axes_mm
    reach = 1.3 * max(au, av)
    box = _box(grid, kidney.centre_mm, (reach, reach, 1.3 * aw))
    dx = grid.x[box[2]][None, None, :] - kidney.centre_mm[0]
    dy = grid.y[box[1]][None, :, None] - kidney.centre_mm[1]
    c, s = math.cos(kidney.hilum_angle_rad), math.sin(kidney.hilum_angle_rad)
    u = (dx * c + dy * s) / au  # towards the hilum
    v = (-dx * s + dy * c) / av
    w = (grid.z[box[0]][:, None, None] - kidney.centre_mm[2]) / aw
    rho = np.sqrt(u * u + v * v + w * w)
    everything_but_bone_and_vessels = tuple(
        t
        for t in Tissue
        if t
        not in (
            Tissue.BONE_CORTICAL,
            Tissue.BONE_CANCELLOUS,
            Tissue.DISC,
            Tissue.CSF,
            Tissue.AORTA,
            Tissue.IVC,
        )
    )
    _paint(
        labels, box, rho <= 1.25, Tissue.FAT, _SOFT + (Tissue.LIVER, Tissue.SPLEEN)
    )  # perirenal fat
    _paint(labels, box, rho <= 1.0, Tissue.CORTEX, everything_but_bone_and_vessels)
    phi = np.arctan2(v, -u)
    pyramids = (rho > 0.42) & (rho < 0.8) & (np.cos(5 * phi + 4.0 * w) > -0.3)
    _paint(labels, box, pyramids, Tissue.MEDULLA, (Tissue.CORTEX,))
    sinus = ((u - 0.55) / 0.55) ** 2 + (v / 0.36) ** 2 + (w / 0.6) ** 2 <= 1.0
    _paint(labels, box, sinus, Tissue.FAT, (Tissue.CORTEX, Tissue.MEDULLA))
    pelvis = ((u - 0.45) / 0.32) ** 2 + (v / 0.13) ** 2 + (w / 0.3) ** 2 <= 1.0
    _paint(labels, box, pelvis, Tissue.URINE, (Tissue.FAT, Tissue.CORTEX, Tissue.MEDULLA))


class _LesionGeometry(NamedTuple):
    box: tuple[slice, slice, slice]
    inside: np.ndarray
    texture: np.ndarray  # unit-SD smooth field, heterogeneous enhancement
    necrosis: np.ndarray
    scar: np.ndarray
    core: np.ndarray  # the segment that inverts
    roi: np.ndarray  # ROI disc on the centre slice
    necrosis_hu: float


def _smooth_field(
    rng, a, b, c, waves: int = 6, cycles: tuple[float, float] = (0.75, 1.5)
) -> np.ndarray:
    """Sum of plane waves of ``cycles`` periods per lesion radius, in lesion-normalised coordinates."""
    field_ = np.zeros(np.broadcast_shapes(a.shape, b.shape, c.shape), dtype=np.float32)
    for _ in range(waves):
        direction = rng.normal(size=3)
        direction *= rng.uniform(*cycles) * 2 * np.pi / np.linalg.norm(direction)
        field_ += np.cos(
            direction[0] * a + direction[1] * b + direction[2] * c + rng.uniform(0, 2 * np.pi)
        )
    return field_


def _lesion_geometry(lesion: Lesion, grid: _Grid) -> _LesionGeometry:
    r1, r2, r3 = lesion.semi_axes_mm
    cx, cy, cz = lesion.centre_mm
    reach = max(r1, r2) + 2 * abs(grid.x[1] - grid.x[0])
    box = _box(grid, lesion.centre_mm, (reach, reach, r3 + abs(grid.z[1] - grid.z[0])))
    dx = grid.x[box[2]][None, None, :] - cx
    dy = grid.y[box[1]][None, :, None] - cy
    dz = grid.z[box[0]][:, None, None] - cz
    c, s = math.cos(lesion.rotation_rad), math.sin(lesion.rotation_rad)
    a, b, cc = (dx * c + dy * s) / r1, (-dx * s + dy * c) / r2, dz / r3
    rho = np.sqrt(a * a + b * b + cc * cc)
    inside = rho <= 1.0
    rng = np.random.default_rng(lesion.texture_seed)
    texture = _smooth_field(rng, a, b, cc)
    texture = (texture - texture[inside].mean()) / max(float(texture[inside].std()), 1e-6)
    blobs = _smooth_field(rng, a, b, cc, waves=6, cycles=(1.5, 2.5))
    candidates = inside & (rho > 0.1) & (rho < 0.85)
    necrosis = np.zeros_like(inside)
    if lesion.pattern == "necrosis" and candidates.any():
        threshold = np.quantile(blobs[candidates], 1.0 - rng.uniform(0.12, 0.25))
        necrosis = candidates & (blobs > threshold)
    scar = np.zeros_like(inside)
    if lesion.pattern == "scar":
        angle = np.arctan2(b, a)
        scar = inside & (
            (rho < 0.12)
            | ((rho < 0.5) & (np.cos(5 * angle + rng.uniform(0, 2 * np.pi)) > 0.55 + 0.8 * rho))
        )
    centre_row = np.nonzero(np.abs(grid.z[box[0]] - cz) < 0.25 * abs(grid.z[1] - grid.z[0]))[0]
    roi = np.zeros_like(inside)
    if centre_row.size:
        roi[centre_row[0]] = (dx[0] ** 2 + dy[0] ** 2 <= lesion.roi_radius_mm**2) & inside[
            centre_row[0]
        ]
    return _LesionGeometry(
        box,
        inside,
        texture,
        necrosis,
        scar,
        inside & (rho < 0.55),
        roi,
        float(rng.uniform(*figure("lesion.necrosis_hu"))),
    )


def _lesion_hu(lesion: Lesion, geometry: _LesionGeometry, phase: str) -> np.ndarray:
    """Attenuation of the lesion box in ``phase``; the ROI mean equals ``lesion.mean_hu[phase]``."""
    # Only this phase's attenuation enters, so one phase's image carries no other phase's latent.
    mean = lesion.mean_hu[phase]
    reference = figure("lesion.enhancement_reference_hu")[0]
    enhancement = max(mean - reference, 0.0)
    amplitude = (0.25 * enhancement + 8.0) if lesion.heterogeneous[phase] else 0.04 * enhancement
    hu = mean + amplitude * geometry.texture
    if lesion.inversion and phase in ("CM", "EX"):
        hu = hu + np.where(geometry.core, (-0.35 if phase == "CM" else 0.4) * enhancement, 0.0)
    fixed = np.zeros_like(geometry.inside)
    if phase != "NC":  # unenhanced masses are drawn homogeneous
        hu = np.where(geometry.necrosis, geometry.necrosis_hu, hu)
        fixed = fixed | geometry.necrosis
        if phase in ("CM", "NG"):  # in EX the scar has filled in
            weight = 0.2 if phase == "CM" else 0.5
            hu = np.where(geometry.scar, reference + weight * enhancement, hu)
            fixed = fixed | geometry.scar
    solid_roi = geometry.roi & ~fixed
    if geometry.roi.any():
        target = geometry.roi.sum() * mean - hu[geometry.roi].sum()
        movable = solid_roi if solid_roi.any() else geometry.roi
        hu = np.where(fixed if solid_roi.any() else False, hu, hu + target / movable.sum())
    return hu.astype(np.float32)


def _gaussian_weights(sigma: float, truncate: float) -> np.ndarray:
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


_TRUNCATE = 2.5


@dataclass(frozen=True)
class RenderedStudy:
    """Four HU volumes (z, y, x; int16) of one case, keyed by phase, on the image grid of ``spec``."""

    case: PatientCase
    spec: CohortSpec
    hu: dict[str, np.ndarray]

    def lesion_slice(self, lesion: Lesion, phase: str) -> int:
        """Index (0-based) of the slice through the lesion centre in ``phase``."""
        return lesion.centre_slice + self.case.shift_voxels[phase][0]


def render_volumes(case: PatientCase, spec: CohortSpec) -> RenderedStudy:
    """The four phases of ``case`` in HU: anatomy + lesions, shifted per phase, partial-volume blur and noise."""
    grid = _base_grid(spec)
    labels = anatomy_labels(case, spec)
    geometries = [(lesion, _lesion_geometry(lesion, grid)) for lesion in case.lesions]
    sigma = figure("blur_sigma_px")[0]
    gain = float(
        (_gaussian_weights(sigma, _TRUNCATE) ** 2).sum()
    )  # noise SD factor of the 2-D blur
    noise_rng = _rng(spec, case.index, _PIXELS)
    hu = {}
    for phase in PHASES:
        lut = np.array(
            [-1000.0] + [case.tissue_hu[phase][t.name.lower()] for t in list(Tissue)[1:]],
            np.float32,
        )
        volume = lut[labels]
        for lesion, geometry in geometries:
            region = volume[geometry.box]
            region[geometry.inside] = _lesion_hu(lesion, geometry, phase)[geometry.inside]
        dz, dy, dx = case.shift_voxels[phase]
        z0, y0, x0 = grid.pad_z - dz, grid.pad - dy, grid.pad - dx
        image = volume[z0 : z0 + spec.slices, y0 : y0 + spec.size, x0 : x0 + spec.size]
        image = image + _noise(noise_rng, image.shape, case.noise_sd / gain)
        blurred = ndimage.gaussian_filter1d(image, sigma, axis=1, truncate=_TRUNCATE)
        ndimage.gaussian_filter1d(blurred, sigma, axis=2, truncate=_TRUNCATE, output=image)
        np.rint(image, out=image)
        np.clip(image, -1024, 3071, out=image)
        hu[phase] = image.astype(np.int16)
    return RenderedStudy(case, spec, hu)


def _noise(rng: np.random.Generator, shape: tuple[int, int, int], sd: float) -> np.ndarray:
    # Drawing 16 M normals per phase dominates the render time; instead every slice
    # takes one of a few noise planes, rolled by a random offset. Slices stay independent.
    bank = rng.standard_normal((min(8, shape[0]),) + shape[1:], dtype=np.float32) * np.float32(sd)
    picks = rng.integers(len(bank), size=shape[0])
    offsets = rng.integers(0, shape[1], size=(shape[0], 2))
    out = np.empty(shape, np.float32)
    for k in range(shape[0]):
        out[k] = np.roll(bank[picks[k]], tuple(offsets[k]), axis=(0, 1))
    return out


# ----------------------------------------------------------------------------- DICOM


def _uid(spec: CohortSpec, *parts) -> str:
    # Deterministic for the spec: same seed and geometry give the same UIDs (and bytes);
    # another geometry or mix gives other UIDs, so two cohorts never clash in the archive.
    key = (
        spec.seed,
        spec.size,
        spec.slices,
        spec.slice_mm,
        spec.fov_mm,
        spec.transfer_syntax,
        tuple(sorted(spec.subtype_mix.items())),
        spec.lesions_per_patient,
    )
    name = "|".join(["cohort.generator", repr(key)] + [str(p) for p in parts])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"  # UUID-derived UID (PS3.5 B.2)


def _hhmmss(seconds: float) -> str:
    seconds = int(round(seconds)) % 86400
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def series_description(phase: str, delay_s: float) -> str:
    """``NC``, ``CM 35s``, ``NG 95s``, ``EX 5min``: the phase and its delay after injection."""
    if phase == "NC":
        return "NC"
    if phase == "EX":
        return f"EX {round(delay_s / 60)}min"
    return f"{phase} {round(delay_s)}s"


class StudyUIDs(NamedTuple):
    StudyInstanceUID: str
    FrameOfReferenceUID: str
    SeriesInstanceUID: dict[str, str]


def study_uids(case: PatientCase, spec: CohortSpec) -> StudyUIDs:
    """The study, frame of reference and per-phase series UIDs of a case (deterministic)."""
    return StudyUIDs(
        _uid(spec, case.index, "study"),
        _uid(spec, case.index, "frame"),
        {phase: _uid(spec, case.index, "series", phase) for phase in PHASES},
    )


_DEID_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def series_template(
    case: PatientCase, spec: CohortSpec, phase: str, uids: StudyUIDs | None = None
) -> Dataset:
    """The attributes shared by every slice of one series (see :func:`slice_dataset`)."""
    uids = uids or study_uids(case, spec)
    acquisition = case.injection_time_s + case.delay_s[phase]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = case.study_date
    ds.StudyTime = _hhmmss(case.injection_time_s + case.delay_s["NC"] - 60)
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = _hhmmss(acquisition)
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "cohort.generator (synthetic)"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT abdomen renal mass protocol (synthetic)"
    ds.SeriesDescription = series_description(phase, case.delay_s[phase])
    ds.PatientName = case.patient_id
    ds.PatientID = case.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = case.sex
    ds.PatientAge = f"{case.age:03d}Y"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "cohort.generator synthetic data; PS3.15 Basic Profile"
    ds.DeidentificationMethodCodeSequence = DicomSequence([_code(v, m) for v, m in _DEID_CODES])
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.BurnedInAnnotation = "NO"
    ds.BodyPartExamined = "ABDOMEN"
    ds.SliceThickness = spec.slice_mm
    ds.KVP = 120
    ds.DataCollectionDiameter = 500
    ds.ReconstructionDiameter = spec.fov_mm
    ds.GantryDetectorTilt = 0
    ds.XRayTubeCurrent = 250
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "FFS"
    ds.StudyInstanceUID = uids.StudyInstanceUID
    ds.SeriesInstanceUID = uids.SeriesInstanceUID[phase]
    ds.StudyID = "1"
    ds.SeriesNumber = PHASES.index(phase) + 1
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = uids.FrameOfReferenceUID
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = spec.size
    ds.PixelSpacing = [spec.pixel_mm, spec.pixel_mm]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    center, width = figure("window")
    ds.WindowCenter = center
    ds.WindowWidth = width
    ds.WindowCenterWidthExplanation = "ABDOMEN"
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    if phase != "NC":
        ds.ContrastBolusAgent = "Iohexol 350 mg I/ml"
        ds.ContrastBolusRoute = "IV"
        ds.ContrastBolusVolume = 100
        ds.ContrastBolusStartTime = _hhmmss(case.injection_time_s)
        ds.ContrastBolusIngredient = "IODINE"
        ds.ContrastBolusIngredientConcentration = 350
    return ds


def slice_dataset(
    case: PatientCase,
    spec: CohortSpec,
    phase: str,
    index: int,
    hu_slice: np.ndarray,
    template: Dataset | None = None,
) -> Dataset:
    """One CT Image Storage instance: slice ``index`` (0 = most superior) of ``phase``, pixels from HU.

    De-identified by construction: PatientName and PatientID are the pseudonym;
    the Type 2 direct identifiers (PatientBirthDate, ReferringPhysicianName,
    AccessionNumber) are present and empty (PS3.15 action Z); no institution,
    physician or operator names. The Contrast/Bolus module is present only on
    enhanced phases. ``template`` (from :func:`series_template`) saves rebuilding
    the shared attributes for every slice; it is not modified.
    """
    template = template if template is not None else series_template(case, spec, phase)
    ds = Dataset(dict(template.items()))  # shares the template's elements; the ones below are new
    sop_uid = _uid(spec, case.index, "sop", phase, index)
    z = float(spec.slice_z(index))
    for keyword, value in (
        ("SOPInstanceUID", sop_uid),
        ("InstanceNumber", index + 1),
        ("ImagePositionPatient", [spec.first_pixel_mm, spec.first_pixel_mm, z]),
        ("SliceLocation", z),
    ):
        tag = tag_for_keyword(keyword)
        ds[tag] = DataElement(tag, dictionary_VR(tag), value)
    stored = (hu_slice.astype(np.int32) + 1024).clip(0, 4095).astype(np.uint16)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.preamble = b"\x00" * 128
    syntax = TRANSFER_SYNTAXES[spec.transfer_syntax]
    if syntax.is_compressed:
        ds.compress(syntax, stored, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = stored.tobytes()
    return ds


def render_study(
    case: PatientCase, spec: CohortSpec, rendered: RenderedStudy | None = None
) -> dict[str, list[Dataset]]:
    """The four series of ``case`` as CT Image Storage datasets, keyed by phase, slices top to bottom."""
    rendered = rendered or render_volumes(case, spec)
    uids = study_uids(case, spec)
    study = {}
    for phase in PHASES:
        template = series_template(case, spec, phase, uids)
        study[phase] = [
            slice_dataset(case, spec, phase, k, rendered.hu[phase][k], template)
            for k in range(spec.slices)
        ]
    return study


# ----------------------------------------------------------------------------- ground truth and files


class RoiTruth(NamedTuple):
    """The lesion's ROI in one phase: a disc of ``radius_mm`` around (x, y) on the slice at z."""

    phase: str
    SeriesInstanceUID: str
    x_mm: float
    y_mm: float
    z_mm: float
    SOPInstanceUID: str
    InstanceNumber: int
    radius_mm: float
    mean_hu: float


class LesionTruth(NamedTuple):
    """Ground truth of one lesion (one row of ``cohort.csv``)."""

    case: PatientCase
    lesion: Lesion
    StudyInstanceUID: str
    rois: dict[str, RoiTruth]

    def csv_row(self) -> dict[str, object]:
        lesion, case = self.lesion, self.case
        row: dict[str, object] = {
            "patient_id": case.patient_id,
            "age": case.age,
            "sex": case.sex,
            "study_instance_uid": self.StudyInstanceUID,
            "lesion_id": lesion.lesion_id,
            "side": lesion.side,
            "size_mm": round(lesion.size_mm, 1),
            "subtype": lesion.subtype,
            "malignant": int(lesion.malignant),
            "oracle_llr": round(lesion.oracle_llr, 4),
            "pattern": lesion.pattern,
            "inversion": int(lesion.inversion),
            "exophytic": int(lesion.exophytic),
        }
        for phase, roi in self.rois.items():
            row.update(
                {
                    f"{phase}_series_instance_uid": roi.SeriesInstanceUID,
                    f"{phase}_x_mm": round(roi.x_mm, 2),
                    f"{phase}_y_mm": round(roi.y_mm, 2),
                    f"{phase}_z_mm": round(roi.z_mm, 2),
                    f"{phase}_sop_instance_uid": roi.SOPInstanceUID,
                    f"{phase}_instance_number": roi.InstanceNumber,
                    f"{phase}_radius_mm": round(roi.radius_mm, 2),
                    f"{phase}_mean_hu": round(roi.mean_hu, 1),
                    f"{phase}_oracle_llr": round(lesion.oracle_llr_phase[phase], 4),
                    f"{phase}_heterogeneous": int(lesion.heterogeneous[phase]),
                }
            )
        return row


def lesion_truths(case: PatientCase, spec: CohortSpec) -> list[LesionTruth]:
    """Ground truth of every lesion of ``case``, from latents only (no rendering needed)."""
    uids = study_uids(case, spec)
    truths = []
    for lesion in case.lesions:
        rois = {}
        for phase in PHASES:
            sx, sy, _ = case.shift_mm(phase, spec)
            k = lesion.centre_slice + case.shift_voxels[phase][0]
            rois[phase] = RoiTruth(
                phase,
                uids.SeriesInstanceUID[phase],
                lesion.centre_mm[0] + sx,
                lesion.centre_mm[1] + sy,
                float(spec.slice_z(k)),
                _uid(spec, case.index, "sop", phase, k),
                k + 1,
                lesion.roi_radius_mm,
                lesion.mean_hu[phase],
            )
        truths.append(LesionTruth(case, lesion, uids.StudyInstanceUID, rois))
    return truths


def circle_points(x_mm, y_mm, z_mm, radius_mm):
    """The 4 points of an axial circle as Cornerstone's ellipse tool stores them (top, bottom, left, right)."""
    return [
        [x_mm, y_mm - radius_mm, z_mm],
        [x_mm, y_mm + radius_mm, z_mm],
        [x_mm - radius_mm, y_mm, z_mm],
        [x_mm + radius_mm, y_mm, z_mm],
    ]


class SeriesFiles(NamedTuple):
    phase: str
    SeriesInstanceUID: str
    paths: list[Path]


class StudyFiles(NamedTuple):
    patient_id: str
    StudyInstanceUID: str
    directory: Path
    series: dict[str, SeriesFiles]


class CohortFiles(NamedTuple):
    """What :func:`write_cohort` wrote: the CSV, every study's files and every lesion's truth."""

    csv_path: Path
    studies: list[StudyFiles]
    truths: list[LesionTruth]
    oracle: OracleAUC


def write_csv(path: Path | str, truths: Sequence[LesionTruth]) -> Path:
    """``cohort.csv``: one row per lesion (see :meth:`LesionTruth.csv_row`)."""
    path = Path(path)
    rows = [t.csv_row() for t in truths]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["patient_id"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_study(rendered: RenderedStudy, out_dir: Path | str) -> StudyFiles:
    """Write ``<out>/<pseudonym>/<phase>/IM0001.dcm ...`` for one rendered study."""
    case, spec = rendered.case, rendered.spec
    uids = study_uids(case, spec)
    directory = Path(out_dir) / case.patient_id
    series = {}
    for phase in PHASES:
        folder = directory / phase
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        template = series_template(case, spec, phase, uids)
        for k in range(spec.slices):
            path = folder / f"IM{k + 1:04d}.dcm"
            slice_dataset(case, spec, phase, k, rendered.hu[phase][k], template).save_as(
                path, enforce_file_format=True
            )
            paths.append(path)
        series[phase] = SeriesFiles(phase, uids.SeriesInstanceUID[phase], paths)
    return StudyFiles(case.patient_id, uids.StudyInstanceUID, directory, series)


def write_cohort(
    spec: CohortSpec,
    out_dir: Path | str,
    progress: Callable[[Sequence[PatientCase]], object] | None = None,
    preview: Path | str | None = None,
    preview_patient: int = 0,
) -> CohortFiles:
    """Generate and write the whole cohort: one study per patient, ``cohort.csv``, optionally a preview PNG.

    ``progress`` wraps the sequence of cases (e.g. ``tqdm``); ``preview`` gets the
    first lesion of patient ``preview_patient`` (0-based). Returns the paths
    and ground truth an importer needs. Deterministic for ``spec``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = sample_cohort(spec)
    truths = [t for case in cases for t in lesion_truths(case, spec)]
    studies = []
    for case in progress(cases) if progress else cases:
        rendered = render_volumes(case, spec)
        studies.append(write_study(rendered, out_dir))
        if preview is not None and case.index == preview_patient:
            save_preview(preview, rendered)
    csv_path = write_csv(out_dir / "cohort.csv", truths)
    return CohortFiles(csv_path, studies, truths, oracle_auc([t.lesion for t in truths]))


def save_preview(path: Path | str, rendered: RenderedStudy, lesion_index: int = 0) -> Path:
    """PNG of the four phases through one lesion's centre at W400/L40: whole slices above, lesion close-ups below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    case, spec = rendered.case, rendered.spec
    lesion = case.lesions[lesion_index]
    truth = lesion_truths(case, spec)[lesion_index]
    center, width = figure("window")
    low, high = spec.first_pixel_mm - spec.pixel_mm / 2, -spec.first_pixel_mm + spec.pixel_mm / 2
    fig, axes = plt.subplots(
        2, 4, figsize=(16, 8.6), facecolor="black", gridspec_kw={"height_ratios": [1, 0.9]}
    )
    for column, phase in enumerate(PHASES):
        roi = truth.rois[phase]
        image = rendered.hu[phase][roi.InstanceNumber - 1]
        for row, half in ((0, None), (1, 35.0)):
            ax = axes[row, column]
            ax.imshow(
                image,
                cmap="gray",
                vmin=center - width / 2,
                vmax=center + width / 2,
                extent=(low, high, high, low),
                interpolation="bilinear" if half is None else "nearest",
            )
            if half is None:
                ax.add_patch(
                    Circle(
                        (roi.x_mm, roi.y_mm),
                        lesion.size_mm / 2 + 6,
                        fill=False,
                        color="yellow",
                        lw=1,
                    )
                )
                ax.set_title(
                    series_description(phase, case.delay_s[phase]), color="white", fontsize=13
                )
            else:
                ax.set_xlim(roi.x_mm - half, roi.x_mm + half)
                ax.set_ylim(roi.y_mm + half, roi.y_mm - half)
                ax.add_patch(
                    Circle((roi.x_mm, roi.y_mm), roi.radius_mm, fill=False, color="red", lw=1)
                )
                ax.set_title(f"ROI mean {roi.mean_hu:.0f} HU", color="white", fontsize=11)
            ax.axis("off")
    fig.suptitle(
        f"{lesion.lesion_id}: {lesion.subtype}, {lesion.size_mm:.0f} mm, "
        f"{'malignant' if lesion.malignant else 'benign'} - synthetic, W400/L40",
        color="white",
        fontsize=14,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, facecolor="black")
    plt.close(fig)
    return path
