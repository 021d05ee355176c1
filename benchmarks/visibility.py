"""Which of a lesion's latents can be read off its image? Recovery of each latent from ROI statistics.

The CNN can only learn what the rendered pixels show. For cohort seeds (rendered in
memory by ``inference.synthetic``, 256 px: 1.48 mm pixels, noise 10-15 HU) this script
computes simple statistics of each lesion's reference ROI on the phase's centre slice
(``inference.patches.roi_statistics``: the disc's mean, SD, 10th percentile, rim minus
disc, rim SD, log radius; plus the centre 3 x 3 pixels minus the disc mean and the share
of disc pixels 40 HU below its mean) and measures, pooled over the seeds with
patient-grouped 5-fold, how well a random forest recovers each latent from them: AUC for
the binary latents (heterogeneous enhancement, necrosis, central scar, segmental
inversion, exophytic), Spearman r for size and mean HU. Beside each: the latent's own
AUC for malignancy (how much it would be worth if it were read perfectly)::

    .venv/bin/python benchmarks/visibility.py                 # CM, seeds 0-2
    .venv/bin/python benchmarks/visibility.py --phase EX --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from models import cached_crops  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor  # noqa: E402
from sklearn.model_selection import GroupKFold, cross_val_predict  # noqa: E402

from archive.vocabulary import PHASES  # noqa: E402
from cohort.oracle import PHASE_LATENT_NAMES, phase_latents  # noqa: E402
from evaluation.stats.roc import empirical_auc  # noqa: E402
from inference.experiments import PatchSpec  # noqa: E402
from inference.patches import roi_statistics  # noqa: E402

WINDOW = dict(window_level=100.0, window_width=600.0)


def image_statistics(
    crops, phase: str, size_px: int = 64, field_of_view_mm: float = 48.0
) -> np.ndarray:
    """Per lesion: the ROI statistics of the centre slice and two more (centre vs disc, dark share)."""
    spec = PatchSpec(field_of_view_mm=field_of_view_mm, size_px=size_px, neighbours=0, **WINDOW)
    patches = crops.patches((phase,), spec)[:, 0]
    radius = crops.roi_radius_mm * size_px / field_of_view_mm
    stats = roi_statistics(patches, radius)
    centre = size_px // 2
    offsets = np.arange(size_px) - (size_px - 1) / 2.0
    distance = np.hypot(offsets[:, None], offsets[None, :])
    extra = []
    for i, patch in enumerate(patches[..., 0]):
        disc = patch[distance <= max(radius[i], 1.0)]
        core = patch[centre - 1 : centre + 2, centre - 1 : centre + 2].mean()
        extra.append(
            (core - disc.mean(), np.mean(disc < disc.mean() - 40.0 / WINDOW["window_width"]))
        )
    return np.hstack([stats, np.asarray(extra)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", default="CM", choices=PHASES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--patients", type=int, default=160)
    args = parser.parse_args(argv)

    features, latents, malignant, groups = [], [], [], []
    for seed in args.seeds:
        crops = cached_crops(seed, args.patients, 256)
        features.append(image_statistics(crops, args.phase))
        latents += [phase_latents(lesion, args.phase) for lesion in crops.lesions]
        malignant += [lesion.malignant for lesion in crops.lesions]
        groups += [f"{seed}-{p}" for p in crops.patient_index]
    x, z, y = np.vstack(features), np.asarray(latents), np.asarray(malignant)
    folds = GroupKFold(5)
    print(
        f"{args.phase}, seeds {args.seeds}: {len(y)} lesions; image statistics of the reference ROI (centre slice)\n"
    )
    print(
        "| latent | share / spread | recovered from the image | the latent's own AUC for malignancy |"
    )
    print("| --- | --- | --- | --- |")
    for j, name in enumerate(PHASE_LATENT_NAMES):
        target = z[:, j]
        own = max(empirical_auc(target, y), 1 - empirical_auc(target, y))
        if len(set(target.tolist())) < 2:
            print(f"| {name} | constant in {args.phase} | - | - |")
            continue
        if name in ("mean_hu", "size_mm"):
            predicted = cross_val_predict(
                RandomForestRegressor(300, min_samples_leaf=3, random_state=0),
                x,
                target,
                groups=groups,
                cv=folds,
            )
            print(
                f"| {name} | SD {target.std():.1f} | Spearman r {spearmanr(predicted, target)[0]:.2f} | {own:.2f} |"
            )
        else:
            predicted = cross_val_predict(
                RandomForestClassifier(300, min_samples_leaf=3, random_state=0),
                x,
                target,
                groups=groups,
                cv=folds,
                method="predict_proba",
            )[:, 1]
            print(
                f"| {name} | {target.mean():.0%} of lesions "
                f"| AUC {empirical_auc(predicted, target.astype(bool)):.2f} | {own:.2f} |"
            )


if __name__ == "__main__":
    main()
