"""The radiomics classifier: a scikit-learn pipeline fitted inside patient-grouped folds, and its stored form.

:func:`build_classifier`: median imputation, then :class:`RankedDecorrelatedSelector`
(drop near-constant features; rank the rest by univariate discrimination, two-sided;
keep them greedily while their Spearman correlation with every feature already kept
stays at or below ``max_correlation``, up to ``max_features``), then standardisation, a
cubic B-spline basis per selected feature and an L2-regularised logistic regression
with balanced class weights (an additive logistic model; or histogram gradient
boosting). :func:`cross_validate_features` fits the whole pipeline inside each training
fold (the folds of :func:`inference.folds.assign_folds`), so feature selection never
sees a held-out lesion, then fits the final model on every lesion.

Why this classifier: on two tuning cohorts (seeds 10 and 11, 160 patients; never the
seeds reported in the README) the out-of-fold AUC averaged over NC, CM, NG, EX and ALL
was 0.62 for a linear logistic regression on features ranked one-sided, 0.71 with the
two-sided ranking and splines, 0.70 for gradient boosting and 0.71 for a random
forest on every feature; the spline logistic regression is as good as the tree
ensembles, fits in milliseconds and its terms can be read.

The radiomics counterpart of :mod:`inference.training`: imported by Celery tasks,
commands and benchmarks, never by the web process; no Keras.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin

from .folds import assign_folds, file_sha256, out_of_fold_metrics, safe_auc
from .radiomics import ClassifierSpec, feature_matrix


class TrainingCancelled(Exception):
    """The reporter asked to stop between folds."""


def _univariate_auc_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|AUC - 0.5| of each column as a score for ``y`` (Mann-Whitney, ties counted half)."""
    ranks = stats.rankdata(x, axis=0)
    positives = y == 1
    n1, n0 = int(positives.sum()), int((~positives).sum())
    if n1 == 0 or n0 == 0:
        return np.zeros(x.shape[1])
    auc = (ranks[positives].sum(axis=0) - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    return np.abs(auc - 0.5)


class RankedDecorrelatedSelector(TransformerMixin, BaseEstimator):
    """Feature selection fitted on the training lesions only (a scikit-learn transformer).

    1. Drop near-constant features: the most frequent value covers at least
       ``near_constant_share`` of the lesions (or the column holds one value).
    2. Rank the rest by univariate discrimination, two-sided: the larger of |AUC - 0.5|
       of the feature and of its distance from the training median (a feature whose
       both extremes mean malignancy, such as attenuation, ranks by that).
    3. Walk down the ranking and keep a feature when its absolute Spearman
       correlation with every feature kept so far is at most ``max_correlation``,
       until ``max_features`` are kept.

    ``support_`` holds the kept column indices in ranking order.
    """

    def __init__(self, max_features=10, max_correlation=0.8, near_constant_share=0.95):
        self.max_features = max_features
        self.max_correlation = max_correlation
        self.near_constant_share = near_constant_share

    def fit(self, x, y):
        x = np.asarray(x, float)
        y = np.asarray(y)
        n = len(x)
        varying = []
        for j in range(x.shape[1]):
            _, counts = np.unique(x[:, j], return_counts=True)
            if len(counts) > 1 and counts.max() < self.near_constant_share * n:
                varying.append(j)
        varying = np.asarray(varying, int)
        if len(varying) == 0:
            raise ValueError("every feature is (nearly) constant on the training lesions")
        values = x[:, varying]
        score = np.maximum(
            _univariate_auc_distance(values, y),
            _univariate_auc_distance(np.abs(values - np.median(values, axis=0)), y),
        )
        order = varying[np.argsort(-score, kind="stable")]
        ranks = stats.rankdata(x[:, order], axis=0)
        ranks = (ranks - ranks.mean(axis=0)) / ranks.std(axis=0)
        kept = []
        for position in range(len(order)):
            if (
                kept
                and np.max(np.abs(ranks[:, kept].T @ ranks[:, position]) / n) > self.max_correlation
            ):
                continue
            kept.append(position)
            if len(kept) == self.max_features:
                break
        self.support_ = order[kept]
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x):
        return np.asarray(x, float)[:, self.support_]


def build_classifier(spec: ClassifierSpec, seed: int = 0):
    """An unfitted scikit-learn Pipeline: imputation, selection, (scaling, splines,) classifier
    (see the module docstring)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    steps = [
        (
            "impute",
            SimpleImputer(strategy="median", keep_empty_features=True),
        ),  # never-defined features: 0, then dropped as constant
        (
            "select",
            RankedDecorrelatedSelector(
                spec.max_features, spec.max_correlation, spec.near_constant_share
            ),
        ),
    ]
    weight = "balanced" if spec.balanced else None
    if spec.kind == "logistic":
        steps.append(("scale", StandardScaler()))
        if spec.spline_knots:
            steps.append(("splines", SplineTransformer(n_knots=spec.spline_knots, degree=3)))
        steps.append(("classify", LogisticRegression(C=spec.C, class_weight=weight, max_iter=5000)))
    else:
        steps.append(
            (
                "classify",
                HistGradientBoostingClassifier(
                    max_iter=spec.boosting_iterations,
                    learning_rate=spec.boosting_learning_rate,
                    max_depth=spec.boosting_max_depth,
                    class_weight=weight,
                    random_state=seed,
                ),
            )
        )
    return Pipeline(steps)


def selected_features(pipeline, names: list[str]) -> list[str]:
    """Names of the features a fitted pipeline kept, in ranking order."""
    kept = pipeline.named_steps["impute"].get_feature_names_out(np.asarray(names, object))
    return [str(kept[i]) for i in pipeline.named_steps["select"].support_]


@dataclass
class FeatureCrossValidation:
    folds: np.ndarray  # fold 1..k of each lesion
    oof_scores: np.ndarray
    fold_aucs: dict
    oof_auc: float | None
    final_model: object  # the pipeline fitted on every lesion
    final_scores: np.ndarray
    selected_features: list[str]
    timings: dict = field(default_factory=dict)

    def metrics(self, labels) -> dict:
        return {
            **out_of_fold_metrics(labels, self.folds, self.oof_scores, self.fold_aucs),
            "selected_features": self.selected_features,
        }


def _log_loss(pipeline, x, y) -> float:
    p = np.clip(pipeline.predict_proba(x)[:, 1], 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def cross_validate_features(
    x, labels, patient_ids, names, spec: ClassifierSpec, n_folds: int, seed: int, reporter=None
) -> FeatureCrossValidation:
    """Patient-grouped k-fold out-of-fold scores (the whole pipeline fitted per fold), then the final model.

    ``reporter`` (optional) gets ``stage_started(fold, n_train, n_held_out)``,
    ``epoch_ended(fold, 1, training log loss, held-out AUC)`` once per fold and for the
    final model (fold ``None``) and ``log(text)``; ``epoch_ended`` returning False raises
    :class:`TrainingCancelled`.
    """
    x = np.asarray(x, float)
    labels = np.asarray(labels)
    folds = assign_folds(labels, patient_ids, n_folds, seed)
    oof = np.full(len(labels), np.nan)
    fold_aucs, timings = {}, {}
    for fold in range(1, n_folds + 1):
        started = time.perf_counter()
        train, held_out = folds != fold, folds == fold
        if reporter is not None:
            reporter.stage_started(fold, int(train.sum()), int(held_out.sum()))
        model = build_classifier(spec, seed).fit(x[train], labels[train])
        oof[held_out] = model.predict_proba(x[held_out])[:, 1]
        fold_aucs[fold] = safe_auc(labels[held_out], oof[held_out])
        timings[f"fold_{fold}_s"] = round(time.perf_counter() - started, 3)
        if reporter is not None:
            if not reporter.epoch_ended(
                fold, 1, _log_loss(model, x[train], labels[train]), fold_aucs[fold]
            ):
                raise TrainingCancelled()
            reporter.log(
                f"fold {fold}: {int(train.sum())} training / {int(held_out.sum())} held-out lesions, "
                f"AUC {fold_aucs[fold]}; features {selected_features(model, names)}"
            )
    started = time.perf_counter()
    if reporter is not None:
        reporter.stage_started(None, len(labels), 0)
    final = build_classifier(spec, seed).fit(x, labels)
    timings["final_s"] = round(time.perf_counter() - started, 3)
    if reporter is not None and not reporter.epoch_ended(
        None, 1, _log_loss(final, x, labels), None
    ):
        raise TrainingCancelled()
    return FeatureCrossValidation(
        folds=folds,
        oof_scores=oof,
        fold_aucs=fold_aucs,
        oof_auc=safe_auc(labels, oof),
        final_model=final,
        final_scores=final.predict_proba(x)[:, 1],
        selected_features=selected_features(final, names),
        timings=timings,
    )


# --- the stored model --------------------------------------------------------------


@dataclass
class RadiomicsModel:
    """A fitted pipeline with the feature names (``<phase>:<feature>``) it reads, in order.

    Stored with joblib (a pickle): :meth:`load` refuses a file whose sha256 differs from
    the one the registry recorded when it saved the file, so only the portal's own
    artifacts are ever unpickled.
    """

    pipeline: object
    feature_names: list[str]
    phases: tuple[str, ...]

    def predict(self, rows: list[dict]) -> np.ndarray:
        """Probability of malignancy for each lesion's feature dict (features it lacks count as missing)."""
        x, _ = feature_matrix(rows, self.feature_names)
        return self.pipeline.predict_proba(x)[:, 1]

    def save(self, path) -> str:
        """Write the model to ``path``; returns the file's sha256."""
        import joblib

        joblib.dump(self, path)
        return file_sha256(path)

    @classmethod
    def load(cls, path, expected_sha256: str) -> RadiomicsModel:
        import joblib

        if file_sha256(path) != expected_sha256:
            raise ValueError(f"model file {path} does not match its recorded sha256 checksum")
        model = joblib.load(path)
        if not isinstance(model, cls):
            raise ValueError(f"model file {path} does not hold a radiomics model")
        return model


def describe_runtime() -> str:
    """Library versions and CPUs a radiomics run used (the run's ``device``)."""
    import importlib.metadata
    import os

    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("mirp", "scikit-learn")
    )
    return f"{versions}; CPU ({os.cpu_count()} cores)"
