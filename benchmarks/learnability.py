"""How much of the synthetic cohort's oracle AUC can a model *learned* from the cohort reach?

The oracle (``cohort.oracle.lesion_llr``) is the Bayes-optimal statistic: it knows the
generator's true distributions. A CNN has to learn them from the cohort's lesions
(about 134 per training fold at seed scale, ~28 of them benign). This script measures
the cost of that learning alone, with no imaging in the way: classifiers trained on the
*exact* latents a phase shows (``cohort.oracle.phase_latents``: mean HU, size,
exophytic, visible pattern, inversion, heterogeneity, perfectly measured), with the
portal's fold scheme (patient-grouped, label-stratified 5-fold), per cohort seed::

    .venv/bin/python benchmarks/learnability.py                    # CM, seeds 0-19, ~1 min
    .venv/bin/python benchmarks/learnability.py --phase EX --seeds 5
    .venv/bin/python benchmarks/learnability.py --phase ALL         # every phase's latents together

It prints, per seed, the oracle AUC, the issue-5 aim 0.5 + 0.85 x (oracle - 0.5), and
the out-of-fold AUC of a random forest and of a spline logistic regression on the
latents; then a learning curve: the same learners trained on n lesions drawn from
independent cohorts (seeds 1000+) and tested on the seed-0 cohort, showing how many
training lesions the aim needs when the features are free. No database, no Keras.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archive.vocabulary import PHASES  # noqa: E402
from cohort.latents import sample_cohort  # noqa: E402
from cohort.oracle import oracle_auc, phase_latents  # noqa: E402
from cohort.spec import CohortSpec  # noqa: E402
from evaluation.stats.roc import empirical_auc  # noqa: E402

AIM = 0.85  # issue 5: (AUC - 0.5) >= 0.85 x (oracle - 0.5)


def learners() -> dict:
    """Two standard learners: a random forest, and a logistic regression with splines on HU and size."""
    return {
        "forest": RandomForestClassifier(300, min_samples_leaf=3, random_state=0),
        "logistic": make_pipeline(
            ColumnTransformer(
                [("splines", SplineTransformer(n_knots=5, degree=3), [0, 1])],
                remainder="passthrough",
            ),
            LogisticRegression(max_iter=3000),
        ),
    }


def cohort_arrays(seed: int, patients: int, phase: str):
    cases = sample_cohort(CohortSpec(patients=patients, seed=seed))
    lesions = [lesion for case in cases for lesion in case.lesions]
    phases = PHASES if phase == "ALL" else (phase,)
    x = np.array([sum((phase_latents(lesion, p) for p in phases), []) for lesion in lesions])
    y = np.array([lesion.malignant for lesion in lesions])
    groups = np.array([case.index for case in cases for _ in case.lesions])
    oracle = getattr(oracle_auc(lesions), "overall" if phase == "ALL" else phase)
    return x, y, groups, oracle


def out_of_fold_auc(model, x, y, groups, folds: int, seed: int) -> float:
    scores = np.zeros(len(y))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, held_out in splitter.split(x, y, groups):
        model.fit(x[train], y[train])
        scores[held_out] = model.predict_proba(x[held_out])[:, 1]
    return empirical_auc(scores, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--phase",
        choices=PHASES + ("ALL",),
        default="CM",
        help="ALL: the latents of every phase together, against the overall oracle (without sex)",
    )
    parser.add_argument("--patients", type=int, default=160)
    parser.add_argument("--seeds", type=int, default=20, help="cohort seeds 0..N-1")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--pool-seeds", type=int, default=40, help="independent cohorts for the learning curve"
    )
    args = parser.parse_args(argv)

    print(
        f"{args.phase}: oracle vs learned-on-exact-latents, {args.patients} patients, {args.folds}-fold\n"
    )
    print("| seed | lesions (benign) | oracle | aim | forest | logistic | best/aim |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for seed in range(args.seeds):
        x, y, groups, oracle = cohort_arrays(seed, args.patients, args.phase)
        aim = 0.5 + AIM * (oracle - 0.5)
        learned = {
            name: out_of_fold_auc(m, x, y, groups, args.folds, seed=0)
            for name, m in learners().items()
        }
        best = max(learned.values())
        rows.append((oracle, aim, learned["forest"], learned["logistic"], best))
        print(
            f"| {seed} | {len(y)} ({int((~y).sum())}) | {oracle:.3f} | {aim:.3f} | {learned['forest']:.3f} "
            f"| {learned['logistic']:.3f} | {'met' if best >= aim else 'not met'} |",
            flush=True,
        )
    r = np.array(rows)
    met = int((r[:, 4] >= r[:, 1]).sum())
    share = (r[:, 4] - 0.5) / (r[:, 0] - 0.5)
    print(
        f"\nmean oracle {r[:, 0].mean():.3f}; mean forest {r[:, 2].mean():.3f}, logistic {r[:, 3].mean():.3f}; "
        f"better learner's share of the oracle's discrimination above chance: mean {share.mean():.2f} "
        f"(range {share.min():.2f}-{share.max():.2f}); aim met in {met}/{len(r)} seeds"
    )

    x_test, y_test, _, oracle = cohort_arrays(0, args.patients, args.phase)
    pool = [cohort_arrays(1000 + s, args.patients, args.phase) for s in range(args.pool_seeds)]
    x_pool = np.concatenate([p[0] for p in pool])
    y_pool = np.concatenate([p[1] for p in pool])
    rng = np.random.default_rng(0)
    print(
        f"\nlearning curve: trained on n lesions of independent cohorts, tested on seed 0 "
        f"(oracle {oracle:.3f}, aim {0.5 + AIM * (oracle - 0.5):.3f}); mean of 5 draws"
    )
    for n in [n for n in (134, 300, 600, 1200, 2500) if n < len(y_pool)] + [len(y_pool)]:
        draws = 5 if n < len(y_pool) else 1
        result = {name: [] for name in learners()}
        for _ in range(draws):
            chosen = rng.choice(len(y_pool), n, replace=False)
            for name, model in learners().items():
                model.fit(x_pool[chosen], y_pool[chosen])
                result[name].append(empirical_auc(model.predict_proba(x_test)[:, 1], y_test))
        print(
            f"  n = {n:5d}: " + ", ".join(f"{name} {np.mean(v):.3f}" for name, v in result.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
