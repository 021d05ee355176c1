"""How many cases does a study need? Held-out AUC against the number of training lesions.

Each model family is trained on n lesions (about 100, 200, 400, 800) drawn from
independent synthetic cohorts (seeds 1000, 1001, ...: 160 patients, about 167 lesions
each, 256 px) and scored on one fixed test cohort (seed 0, 160 patients, 256 px) that
no training draw ever holds:

- the CNN: ``--cnn-experiment`` (``source-study``) and its ``--set`` overrides, fitted
  with ``inference.training.fit_model`` on patches cut by ``inference.synthetic`` exactly
  as the archive path cuts them, scored with ``inference.training.predict_lesions``;
- the radiomics model: ``--radiomics-experiment`` (``radiomics``): IBSI features of each
  lesion's reference ROI (``benchmarks/radiomics.py``, the portal's
  ``inference.radiomics.compute_features``) and the experiment's classifier pipeline
  (``inference.radiomics_training.build_classifier``);
- the latent learners of ``benchmarks/learnability.py`` (random forest, spline logistic
  regression) on the *exact* latents of the same training lesions: what a model could
  learn from those lesions if the images showed their features perfectly;

with the test cohort's oracle AUC as the ceiling. Training lesions are drawn by
patient (a patient's lesions are never split), ``--repeats`` draws per size; the table
gives mean +- SD (sample SD) over the draws::

    nice -n 10 .venv/bin/python benchmarks/learning_curve.py          # CM, 100-800 lesions, 2 draws each
    .venv/bin/python benchmarks/learning_curve.py --quick             # smoke: 100 and 200, 1 draw, 3 epochs
    .venv/bin/python benchmarks/learning_curve.py --phase ALL --sizes 100 400 --repeats 3
    .venv/bin/python benchmarks/learning_curve.py --set epochs=40 --plot var/learning_curve-e40.png

Writes the plot (``docs/learning_curve.png`` unless ``--plot``) and prints a Markdown
table. The pool holds just enough cohorts for the largest size, so draws of the largest
size share most of their patients and their SD understates the draw-to-draw variation.
Rendered crops are cached per seed under ``var/benchmark-crops`` (``benchmarks/models.py``;
about 110 MB per seed at 256 px), radiomics features per seed and phase under
``var/benchmarks/radiomics``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.vocabulary import PHASES  # noqa: E402
from benchmarks.learnability import cohort_arrays, learners  # noqa: E402
from benchmarks.models import cached_crops  # noqa: E402
from benchmarks.radiomics import crops_features, feature_rows  # noqa: E402
from evaluation.stats.roc import empirical_auc  # noqa: E402
from inference.experiments import Experiment, get_experiment, parse_overrides  # noqa: E402

FAMILIES = ("cnn", "radiomics", "forest", "logistic")
FIRST_POOL_SEED = 1000
DEFAULT_SIZES = (100, 200, 400, 800)
QUICK_SIZES = (100, 200)
QUICK_EPOCHS = 3


@dataclass
class CohortInputs:
    """What each model family reads about a cohort's lesions, one row per lesion in ``inference.synthetic``'s order.

    ``patient_key`` names the patient across cohorts (``"<seed>/<patient index>"``).
    """

    seeds: np.ndarray
    patient_key: np.ndarray
    labels: np.ndarray
    patches: np.ndarray  # (lesions, samples, size, size, channels) for the CNN
    roi_radius_mm: np.ndarray
    features: list[dict]  # radiomics rows {"<phase>:<feature>": value}
    latents: np.ndarray  # exact latents the phase(s) show (cohort.oracle.phase_latents)
    oracle: float  # the cohort's oracle AUC for the phase(s)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> CohortInputs:
        index = np.asarray(index)
        return CohortInputs(
            self.seeds[index],
            self.patient_key[index],
            self.labels[index],
            self.patches[index],
            self.roi_radius_mm[index],
            [self.features[i] for i in index],
            self.latents[index],
            float("nan"),
        )

    @classmethod
    def concatenate(cls, parts: list[CohortInputs]) -> CohortInputs:
        return cls(
            np.concatenate([p.seeds for p in parts]),
            np.concatenate([p.patient_key for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.patches for p in parts]),
            np.concatenate([p.roi_radius_mm for p in parts]),
            [row for p in parts for row in p.features],
            np.concatenate([p.latents for p in parts]),
            float("nan"),
        )


def _variant_phases(experiment: Experiment, phase: str) -> tuple[str, ...]:
    return experiment.variant(phase).phases


def cohort_inputs(
    crops,
    phase: str,
    cnn: Experiment,
    radiomics_experiment: Experiment,
    feature_cache: Path | None = None,
) -> CohortInputs:
    """The CNN patches, radiomics features and exact latents of every lesion of ``crops`` (a LesionCrops)."""
    spec = crops.spec
    radiomics_phases = _variant_phases(radiomics_experiment, phase)
    settings = radiomics_experiment.radiomics
    path = None
    if feature_cache is not None:
        key = hashlib.sha256(
            json.dumps(
                [spec.seed, spec.patients, spec.size, radiomics_phases, settings.__dict__],
                default=list,
                sort_keys=True,
            ).encode()
        ).hexdigest()[:12]
        path = feature_cache / (
            f"crops-seed{spec.seed}-n{spec.patients}-{spec.size}px-"
            f"{'+'.join(radiomics_phases)}-{key}.json"
        )
    if path is not None and path.is_file():
        features = json.loads(path.read_text())
    else:
        features = crops_features(crops, radiomics_phases, settings)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(features))
    latents, labels, groups, oracle = cohort_arrays(spec.seed, spec.patients, phase)
    # The latents are sampled without pixels; they must be the very lesions that were rendered.
    if not (
        np.array_equal(labels.astype(int), crops.labels)
        and np.array_equal(groups, crops.patient_index)
        and np.allclose(latents[:, 1], [lesion.size_mm for lesion in crops.lesions])
    ):
        raise RuntimeError(
            f"cohort seed {spec.seed}: the latents do not line up with the rendered lesions"
        )
    return CohortInputs(
        seeds=np.full(len(crops.labels), spec.seed),
        patient_key=np.array([f"{spec.seed}/{p}" for p in crops.patient_index]),
        labels=np.asarray(crops.labels),
        patches=crops.patches(_variant_phases(cnn, phase), cnn.patch),
        roi_radius_mm=np.asarray(crops.roi_radius_mm, float),
        features=feature_rows(features["lesions"], radiomics_phases),
        latents=latents,
        oracle=oracle,
    )


def pool_seeds(test_seed: int, first: int = FIRST_POOL_SEED) -> Iterator[int]:
    """Cohort seeds of the training pool: ``first``, ``first + 1``, ..., never the test cohort's seed."""
    seed = first
    while True:
        if seed != test_seed:
            yield seed
        seed += 1


def training_pool(
    needed_lesions: int,
    test_seed: int,
    load: Callable[[int], CohortInputs],
    first_seed: int = FIRST_POOL_SEED,
    log=print,
) -> CohortInputs:
    """Independent cohorts (``load(seed)`` for :func:`pool_seeds`) until they hold ``needed_lesions`` lesions."""
    parts, total = [], 0
    for seed in pool_seeds(test_seed, first_seed):
        if total >= needed_lesions:
            break
        started = time.perf_counter()
        parts.append(load(seed))
        total += len(parts[-1])
        log(
            f"pool: cohort seed {seed}, {len(parts[-1])} lesions ({time.perf_counter() - started:.0f} s); "
            f"{total} of {needed_lesions}"
        )
    return CohortInputs.concatenate(parts)


def draw_by_patient(patient_key: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the lesions of randomly ordered whole patients, taken until they hold at least ``n`` lesions.

    A patient's lesions are all in the draw or all out of it, so a draw holds ``n`` lesions
    or one more (patients have one or two).
    """
    patients, lesion_patient = np.unique(patient_key, return_inverse=True)
    if n > len(patient_key):
        raise ValueError(f"the pool holds {len(patient_key)} lesions, fewer than {n}")
    counts = np.bincount(lesion_patient, minlength=len(patients))
    order = rng.permutation(len(patients))
    taken = order[: int(np.searchsorted(np.cumsum(counts[order]), n)) + 1]
    return np.flatnonzero(np.isin(lesion_patient, taken))


def held_out_aucs(
    train: CohortInputs,
    test: CohortInputs,
    phase: str,
    cnn: Experiment,
    radiomics_experiment: Experiment,
    seed: int,
) -> tuple[dict, dict]:
    """Each family trained on ``train`` and scored on ``test``: ({family: AUC}, {family: seconds})."""
    import keras

    from inference import radiomics, radiomics_training, training

    aucs, seconds = {}, {}
    started = time.perf_counter()
    model = training.fit_model(
        cnn,
        train.patches,
        train.labels,
        seed,
        training.Reporter(),
        roi_extent_mm=train.roi_radius_mm,
    )
    scores = training.predict_lesions(
        model, test.patches, cnn.batch_size, cnn.test_time_augmentation
    )
    aucs["cnn"], seconds["cnn"] = (
        empirical_auc(scores, test.labels == 1),
        time.perf_counter() - started,
    )
    del model
    keras.backend.clear_session()

    started = time.perf_counter()
    x, names = radiomics.feature_matrix(train.features)
    pipeline = radiomics_training.build_classifier(radiomics_experiment.classifier, seed).fit(
        x, train.labels
    )
    fitted = radiomics_training.RadiomicsModel(
        pipeline, names, _variant_phases(radiomics_experiment, phase)
    )
    aucs["radiomics"] = empirical_auc(fitted.predict(test.features), test.labels == 1)
    seconds["radiomics"] = time.perf_counter() - started

    for name, learner in learners().items():
        started = time.perf_counter()
        learner.fit(train.latents, train.labels)
        aucs[name] = empirical_auc(learner.predict_proba(test.latents)[:, 1], test.labels == 1)
        seconds[name] = time.perf_counter() - started
    return aucs, seconds


def learning_curve(
    pool: CohortInputs,
    test: CohortInputs,
    sizes,
    repeats: int,
    phase: str,
    cnn: Experiment,
    radiomics_experiment: Experiment,
    seed: int = 0,
    log=print,
) -> list[dict]:
    """One row per (size, draw): the draw's lesions, patients, benign lesions and each family's held-out AUC."""
    overlap = set(pool.seeds) & set(test.seeds)
    if overlap:
        raise ValueError(f"the test cohort's seed(s) {sorted(overlap)} are in the training pool")
    rows = []
    for n in sizes:
        for draw in range(repeats):
            chosen = draw_by_patient(pool.patient_key, n, np.random.default_rng([seed, n, draw]))
            train = pool.subset(chosen)
            aucs, seconds = held_out_aucs(
                train, test, phase, cnn, radiomics_experiment, cnn.seed + draw
            )
            row = {
                "size": n,
                "draw": draw,
                "lesions": len(train),
                "patients": len(set(train.patient_key)),
                "benign": int((train.labels == 0).sum()),
                "seeds": sorted(int(s) for s in set(train.seeds)),
                **aucs,
                "seconds": {k: round(v, 1) for k, v in seconds.items()},
            }
            rows.append(row)
            log(
                f"n = {n} draw {draw}: {row['lesions']} lesions ({row['benign']} benign) of {row['patients']} "
                f"patients; "
                + ", ".join(f"{f} {aucs[f]:.3f} ({seconds[f]:.0f} s)" for f in FAMILIES)
            )
    return rows


def summarise(rows: list[dict]) -> dict:
    """{size: {family: (mean, SD), "lesions": mean, "benign": mean, "draws": k}} (sample SD; 0 for one draw)."""
    out = {}
    for n in sorted({r["size"] for r in rows}):
        group = [r for r in rows if r["size"] == n]
        entry = {
            "draws": len(group),
            "lesions": float(np.mean([r["lesions"] for r in group])),
            "benign": float(np.mean([r["benign"] for r in group])),
        }
        for family in FAMILIES:
            values = np.array([r[family] for r in group], float)
            entry[family] = (
                float(values.mean()),
                float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            )
        out[n] = entry
    return out


def family_labels(phase: str, cnn: Experiment, radiomics_experiment: Experiment) -> dict:
    return {
        "cnn": f"CNN ({cnn.name} {phase}, {cnn.builder})",
        "radiomics": f"radiomics ({radiomics_experiment.name} {phase}, {radiomics_experiment.classifier.kind})",
        "forest": "random forest on the exact latents",
        "logistic": "spline logistic regression on the exact latents",
    }


def markdown_table(summary: dict, oracle: float, labels: dict) -> str:
    lines = [
        "| training lesions (benign) | draws | "
        + " | ".join(labels[f] for f in FAMILIES)
        + " | oracle |",
        "| --- | --- |" + " --- |" * (len(FAMILIES) + 1),
    ]
    for entry in summary.values():
        cells = [f"{entry[f][0]:.3f} ± {entry[f][1]:.3f}" for f in FAMILIES]
        lines.append(
            f"| {entry['lesions']:.0f} ({entry['benign']:.0f}) | {entry['draws']} | "
            + " | ".join(cells)
            + f" | {oracle:.3f} |"
        )
    return "\n".join(lines)


def plot_curve(summary: dict, oracle: float, labels: dict, path: Path, title: str) -> None:
    """Held-out AUC (mean, error bars one SD over draws) against training lesions, log-2 axis; oracle dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 5.6), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    lesions = np.array([entry["lesions"] for entry in summary.values()])
    styles = {
        "cnn": ("C0", "o", "-"),
        "radiomics": ("C1", "s", "-"),
        "forest": ("C2", "^", "--"),
        "logistic": ("C3", "v", "--"),
    }
    for family in FAMILIES:
        colour, marker, line = styles[family]
        mean = np.array([entry[family][0] for entry in summary.values()])
        sd = np.array([entry[family][1] for entry in summary.values()])
        axes.errorbar(
            lesions,
            mean,
            yerr=sd,
            color=colour,
            marker=marker,
            linestyle=line,
            capsize=3,
            label=labels[family],
        )
    axes.axhline(
        oracle, color="black", linestyle=":", label=f"oracle of the test cohort ({oracle:.3f})"
    )
    axes.axhline(0.5, color="grey", linewidth=0.8)
    axes.set_xscale("log", base=2)
    axes.set_xticks(lesions, [f"{v:.0f}" for v in lesions])
    axes.minorticks_off()
    axes.set_ylim(0.4, 1.0)
    axes.set_xlabel("training lesions (independent synthetic cohorts, drawn by patient)")
    axes.set_ylabel("held-out AUC on the test cohort")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--phase",
        choices=PHASES + ("ALL",),
        default="CM",
        help="the variant of each experiment; ALL: the four phases stacked, overall oracle",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", help=f"training lesions per draw (default {DEFAULT_SIZES})"
    )
    parser.add_argument("--repeats", type=int, help="draws per size (default 2)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: sizes {QUICK_SIZES}, 1 draw, {QUICK_EPOCHS} CNN epochs (unless given)",
    )
    parser.add_argument("--cnn-experiment", default="source-study")
    parser.add_argument(
        "--set", action="append", default=[], help="CNN experiment override, e.g. epochs=40"
    )
    parser.add_argument("--radiomics-experiment", default="radiomics")
    parser.add_argument(
        "--radiomics-set",
        action="append",
        default=[],
        help="radiomics experiment override, e.g. classifier.C=1",
    )
    parser.add_argument("--test-seed", type=int, default=0)
    parser.add_argument(
        "--patients", type=int, default=160, help="patients per cohort (test and pool)"
    )
    parser.add_argument("--size", type=int, default=256, help="image matrix of every cohort")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "learning_curve.png"))
    parser.add_argument("--json", help="write the per-draw rows and the summary to this JSON file")
    args = parser.parse_args(argv)

    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeats = args.repeats or (1 if args.quick else 2)
    cnn_overrides = {
        **({"epochs": QUICK_EPOCHS} if args.quick else {}),
        **parse_overrides(args.set),
    }
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cnn = get_experiment(args.cnn_experiment, cnn_overrides)
    radiomics_experiment = get_experiment(
        args.radiomics_experiment, parse_overrides(args.radiomics_set)
    )
    if cnn.family != "cnn" or radiomics_experiment.family != "radiomics":
        parser.error(
            "--cnn-experiment must be a CNN experiment and --radiomics-experiment a radiomics one"
        )
    feature_cache = ROOT / "var" / "benchmarks" / "radiomics"
    print(
        f"{args.phase}: sizes {list(sizes)}, {repeats} draw(s) each; CNN {cnn.name} {json.dumps(cnn_overrides)}, "
        f"radiomics {radiomics_experiment.name} {json.dumps(parse_overrides(args.radiomics_set))}; test cohort seed "
        f"{args.test_seed}, cohorts of {args.patients} patients at {args.size} px",
        flush=True,
    )

    def load(seed: int) -> CohortInputs:
        crops = cached_crops(seed, args.patients, args.size)
        return cohort_inputs(crops, args.phase, cnn, radiomics_experiment, feature_cache)

    started = time.perf_counter()
    test = load(args.test_seed)
    print(
        f"test cohort seed {args.test_seed}: {len(test)} lesions ({int((test.labels == 0).sum())} benign), "
        f"oracle {test.oracle:.3f} ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    pool = training_pool(max(sizes), args.test_seed, load, log=lambda text: print(text, flush=True))
    rows = learning_curve(
        pool,
        test,
        sizes,
        repeats,
        args.phase,
        cnn,
        radiomics_experiment,
        args.seed,
        log=lambda text: print(text, flush=True),
    )
    summary = summarise(rows)
    labels = family_labels(args.phase, cnn, radiomics_experiment)
    title = (
        f"{args.phase}: trained on n lesions of independent synthetic cohorts ({args.size} px),\n"
        f"tested on cohort seed {args.test_seed} ({len(test)} lesions); mean ± SD of {repeats} draw(s) per size"
    )
    plot_curve(summary, test.oracle, labels, Path(args.plot), title)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": rows,
                    "summary": {str(k): v for k, v in summary.items()},
                    "oracle": test.oracle,
                },
                indent=1,
            )
        )
    print(f"\nplot: {args.plot}; {time.perf_counter() - started:.0f} s in all\n")
    print(markdown_table(summary, test.oracle, labels))


if __name__ == "__main__":
    main()
