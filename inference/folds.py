"""Patient-grouped, label-stratified folds, a safe AUC, out-of-fold metrics and artifact checksums.

Shared by every model family (no Keras here).
"""

from __future__ import annotations

import hashlib

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from evaluation.stats.roc import empirical_auc


def assign_folds(labels, patient_ids, n_folds: int, seed: int) -> np.ndarray:
    """Fold number (1..k) of every lesion: patient-grouped, label-stratified (sklearn StratifiedGroupKFold).

    All lesions of a patient share a fold, so no fold model ever trains on the patient
    of a lesion it scores. Raises ValueError when there are fewer patients than folds.
    """
    labels = np.asarray(labels)
    groups = np.asarray(patient_ids)
    n_patients = len(set(groups.tolist()))
    if n_patients < n_folds:
        raise ValueError(f"{n_patients} patients cannot fill {n_folds} folds")
    folds = np.zeros(len(labels), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(
        splitter.split(np.zeros(len(labels)), labels, groups), start=1
    ):
        folds[held_out] = fold
    return folds


def safe_auc(labels, scores) -> float | None:
    """Empirical AUC (ties count one half), or None when only one class is present."""
    labels = np.asarray(labels)
    if len(set(labels.tolist())) < 2:
        return None
    return empirical_auc(scores, labels)


def out_of_fold_metrics(labels, folds, oof_scores, fold_aucs) -> dict:
    """The metrics stored with a model version: out-of-fold AUC, per-fold AUC, accuracy at 0.5, counts."""
    labels = np.asarray(labels)
    folds = np.asarray(folds)
    oof_scores = np.asarray(oof_scores, float)
    return {
        "oof_auc": safe_auc(labels, oof_scores),
        "fold_auc": {str(k): v for k, v in fold_aucs.items()},
        "oof_accuracy_at_0_5": float(np.mean((oof_scores >= 0.5) == (labels == 1)))
        if len(labels)
        else None,
        "n_lesions": int(len(labels)),
        "n_malignant": int((labels == 1).sum()),
        "n_benign": int((labels == 0).sum()),
        "n_folds": int(folds.max()) if len(folds) else 0,
    }


def file_sha256(path) -> str:
    """sha256 of a model artifact file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
