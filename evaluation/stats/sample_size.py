"""Power and sample size of a two-treatment Obuchowski-Rockette MRMC study.

A pilot study gives the OR variance components (``mrmc.or_mrmc``); these
predict the power of a pivotal study with J readers and K cases to detect an
effect size d (difference of the treatments' mean AUCs), by Hillis,
Obuchowski & Berbaum (2011), "Power estimation for multireader ROC methods:
an updated and unified approach", Acad. Radiol. 18:129-142, for the three
OR analyses of ``mrmc.or_mrmc``. The same method is the OR method of Hillis &
Schartz (2018), "Multireader sample size program for diagnostic studies:
demonstration and methodology", J. Med. Imaging 5(4):045503, and of
RJafroc's ``SsPowerGivenJK`` / ``SsSampleSizeKGivenJ`` (method "OR").

With pilot components Var, Cov1, Cov2, Cov3 from K* pilot cases (the error
covariances shrink as 1/K, so they are scaled by K*/K), Δ = max(Cov2 - Cov3,
0) and the treatment-by-reader variance (Hillis et al. 2011, eq. 9)

    σ²_TR = MS(T*R) - Var + Cov1 + Δ            (set to 0 when negative),

the pivotal test statistic follows a non-central F (Hillis et al. 2011,
eq. 10 and Table 2):

* random readers, random cases (RRRC)::

      D   = σ²_TR + (K*/K) (Var - Cov1 + (J - 1) Δ)
      λ   = J d² / (2 D)
      ddf = D² / ((σ²_TR + (K*/K) (Var - Cov1 - Δ))² / (J - 1))      (Hillis ddf)
      power = P(F(1, ddf; λ) > F_{1-α}(1, ddf))

* fixed readers, random cases (FRRC): σ²_TR drops out,
  ``D = (K*/K)(Var - Cov1 + (J - 1) Δ)`` and ``power = P(χ²(1; λ) >
  χ²_{1-α}(1))`` (the OR chi-square test of ``mrmc.or_mrmc``);
* random readers, fixed cases (RRFC): ``D = σ²_TR + (K*/K)(Var - Cov1 -
  Δ)``, ``power = P(F(1, J - 1; λ) > F_{1-α}(1, J - 1))``.

Conventions: two treatments (the effect is a difference of two means); the
sign of d does not matter (two-sided test); with a patient-level jackknife
K* and K count patients, not lesions. "Smallest K (J) reaching the power" is
the first K (J) on a scan from 2 upwards whose power is ≥ the target; RRRC
and RRFC power stays below a limit as K grows when σ²_TR > 0
(``power_limit``), so some targets cannot be reached with J readers at all.
"""

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

from evaluation.stats import mrmc

DEFAULT_MAX_CASES = 2000
DEFAULT_MAX_READERS = 100


class Analysis(StrEnum):
    RRRC = "rrrc"
    FRRC = "frrc"
    RRFC = "rrfc"


ANALYSIS_NAMES = {
    Analysis.RRRC: "random readers, random cases",
    Analysis.FRRC: "fixed readers, random cases",
    Analysis.RRFC: "random readers, fixed cases",
}


@dataclass(frozen=True)
class PilotComponents:
    """OR variance components of a two-treatment pilot study.

    ``n_cases`` is K* (patients when the jackknife left out patients);
    ``var_treatment_reader`` is the σ²_TR estimate as computed, which can be
    negative (power uses max(σ²_TR, 0)); ``observed_effect`` is the pilot's
    first-minus-second treatment difference, for information.
    """

    n_readers: int
    n_cases: int
    var: float
    cov1: float
    cov2: float
    cov3: float
    var_treatment_reader: float
    observed_effect: float | None = None

    def __post_init__(self):
        if self.n_cases < 2:
            raise ValueError("the pilot must have at least two cases")
        if not self.var - self.cov1 > 0:
            raise ValueError(
                "the pilot's Var - Cov1 is not positive (no case variance between treatments), "
                "so it cannot predict the power of another study"
            )

    @classmethod
    def from_or_components(
        cls,
        components: mrmc.VarianceComponents,
        n_readers: int,
        n_cases: int,
        observed_effect: float | None = None,
    ) -> "PilotComponents":
        """σ²_TR = MS(T*R) - Var + Cov1 + max(Cov2 - Cov3, 0) (Hillis et al. 2011, eq. 9)."""
        c = components
        return cls(
            n_readers=n_readers,
            n_cases=n_cases,
            var=c.var,
            cov1=c.cov1,
            cov2=c.cov2,
            cov3=c.cov3,
            var_treatment_reader=c.ms_treatment_reader - c.var + c.cov1 + max(c.cov2 - c.cov3, 0.0),
            observed_effect=observed_effect,
        )


@dataclass(frozen=True)
class Power:
    """Predicted power of one design; ``ddf`` is None for the FRRC chi-square."""

    analysis: str
    n_readers: int
    n_cases: int
    effect: float
    alpha: float
    power: float
    noncentrality: float
    ddf: float | None


@dataclass(frozen=True)
class SampleSize:
    """Smallest number of cases (given readers) or readers (given cases).

    ``n_cases``/``n_readers`` is None when no count up to the search limit
    reaches ``target_power``; ``power`` is the power there. For cases given
    readers, ``power_limit`` is the power with unlimited cases (below 1 for
    RRRC and RRFC when σ²_TR > 0).
    """

    analysis: str
    n_readers: int | None
    n_cases: int | None
    power: float | None
    target_power: float
    power_limit: float | None = None


@dataclass(frozen=True)
class PowerTable:
    """``power[i, j]`` for ``readers[i]`` readers and ``cases[j]`` cases."""

    analysis: str
    readers: list[int]
    cases: list[int]
    power: np.ndarray


@dataclass(frozen=True)
class StudyPlan:
    """Power tables and cases needed per reader count, for every analysis."""

    pilot: PilotComponents
    effect: float
    alpha: float
    target_power: float
    tables: dict[str, PowerTable]
    cases_needed: dict[str, list[SampleSize]]
    max_cases: int

    def as_dict(self) -> dict:
        return _plan_as_dict(self)


def pilot_from_ratings(
    ratings, truth, covariance: str = "jackknife", clusters=None, **options
) -> PilotComponents:
    """OR components of a pilot ``ratings[2 treatments, reader, case]`` (AUC).

    Runs ``mrmc.or_mrmc`` (``covariance``, ``clusters`` and further options
    as there); with ``clusters`` K* is the number of clusters (patients).
    """
    ratings = np.asarray(ratings, dtype=float)
    if ratings.ndim != 3 or ratings.shape[0] != 2:
        raise ValueError(
            "a pilot for sample size needs exactly two treatments (ratings [2, reader, case]); "
            f"got shape {ratings.shape}"
        )
    result = mrmc.or_mrmc(
        ratings, truth, metric="auc", covariance=covariance, clusters=clusters, **options
    )
    means = result.reader_metric.mean(axis=1)
    n_cases = ratings.shape[2] if clusters is None else len(np.unique(np.asarray(clusters)))
    return PilotComponents.from_or_components(
        result.components, ratings.shape[1], n_cases, float(means[0] - means[1])
    )


def _check(alpha, analysis):
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1 (got {alpha})")
    return Analysis(analysis)


def _noncentral_f_sf(critical, ddf, noncentrality):
    """P(F(1, ddf; λ) > critical); the central F where λ = 0 (scipy's ncf gives -0.95 there)."""
    central = stats.f.sf(critical, 1, ddf)
    safe = np.where(noncentrality > 0, noncentrality, 1.0)
    return np.where(noncentrality > 0, stats.ncf.sf(critical, 1, ddf, safe), central)


def _power_terms(pilot: PilotComponents, n_readers, n_cases, effect, alpha, analysis):
    """Power, λ and ddf, vectorised over readers and cases (broadcast)."""
    j = np.asarray(n_readers, dtype=float)
    scale = pilot.n_cases / np.asarray(n_cases, dtype=float)
    delta = max(pilot.cov2 - pilot.cov3, 0.0)
    var_tr = max(pilot.var_treatment_reader, 0.0)
    within = pilot.var - pilot.cov1
    if analysis == Analysis.FRRC:
        denominator = scale * (within + (j - 1) * delta)
        noncentrality = effect**2 * j / (2 * denominator)
        power = stats.ncx2.sf(stats.chi2.ppf(1 - alpha, 1), 1, noncentrality)
        return power, noncentrality, None
    if analysis == Analysis.RRFC:
        denominator = var_tr + scale * (within - delta)
        ddf = j - 1 + 0 * scale
    else:
        denominator = var_tr + scale * (within + (j - 1) * delta)
        interaction = var_tr + scale * (within - delta)
        with np.errstate(divide="ignore"):
            ddf = np.where(
                interaction > 0,
                denominator**2 * (j - 1) / np.where(interaction > 0, interaction, 1) ** 2,
                np.inf,
            )
    with np.errstate(divide="ignore", invalid="ignore"):
        noncentrality = np.where(
            denominator > 0, effect**2 * j / (2 * np.where(denominator > 0, denominator, 1)), np.inf
        )
        finite = np.isfinite(ddf)
        safe_ddf = np.where(finite, ddf, 1.0)
        f_power = _noncentral_f_sf(stats.f.ppf(1 - alpha, 1, safe_ddf), safe_ddf, noncentrality)
        chi_power = stats.ncx2.sf(stats.chi2.ppf(1 - alpha, 1), 1, noncentrality)
    power = np.where(finite, f_power, chi_power)
    power = np.where(np.isinf(noncentrality), 1.0, power)
    return power, noncentrality, ddf


def power_given_readers_and_cases(
    pilot: PilotComponents,
    n_readers: int,
    n_cases: int,
    effect: float,
    alpha: float = 0.05,
    analysis: str = "rrrc",
) -> Power:
    """Predicted power of a study with ``n_readers`` and ``n_cases`` (see the module docstring).

    RJafroc's ``SsPowerGivenJK(dataset, FOM = "Wilcoxon", method = "OR", J, K,
    effectSize, analysisOption)`` computes the same quantity.
    """
    analysis = _check(alpha, analysis)
    if n_readers < 2 or n_cases < 1:
        raise ValueError("a study needs at least two readers and one case")
    power, noncentrality, ddf = _power_terms(pilot, n_readers, n_cases, effect, alpha, analysis)
    return Power(
        str(analysis),
        int(n_readers),
        int(n_cases),
        float(effect),
        float(alpha),
        float(power),
        float(noncentrality),
        None if ddf is None else float(ddf),
    )


def power_limit(
    pilot: PilotComponents,
    n_readers: int,
    effect: float,
    alpha: float = 0.05,
    analysis: str = "rrrc",
) -> float:
    """Power with unlimited cases: 1 unless σ²_TR > 0 (RRRC, RRFC), then λ = J d² / (2 σ²_TR), ddf J - 1."""
    analysis = _check(alpha, analysis)
    var_tr = max(pilot.var_treatment_reader, 0.0)
    if analysis == Analysis.FRRC or var_tr == 0 or effect == 0:
        return 1.0 if effect != 0 else float(alpha)
    noncentrality = effect**2 * n_readers / (2 * var_tr)
    ddf = n_readers - 1
    return float(_noncentral_f_sf(stats.f.ppf(1 - alpha, 1, ddf), ddf, noncentrality))


def _check_target(target_power):
    if not 0 < target_power < 1:
        raise ValueError(
            f"the desired power must lie strictly between 0 and 1 (got {target_power})"
        )


def cases_for_power(
    pilot: PilotComponents,
    n_readers: int,
    effect: float,
    target_power: float = 0.8,
    alpha: float = 0.05,
    analysis: str = "rrrc",
    max_cases: int = DEFAULT_MAX_CASES,
) -> SampleSize:
    """Smallest K in 2..``max_cases`` whose power with ``n_readers`` is ≥ ``target_power``.

    RJafroc's ``SsSampleSizeKGivenJ`` scans K from 2 upwards the same way
    (its limit is 2000 cases).
    """
    analysis = _check(alpha, analysis)
    _check_target(target_power)
    cases = np.arange(2, max(max_cases, 2) + 1)
    power = _power_terms(pilot, n_readers, cases, effect, alpha, analysis)[0]
    limit = power_limit(pilot, n_readers, effect, alpha, analysis)
    reached = np.flatnonzero(power >= target_power)
    if len(reached) == 0:
        return SampleSize(str(analysis), n_readers, None, None, target_power, limit)
    first = reached[0]
    return SampleSize(
        str(analysis), n_readers, int(cases[first]), float(power[first]), target_power, limit
    )


def readers_for_power(
    pilot: PilotComponents,
    n_cases: int,
    effect: float,
    target_power: float = 0.8,
    alpha: float = 0.05,
    analysis: str = "rrrc",
    max_readers: int = DEFAULT_MAX_READERS,
) -> SampleSize:
    """Smallest J in 2..``max_readers`` whose power with ``n_cases`` is ≥ ``target_power``."""
    analysis = _check(alpha, analysis)
    _check_target(target_power)
    readers = np.arange(2, max(max_readers, 2) + 1)
    power = _power_terms(pilot, readers, n_cases, effect, alpha, analysis)[0]
    reached = np.flatnonzero(power >= target_power)
    if len(reached) == 0:
        return SampleSize(str(analysis), None, n_cases, None, target_power)
    first = reached[0]
    return SampleSize(
        str(analysis), int(readers[first]), n_cases, float(power[first]), target_power
    )


def power_table(
    pilot: PilotComponents,
    readers,
    cases,
    effect: float,
    alpha: float = 0.05,
    analysis: str = "rrrc",
) -> PowerTable:
    """Power over every combination of ``readers`` × ``cases``."""
    analysis = _check(alpha, analysis)
    readers, cases = [int(j) for j in readers], [int(k) for k in cases]
    if min(readers, default=2) < 2 or min(cases, default=1) < 1:
        raise ValueError("reader counts must be at least 2 and case counts at least 1")
    power = _power_terms(
        pilot, np.array(readers)[:, None], np.array(cases)[None, :], effect, alpha, analysis
    )[0]
    return PowerTable(
        str(analysis), readers, cases, np.broadcast_to(power, (len(readers), len(cases))).copy()
    )


def plan_study(
    pilot: PilotComponents,
    effect: float,
    target_power: float = 0.8,
    alpha: float = 0.05,
    readers=(3, 4, 5, 6, 8, 10, 12, 15),
    cases=(50, 100, 150, 200, 300, 400, 500, 1000),
    max_cases: int = DEFAULT_MAX_CASES,
) -> StudyPlan:
    """Power tables and the cases needed for each reader count, for RRRC, FRRC and RRFC."""
    if not effect > 0:
        raise ValueError(f"the effect size must be a positive AUC difference (got {effect})")
    _check_target(target_power)
    _check(alpha, Analysis.RRRC)
    tables, needed = {}, {}
    for analysis in Analysis:
        tables[str(analysis)] = power_table(pilot, readers, cases, effect, alpha, analysis)
        needed[str(analysis)] = [
            cases_for_power(pilot, j, effect, target_power, alpha, analysis, max_cases)
            for j in readers
        ]
    return StudyPlan(pilot, effect, alpha, target_power, tables, needed, max_cases)


def _plan_as_dict(plan: StudyPlan) -> dict:
    pilot = plan.pilot
    return {
        "pilot": {
            "n_readers": pilot.n_readers,
            "n_cases": pilot.n_cases,
            "var": pilot.var,
            "cov1": pilot.cov1,
            "cov2": pilot.cov2,
            "cov3": pilot.cov3,
            "var_treatment_reader": pilot.var_treatment_reader,
            "observed_effect": pilot.observed_effect,
        },
        "effect": plan.effect,
        "alpha": plan.alpha,
        "power": plan.target_power,
        "max_cases": plan.max_cases,
        "analyses": {
            analysis: {
                "readers": table.readers,
                "cases": table.cases,
                "power": [[float(p) for p in row] for row in table.power],
                "cases_needed": [
                    {
                        "readers": s.n_readers,
                        "cases": s.n_cases,
                        "power": s.power,
                        "power_limit": s.power_limit,
                    }
                    for s in plan.cases_needed[analysis]
                ],
            }
            for analysis, table in plan.tables.items()
        },
    }
