"""Multivariable logistic regression, e.g. malignancy ~ model score + age + sex + size.

Maximum likelihood through statsmodels (Newton-Raphson); Wald standard
errors, z tests and 95 % intervals, as Stata's ``glm ..., family(binomial)``
and R's ``glm(..., family = binomial)`` report them.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats


class Separation:
    """Values of ``LogisticRegressionResult.separation``."""

    NONE = "none"
    QUASI = "quasi"
    COMPLETE = "complete"


@dataclass(frozen=True)
class Coefficient:
    name: str
    estimate: float
    standard_error: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    odds_ratio: float
    odds_ratio_ci_low: float
    odds_ratio_ci_high: float


@dataclass(frozen=True)
class LogisticRegressionResult:
    """Fitted logistic model. The intercept is the coefficient named ``const``.

    ``separation`` is ``"none"``, ``"quasi"`` or ``"complete"``; under
    separation the maximum likelihood estimates do not exist (they run off
    to infinity) and the coefficients, standard errors and p-values must
    not be interpreted.
    """

    coefficients: list[Coefficient]
    log_likelihood: float
    n_observations: int
    converged: bool
    separation: str

    def coefficient(self, name: str) -> Coefficient:
        for coefficient in self.coefficients:
            if coefficient.name == name:
                return coefficient
        raise KeyError(name)


def detect_separation(outcome, design) -> str:
    """Whether a linear predictor separates the outcome classes.

    Linear-programming check in the spirit of Konis (2007): with
    ``s_i = 2 y_i - 1``, look for ``b`` (|b_j| <= 1) such that every
    ``s_i x_i' b >= t``. The largest such t > 0 means complete separation;
    t = 0 with some ``s_i x_i' b > 0`` means quasi-complete separation.
    ``design`` must include the intercept column.
    """
    signed = (2 * np.asarray(outcome, dtype=float) - 1)[:, None] * np.asarray(design, dtype=float)
    n, p = signed.shape
    bounds = [(-1, 1)] * p
    # Complete: maximise t subject to signed @ b >= t.
    complete = optimize.linprog(
        c=np.r_[np.zeros(p), -1.0],
        A_ub=np.hstack((-signed, np.ones((n, 1)))),
        b_ub=np.zeros(n),
        bounds=bounds + [(None, 1)],
        method="highs",
    )
    if complete.status == 0 and -complete.fun > 1e-9:
        return Separation.COMPLETE
    # Quasi: maximise the sum of margins subject to all margins >= 0.
    quasi = optimize.linprog(
        c=-signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(n),
        bounds=bounds,
        method="highs",
    )
    if quasi.status == 0 and -quasi.fun > 1e-9:
        return Separation.QUASI
    return Separation.NONE


def logistic_regression(
    outcome, covariates, confidence: float = 0.95, max_iterations: int = 100
) -> LogisticRegressionResult:
    """Fit ``logit P(outcome = 1) = const + sum_j b_j x_j`` by maximum likelihood.

    ``outcome`` is a 0/1 vector; ``covariates`` maps names to numeric
    vectors (a dict or a pandas DataFrame; encode categorical covariates
    such as sex as 0/1 first). An intercept named ``const`` is added.
    Standard errors come from the inverse observed information; intervals
    are Wald intervals, odds ratios exp(b). Non-convergence and separation
    are reported in the result, not raised.
    """
    frame = pd.DataFrame(covariates).astype(float)
    outcome = np.asarray(outcome, dtype=float)
    if len(frame) != len(outcome):
        raise ValueError(f"outcome has {len(outcome)} values but covariates have {len(frame)} rows")
    if not np.all(np.isin(outcome, (0, 1))):
        raise ValueError("outcome must contain only 0 and 1")
    design = sm.add_constant(frame, prepend=False, has_constant="add")
    separation = detect_separation(outcome, design.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.Logit(outcome, design).fit(
                method="newton", maxiter=max_iterations, tol=1e-12, disp=False
            )
        except np.linalg.LinAlgError:
            fit = None
    if fit is None:
        nan = float("nan")
        coefficients = [Coefficient(name, *([nan] * 9)) for name in design.columns]
        return LogisticRegressionResult(coefficients, nan, len(outcome), False, separation)
    z_crit = stats.norm.ppf(0.5 + confidence / 2)
    coefficients = []
    for name in design.columns:
        # Separated fits have huge coefficients whose odds ratios overflow to inf.
        estimate, se = float(fit.params[name]), float(fit.bse[name])
        low, high = estimate - z_crit * se, estimate + z_crit * se
        coefficients.append(
            Coefficient(
                name,
                estimate,
                se,
                estimate / se,
                float(2 * stats.norm.sf(abs(estimate / se))),
                low,
                high,
                *(float(v) for v in _exp_without_warning([estimate, low, high])),
            )
        )
    converged = bool(fit.mle_retvals.get("converged", False)) and np.all(np.isfinite(fit.bse))
    return LogisticRegressionResult(
        coefficients, float(fit.llf), len(outcome), bool(converged), separation
    )


def _exp_without_warning(values):
    with np.errstate(over="ignore"):
        return np.exp(values)
