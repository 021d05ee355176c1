"""The latents of a synthetic cohort: every patient's and lesion's hidden truth, no pixels.

:func:`sample_cohort` draws, per patient, the sex, age and lesions (subtype, size,
position, per-phase mean attenuation, morphology), the anatomy and the acquisition
(tissue attenuation, contrast timing, inter-phase shift, noise level), each from its own
random stream of the seed, and attaches to every lesion its oracle log-likelihood ratio
(:mod:`cohort.oracle`). A lesion's per-phase "mean HU" is the mean attenuation inside its
ROI on the centre slice (the ROI of ``cohort.csv``: a disc of 0.6 x the smaller in-plane
semi-axis); :mod:`cohort.anatomy` renders the texture so that this holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from archive.vocabulary import PHASES, is_malignant
from cohort.figures import FIGURES, PATTERNS, SUBTYPES, figure, subtype_constants
from cohort.oracle import lesion_llrs
from cohort.spec import CohortSpec


@dataclass(frozen=True)
class Kidney:
    side: str  # "R" or "L"
    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]  # towards the hilum, across, craniocaudal
    hilum_angle_rad: float  # direction of the hilum in the axial plane


@dataclass(frozen=True)
class LesionLatents:
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
    lesions: tuple[LesionLatents, ...]
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


# The random streams of one patient, in the order of their stream numbers.
CLINICAL_STREAM, ANATOMY_STREAM, ACQUISITION_STREAM, PIXELS_STREAM = range(4)


def patient_rng(spec: CohortSpec, patient: int, stream: int) -> np.random.Generator:
    """The generator of one of ``patient``'s random streams (``*_STREAM``) for ``spec.seed``.

    Separate streams: changing the image geometry leaves the clinical latents unchanged,
    and the pixels' noise (:mod:`cohort.anatomy`) draws from its own stream.
    """
    return np.random.default_rng(np.random.SeedSequence([spec.seed, patient, stream]))


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
    clinical = patient_rng(spec, index, CLINICAL_STREAM)
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

    anatomy_rng = patient_rng(spec, index, ANATOMY_STREAM)
    anatomy, kidneys = _sample_anatomy(anatomy_rng)
    patient_id = f"SRM-{index + 1:04d}"
    lesions: list[LesionLatents] = []
    for number, latents in enumerate(drawn, start=1):
        placed = _place_lesion(anatomy_rng, spec, kidneys, latents, lesions)
        lesions.append(LesionLatents(lesion_id=f"{patient_id}-L{number}", **latents, **placed))
    lesions = [_with_oracle(lesion, "F" if female else "M", spec.subtype_mix) for lesion in lesions]

    acquisition = patient_rng(spec, index, ACQUISITION_STREAM)
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
    malignant = is_malignant(subtype)
    low, high = figure("lesion.size_mm")
    a, b = figure(f"lesion.size_beta.{'malignant' if malignant else 'benign'}")
    size = low + (high - low) * rng.beta(a, b)
    constants = subtype_constants(subtype)
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


def _place_lesion(
    rng, spec: CohortSpec, kidneys, latents: dict, placed: list[LesionLatents]
) -> dict:
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


def _with_oracle(lesion: LesionLatents, sex: str, mix: Mapping[str, float]) -> LesionLatents:
    llrs = lesion_llrs(lesion, sex, mix)
    per_phase = {phase: llrs[phase] for phase in PHASES}
    return LesionLatents(
        **{**lesion.__dict__, "oracle_llr": llrs[None], "oracle_llr_phase": per_phase}
    )
