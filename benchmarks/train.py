"""Training throughput and scoring latency of the inference pipeline; optional seed-scale AUC check.

Throughput (no database needed)::

    .venv/bin/python benchmarks/train.py [--lesions 160] [--size 32] [--phases 1] [--epochs 2] [--pairs 5]

prints training images/s of our input pipeline (``PatchSequence``: shuffling and
augmentation per batch) + model versus the same model's ``fit`` on in-memory
arrays in the same process, in interleaved rounds (goal: median ratio >= 0.9), and the scoring latency per
lesion (patch extraction from a CT volume + model forward over its slices).

Seed-scale check on the synthetic cohort (needs the cohort imported by
``manage.py make_cohort --import``; trains every variant of an experiment in this
process and reads the oracle from the folder's ``cohort.csv``)::

    DEBUG=1 .venv/bin/python manage.py make_cohort --patients 160 --seed 0 --size 256 --out var/cohort --import
    DEBUG=1 .venv/bin/python benchmarks/train.py --cohort var/cohort [--experiment source-study] [--variant CM]

prints out-of-fold AUC per variant next to the cohort's oracle AUC.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def throughput(args):
    import keras

    from inference import training
    from inference.experiments import get_experiment
    from inference.patches import extract_lesion_patches

    experiment = get_experiment(
        args.experiment,
        {"epochs": args.epochs, "batch_size": args.batch_size, "patch": {"size_px": args.size}},
    )
    rng = np.random.default_rng(0)
    samples = 2 * experiment.patch.neighbours + 1
    patches = rng.uniform(
        0, 1, size=(args.lesions, samples, args.size, args.size, args.phases)
    ).astype(np.float32)
    labels = np.arange(args.lesions) % 2
    x, y = training.flatten_samples(patches, labels)
    print(
        f"keras {keras.__version__} backend {keras.backend.backend()}; {training.describe_devices()}"
    )
    print(
        f"{len(x)} images of {x.shape[1:]}, batch {experiment.batch_size}; {args.pairs} interleaved rounds of "
        f"{args.epochs} epochs each (after 1 warm-up epoch per model)"
    )

    # One model per way of feeding it, warmed up once; then rounds that time each way in
    # turn, so drift of a shared machine hits all three alike. Ratio = pipeline / arrays
    # within a round; the median over rounds is the figure.
    sequence = training.PatchSequence(
        x,
        y,
        experiment.batch_size,
        experiment.augmentation,
        experiment.patch.window_width,
        seed=0,
        workers=args.workers,
    )
    plain = training.PatchSequence(x, y, experiment.batch_size, None, seed=0, workers=args.workers)
    ways = {
        "arrays": ({"x": x, "y": y, "batch_size": experiment.batch_size, "shuffle": True}),
        "pipeline": ({"x": sequence}),
        "pipeline_no_augmentation": ({"x": plain}),
    }
    models = {name: training.compiled_model(experiment, x.shape[1:], 0) for name in ways}
    for name, kwargs in ways.items():
        models[name].fit(epochs=1, verbose=0, **kwargs)  # tracing and first allocations
    rates = {name: [] for name in ways}
    for _ in range(args.pairs):
        for name, kwargs in ways.items():
            started = time.perf_counter()
            models[name].fit(epochs=args.epochs, verbose=0, **kwargs)
            rates[name].append(len(x) * args.epochs / (time.perf_counter() - started))
    arrays = np.array(rates["arrays"])
    print(f"fit on in-memory arrays:           median {np.median(arrays):8.1f} images/s")
    for name, label in (
        ("pipeline", "our pipeline (augmented):        "),
        ("pipeline_no_augmentation", "our pipeline (augmentation off): "),
    ):
        ratio = np.array(rates[name]) / arrays
        print(
            f"{label}  median {np.median(rates[name]):8.1f} images/s  ratio median {np.median(ratio):.2f} "
            f"(rounds {', '.join(f'{r:.2f}' for r in ratio)})"
        )

    model = training.compiled_model(experiment, x.shape[1:], 0)
    volume = rng.normal(40, 20, size=(2 * experiment.patch.neighbours + 1, 512, 512)).astype(
        np.float32
    )
    training.predict_lesions(model, patches[:1])  # warm-up
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        one = np.stack(
            [
                extract_lesion_patches(
                    volume,
                    (0.74, 0.74),
                    (256.0, 256.0),
                    experiment.patch.neighbours,
                    experiment.patch.neighbours,
                    experiment.patch.field_of_view_mm,
                    args.size,
                    experiment.patch.window_level,
                    experiment.patch.window_width,
                )
                for _ in range(args.phases)
            ],
            axis=-1,
        )[None]
        training.predict_lesions(model, one)
        timings.append(time.perf_counter() - started)
    print(
        f"scoring latency per lesion (patches from a 512x512 volume + forward over {samples} slices): "
        f"median {1000 * np.median(timings):.1f} ms, p90 {1000 * np.percentile(timings, 90):.1f} ms"
    )


def cohort_check(args):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from annotations.models import Lesion
    from archive.vocabulary import PHASES
    from evaluation.stats.roc import empirical_auc
    from inference.experiments import get_experiment
    from inference.models import ModelVersion

    rows = list(csv.DictReader((Path(args.cohort) / "cohort.csv").open()))
    if not Lesion.objects.filter(pathology__isnull=False).exists():
        raise SystemExit(
            f"no lesions with pathology in the database: import the cohort first "
            f"(manage.py make_cohort ... --out {args.cohort} --import)"
        )
    malignant = np.array([int(r["malignant"]) for r in rows])
    oracle = {"overall": empirical_auc([float(r["oracle_llr"]) for r in rows], malignant)}
    for phase in PHASES:
        if f"{phase}_oracle_llr" in rows[0]:
            oracle[phase] = empirical_auc(
                [float(r[f"{phase}_oracle_llr"]) for r in rows], malignant
            )
    experiment = get_experiment(args.experiment)
    variants = args.variant or experiment.variant_names
    command = ["train", "--experiment", args.experiment, "--inline"] + [
        a for v in variants for a in ("--variant", v)
    ]
    command += [a for s in args.set for a in ("--set", s)]
    started = time.perf_counter()
    call_command(*command)
    print(f"trained {len(variants)} variant(s) in {time.perf_counter() - started:.0f} s")
    print(
        "| variant | out-of-fold AUC | oracle AUC (phase) | (AUC-0.5)/(oracle-0.5) |\n|---|---|---|---|"
    )
    for variant in variants:
        version = (
            ModelVersion.objects.filter(experiment_name=args.experiment, variant=variant)
            .order_by("-created_at")
            .first()
        )
        auc = version.metrics["oof_auc"] if version else float("nan")
        phases = experiment.variant(variant).phases
        reference = (
            oracle[phases[0]] if len(phases) == 1 and phases[0] in oracle else oracle["overall"]
        )
        print(
            f"| {variant} | {auc:.3f} | {reference:.3f} | {(auc - 0.5) / (reference - 0.5):.2f} |"
        )
    print(f"oracle overall (all phases): {oracle['overall']:.3f}")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiment", default="source-study")
    parser.add_argument("--lesions", type=int, default=160)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--phases", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed round")
    parser.add_argument("--pairs", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--cohort", help="a make_cohort output folder: run the seed-scale AUC check instead"
    )
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        help="experiment override for the cohort check, e.g. epochs=10",
    )
    args = parser.parse_args()
    if args.cohort:
        cohort_check(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
