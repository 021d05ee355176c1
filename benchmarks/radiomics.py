"""Out-of-fold AUC of the radiomics family on seed-scale synthetic cohorts, without a database.

Renders each cohort with ``cohort.latents.sample_cohort`` and ``cohort.anatomy.render_volumes``, builds
each lesion's reference ROI from its truth (``lesion_truths``: a circle of ``radius_mm``
around x, y on slice ``InstanceNumber - 1``, stored as the ellipse tool stores it, as
``make_cohort --import`` does), computes the features with the ``radiomics``
experiment's settings (``inference.radiomics.compute_features``, the function the
portal's tasks call) and runs the experiment's classifier in the portal's folds
(``inference.radiomics_training.cross_validate_features``: patient-grouped, label-stratified
5-fold, the whole pipeline fitted per training fold)::

    nice .venv/bin/python benchmarks/radiomics.py                      # seeds 0-2, 160 patients, 256 px
    .venv/bin/python benchmarks/radiomics.py --seeds 0 1 2 --variant CM --variant EX
    .venv/bin/python benchmarks/radiomics.py --classifier '{"kind": "gradient_boosting"}'
    .venv/bin/python benchmarks/radiomics.py --radiomics '{"bin_width_hu": 10}'

Features are cached per cohort seed, size and settings under
``var/benchmarks/radiomics/`` (first run: about 3 minutes per seed on one core, mostly
rendering; later runs: seconds). Prints, per variant, the out-of-fold AUC of each seed,
their mean +- SD (sample SD), and the cohort's oracle AUC for the same phases.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotations.measurements import roi_mask  # noqa: E402
from cohort.anatomy import render_volumes  # noqa: E402
from cohort.files import circle_points, lesion_truths  # noqa: E402
from cohort.latents import sample_cohort  # noqa: E402
from cohort.spec import CohortSpec  # noqa: E402
from inference import radiomics, radiomics_training  # noqa: E402
from inference.experiments import get_experiment  # noqa: E402

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def roi_features(
    image,
    pixel_mm: float,
    first_pixel_mm,
    centre_mm,
    radius_mm: float,
    settings: radiomics.RadiomicsSettings,
) -> dict[str, float]:
    """Features of a circular reference ROI on one axial slice, as the portal computes them from an archive slice.

    ``first_pixel_mm``: (x, y) of the centre of the slice's first pixel (ImagePositionPatient);
    ``centre_mm``: the ROI centre (x, y, z) in the same patient coordinates.
    """
    x_mm, y_mm, z_mm = centre_mm
    mask = roi_mask(
        "ellipse",
        circle_points(x_mm, y_mm, z_mm, radius_mm),
        (first_pixel_mm[0], first_pixel_mm[1], z_mm),
        AXIAL,
        (pixel_mm, pixel_mm),
        image.shape,
    )
    return radiomics.compute_features(image, (pixel_mm, pixel_mm), mask, settings)


def feature_rows(lesions: list[dict], phases) -> list[dict]:
    """One ``{"<phase>:<feature>": value}`` row per lesion (the names a radiomics model reads) over ``phases``."""
    return [
        {f"{p}:{k}": v for p in phases for k, v in lesion["features"][p].items()}
        for lesion in lesions
    ]


def cohort_features(
    seed: int, patients: int, size: int, settings: radiomics.RadiomicsSettings, cache: Path
) -> dict:
    """Per lesion: patient index, label, and {phase: features}; cached by seed, size and settings."""
    key = hashlib.sha256(
        json.dumps([seed, patients, size, settings.__dict__], default=list, sort_keys=True).encode()
    )
    path = cache / f"seed{seed}-n{patients}-{size}px-{key.hexdigest()[:12]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    spec = CohortSpec(patients=patients, seed=seed, size=size)
    cases = sample_cohort(spec)
    lesions, started = [], time.perf_counter()
    for case in cases:
        rendered = render_volumes(case, spec)
        for truth in lesion_truths(case, spec):
            per_phase = {
                phase: roi_features(
                    rendered.hu[phase][roi.InstanceNumber - 1],
                    spec.pixel_mm,
                    (spec.first_pixel_mm, spec.first_pixel_mm),
                    (roi.x_mm, roi.y_mm, roi.z_mm),
                    roi.radius_mm,
                    settings,
                )
                for phase, roi in truth.rois.items()
            }
            lesions.append(
                {
                    "patient": case.index,
                    "malignant": bool(truth.lesion.malignant),
                    "features": per_phase,
                    "oracle_llr_phase": truth.lesion.oracle_llr_phase,
                    "oracle_llr": truth.lesion.oracle_llr,
                }
            )
    data = {"seed": seed, "seconds": round(time.perf_counter() - started, 1), "lesions": lesions}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return data


def crops_features(crops, phases, settings: radiomics.RadiomicsSettings) -> dict:
    """:func:`cohort_features` of a cohort rendered in memory (``inference.synthetic.LesionCrops``),
    for ``phases`` only.

    Each ROI is read on its crop's centre slice (the slice through the ROI centre), in
    crop coordinates: the ROI's pixels and outline are those of the whole slice, so the
    features are equal to :func:`cohort_features`' (the crop only saves rendering twice).
    """
    lesions = []
    for i, lesion in enumerate(crops.lesions):
        per_phase = {phase: crops.roi_features(i, phase, settings) for phase in phases}
        lesions.append(
            {
                "patient": int(crops.patient_index[i]),
                "malignant": bool(lesion.malignant),
                "features": per_phase,
                "oracle_llr_phase": lesion.oracle_llr_phase,
                "oracle_llr": lesion.oracle_llr,
            }
        )
    return {"seed": crops.spec.seed, "lesions": lesions}


def variant_auc(
    data: dict, phases, spec: radiomics.ClassifierSpec, folds: int, fold_seed: int
) -> float:
    x, names = radiomics.feature_matrix(feature_rows(data["lesions"], phases))
    labels = np.array([int(lesion["malignant"]) for lesion in data["lesions"]])
    patients = np.array([lesion["patient"] for lesion in data["lesions"]])
    return radiomics_training.cross_validate_features(
        x, labels, patients, names, spec, folds, fold_seed
    ).oof_auc


def oracle_for(data: dict, phases) -> float:
    from evaluation.stats.roc import empirical_auc

    truth = [lesion["malignant"] for lesion in data["lesions"]]
    if len(phases) == 1:
        return empirical_auc(
            [lesion["oracle_llr_phase"][phases[0]] for lesion in data["lesions"]], truth
        )
    if len(phases) == 4:
        return empirical_auc([lesion["oracle_llr"] for lesion in data["lesions"]], truth)
    return float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--patients", type=int, default=160)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--experiment", default="radiomics")
    parser.add_argument(
        "--variant", action="append", default=[], help="default: every variant of the experiment"
    )
    parser.add_argument(
        "--radiomics", default="{}", help="JSON overrides of the experiment's radiomics settings"
    )
    parser.add_argument(
        "--classifier", default="{}", help="JSON overrides of the experiment's classifier"
    )
    parser.add_argument("--cache", default=str(ROOT / "var" / "benchmarks" / "radiomics"))
    args = parser.parse_args(argv)

    experiment = get_experiment(
        args.experiment,
        {"radiomics": json.loads(args.radiomics), "classifier": json.loads(args.classifier)},
    )
    variants = [experiment.variant(name) for name in (args.variant or experiment.variant_names)]
    print(
        f"{experiment.name}: {experiment.radiomics}\n{experiment.classifier}\n"
        f"{args.patients} patients, {args.size} px, {experiment.folds}-fold out-of-fold AUC\n"
    )
    cohorts = {}
    for seed in args.seeds:
        cohorts[seed] = cohort_features(
            seed, args.patients, args.size, experiment.radiomics, Path(args.cache)
        )
        print(
            f"seed {seed}: {len(cohorts[seed]['lesions'])} lesions (features computed in {cohorts[seed]['seconds']} s)",
            flush=True,
        )
    print(
        "\n| variant | "
        + " | ".join(f"seed {s}" for s in args.seeds)
        + " | mean ± SD | oracle (mean) |"
    )
    print("| --- |" + " --- |" * (len(args.seeds) + 2))
    for variant in variants:
        started = time.perf_counter()
        aucs = [
            variant_auc(
                cohorts[s], variant.phases, experiment.classifier, experiment.folds, experiment.seed
            )
            for s in args.seeds
        ]
        oracle = np.nanmean([oracle_for(cohorts[s], variant.phases) for s in args.seeds])
        sd = np.std(aucs, ddof=1) if len(aucs) > 1 else 0.0
        print(
            f"| {variant.name} | "
            + " | ".join(f"{a:.3f}" for a in aucs)
            + f" | {np.mean(aucs):.3f} ± {sd:.3f} | {'–' if np.isnan(oracle) else f'{oracle:.3f}'} |"
            + f"  <!-- {time.perf_counter() - started:.1f} s -->",
            flush=True,
        )


if __name__ == "__main__":
    main()
