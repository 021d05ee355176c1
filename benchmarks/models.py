"""Every model variant over several cohort seeds: out-of-fold AUC mean +- SD, beside L and the oracle.

For each cohort seed (160 patients at 256 px by default: 1.48 mm pixels, 2.5 mm
slices) the cohort is rendered in memory (``inference.synthetic``: the same pixels
``make_cohort`` writes) and each variant of an experiment is trained with the
portal's own code (``inference.training.cross_validate``: patient-grouped,
label-stratified 5-fold, out-of-fold scores) on patches cut by
``inference.patches`` exactly as the archive path cuts them. Beside each variant:
the oracle AUC of the phase(s) and L, the better out-of-fold AUC of the two latent
learners of ``benchmarks/learnability.py`` on the same cohort and phase(s), and the
issue-10 aim 0.5 + 0.85 x (L - 0.5)::

    .venv/bin/python benchmarks/models.py                          # source-study, seeds 0-2, every variant
    .venv/bin/python benchmarks/models.py --variant CM --variant EX --seeds 0 1 2
    .venv/bin/python benchmarks/models.py --set epochs=40 --set patch.neighbours=3

Rendered crops are cached under ``var/benchmark-crops`` (a few MB per seed). The
CM-versus-EX DeLong test is printed per seed when both variants ran.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from learnability import learners, out_of_fold_auc  # noqa: E402

from archive.vocabulary import PHASES  # noqa: E402
from cohort.latents import sample_cohort  # noqa: E402
from cohort.oracle import oracle_auc, phase_latents  # noqa: E402
from cohort.spec import CohortSpec  # noqa: E402
from inference.synthetic import lesion_crops  # noqa: E402

AIM = 0.85


def cached_crops(seed: int, patients: int, size: int):
    path = ROOT / "var" / "benchmark-crops" / f"seed{seed}-p{patients}-s{size}.pickle"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    crops = lesion_crops(CohortSpec(patients=patients, seed=seed, size=size))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(pickle.dumps(crops))
    partial.replace(path)  # atomic: a concurrent run never reads half a file
    return crops


def latent_ceiling(seed: int, patients: int, phases: tuple[str, ...]) -> float:
    """L for the phase(s): the better latent learner's out-of-fold AUC on the latents those phases show."""
    cases = sample_cohort(CohortSpec(patients=patients, seed=seed))
    x = np.array(
        [
            sum((phase_latents(lesion, p) for p in phases), [])
            for case in cases
            for lesion in case.lesions
        ]
    )
    y = np.array([lesion.malignant for case in cases for lesion in case.lesions])
    groups = np.array([case.index for case in cases for _ in case.lesions])
    return max(out_of_fold_auc(model, x, y, groups, 5, seed=0) for model in learners().values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="source-study")
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--patients", type=int, default=160)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--set", action="append", default=[], help="experiment override, e.g. epochs=40"
    )
    parser.add_argument("--json", help="append the per-seed results to this JSON-lines file")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from evaluation.stats.roc import delong_test
    from inference.experiments import get_experiment, parse_overrides
    from inference.training import cross_validate

    experiment = get_experiment(args.experiment, parse_overrides(args.set))
    variants = args.variant or experiment.variant_names
    print(
        f"{experiment.name} {json.dumps(parse_overrides(args.set))}; seeds {args.seeds}; {args.patients} patients at "
        f"{args.size} px",
        flush=True,
    )
    results = {v: [] for v in variants}
    for seed in args.seeds:
        started = time.perf_counter()
        crops = cached_crops(seed, args.patients, args.size)
        oracle = oracle_auc(crops.lesions)
        scores = {}
        for name in variants:
            phases = experiment.variant(name).phases
            t0 = time.perf_counter()
            patches = crops.patches(phases, experiment.patch)
            result = cross_validate(
                experiment,
                patches,
                crops.labels,
                crops.patient_index,
                final=False,
                roi_extent_mm=crops.roi_radius_mm,
            )
            ceiling = latent_ceiling(seed, args.patients, phases)
            # The oracle of one phase, or of every latent for all four phases; none is defined for CM+NG.
            reference = (
                getattr(oracle, phases[0])
                if len(phases) == 1
                else oracle.overall
                if set(phases) == set(PHASES)
                else float("nan")
            )
            scores[name] = result.oof_scores
            row = {
                "seed": seed,
                "variant": name,
                "auc": result.oof_auc,
                "L": ceiling,
                "oracle": reference,
                "aim": 0.5 + AIM * (ceiling - 0.5),
                "seconds": round(time.perf_counter() - t0, 1),
                "experiment": experiment.name,
                "overrides": parse_overrides(args.set),
            }
            results[name].append(row)
            print(
                f"seed {seed} {name:6s} AUC {result.oof_auc:.3f}  L {ceiling:.3f}  aim {row['aim']:.3f}  "
                f"oracle {reference:.3f}  ({row['seconds']:.0f} s); folds "
                + " ".join(f"{v:.2f}" if v is not None else "-" for v in result.fold_aucs.values()),
                flush=True,
            )
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
        if "CM" in scores and "EX" in scores:
            test = delong_test(scores["CM"], scores["EX"], crops.labels)
            print(
                f"seed {seed} CM vs EX: difference {test.difference:+.3f}, p = {test.p_value:.3f}",
                flush=True,
            )
        print(f"seed {seed} done in {time.perf_counter() - started:.0f} s", flush=True)

    print(
        "\n| variant | out-of-fold AUC, mean +- SD | L (latent learners) "
        "| aim 0.5 + 0.85 (L - 0.5) | oracle | aim met |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        auc = np.array([r["auc"] for r in rows])
        ceiling = np.array([r["L"] for r in rows])
        aim = np.array([r["aim"] for r in rows])
        oracle = np.array([r["oracle"] for r in rows])
        print(
            f"| {name} | {auc.mean():.3f} +- {auc.std(ddof=1) if len(auc) > 1 else 0:.3f} | {ceiling.mean():.3f} | "
            f"{aim.mean():.3f} | {oracle.mean():.3f} | {'yes' if auc.mean() >= aim.mean() else 'no'} |"
        )


if __name__ == "__main__":
    main()
