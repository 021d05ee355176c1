"""The oracle: the Bayes-optimal benign/malignant statistic of a synthetic lesion, and its AUC.

The generator knows the true distributions its latents were drawn from
(:mod:`cohort.figures`), so for every lesion it can compute the log-likelihood ratio of
malignancy given what a phase's image shows (:func:`lesion_llr`). Its AUC over a cohort
(:func:`oracle_auc`) is the ceiling no reader or model of those images can beat in
expectation; :func:`phase_latents` gives the same latents as numbers, for learners.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from archive.vocabulary import PHASES, is_malignant
from cohort.figures import SUBTYPES, figure, subtype_constants
from evaluation.stats.roc import empirical_auc

if TYPE_CHECKING:  # the latents attach this module's LLRs to their lesions
    from cohort.latents import LesionLatents


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


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _log_bernoulli(p: float, outcome: bool) -> float:
    return math.log(p if outcome else 1.0 - p)


def _log_densities(lesion: LesionLatents, sex: str, subtype: str) -> dict[str | None, float]:
    """log p(latents visible in a phase | subtype) per phase; key None: every latent (and sex)."""
    k = subtype_constants(subtype)
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
    lesion: LesionLatents, sex: str, subtype_mix: Mapping[str, float]
) -> dict[str | None, float]:
    """:func:`lesion_llr` for every phase and overall (key None) at once."""
    by_class: dict[bool, list[dict]] = {True: [], False: []}
    for subtype in SUBTYPES:
        weight = subtype_mix.get(subtype, 0.0)
        if weight > 0:
            densities = _log_densities(lesion, sex, subtype)
            by_class[is_malignant(subtype)].append(
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
    lesion: LesionLatents, sex: str, subtype_mix: Mapping[str, float], phase: str | None = None
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


PHASE_LATENT_NAMES = (
    "mean_hu",
    "size_mm",
    "exophytic",
    "necrosis",
    "scar",
    "inversion",
    "heterogeneous",
)


def phase_latents(lesion: LesionLatents, phase: str) -> list[float]:
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


def _auc_or_nan(scores: Sequence[float], malignant: Sequence[bool]) -> float:
    """:func:`empirical_auc`, or NaN where a cohort has none (one class only, so NaN oracle LLRs).

    A tiny or one-class cohort still prints its oracle line (``make_cohort``) instead of failing.
    """
    if all(malignant) or not any(malignant) or any(math.isnan(score) for score in scores):
        return math.nan
    return empirical_auc(scores, malignant)


def oracle_auc(lesions: Sequence[LesionLatents]) -> OracleAUC:
    """The oracle AUC (benign vs malignant) per phase and overall: the ceiling for readers and models."""
    truth = [lesion.malignant for lesion in lesions]
    nc, cm, ng, ex = (
        _auc_or_nan([lesion.oracle_llr_phase[p] for lesion in lesions], truth) for p in PHASES
    )
    return OracleAUC(
        nc,
        cm,
        ng,
        ex,
        _auc_or_nan([lesion.oracle_llr for lesion in lesions], truth),
        n_malignant=sum(truth),
        n_benign=len(truth) - sum(truth),
    )
