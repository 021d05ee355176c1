"""The demo's model: a CNN trained on an independent synthetic cohort that never enters the archive.

``make demo`` imports a small synthetic reader study (:data:`DEMO_SUBTYPE_MIX`, seed 0).
A model cross-validated on those few lesions learns little, so the comparison page
would open on a model no better than chance. Instead :func:`train_demo_model` renders a
second, larger cohort in memory (another seed, same case mix and matrix; never written
as DICOM, never imported), trains the experiment's variant on it with the portal's own
training code (:func:`inference.training.fit_model` on patches cut by
:mod:`portal.synthetic` exactly as the archive path cuts them), registers the result as
an ordinary, active ModelVersion whose training data says where it came from, and lets
the normal scoring path (:func:`inference.tasks.score`) score every lesion of the
archive. None of the demo reader study's patients is in its training data, so the
comparison page uses those final-model scores as held-out scores.

Keras is imported inside :func:`train_demo_model` only (a Celery task or a command
calls it).
"""
from __future__ import annotations

import logging
import time

from inference.experiments import ExperimentError, get_experiment

from .cohort import BENIGN_SUBTYPES, default_subtype_mix

logger = logging.getLogger(__name__)

# The demo model's experiment and variant (the ``demo_setup --model-experiment/--model-variant`` defaults).
DEMO_MODEL_EXPERIMENT = "source-study"
DEMO_MODEL_VARIANT = "CM"



def with_benign_share(mix: dict[str, float], share: float) -> dict[str, float]:
    """``mix`` rescaled so that benign subtypes make up ``share``, each class keeping its inner proportions."""
    benign = sum(weight for subtype, weight in mix.items() if subtype in BENIGN_SUBTYPES)
    total = sum(mix.values())
    return {subtype: weight / total * (share / (benign / total) if subtype in BENIGN_SUBTYPES
                                       else (1 - share) / (1 - benign / total))
            for subtype, weight in mix.items()}


# portal.cohort's default mix within each class (ccRCC 56 : papillary 17 : chromophobe 5 : other 2;
# oncocytoma 13 : fat-poor AML 7), with the benign share raised from 20 % to 40 %, so that the
# demo's figures rest on enough benign lesions: seed 0's first 48 patients have 18 benign of
# 51 lesions (35 %), 3-4 in each of 5 folds (at 35 % they would have 15, 29 %).
DEMO_BENIGN_SHARE = 0.40
DEMO_SUBTYPE_MIX = with_benign_share(default_subtype_mix(), DEMO_BENIGN_SHARE)

# The independent cohort the demo model learns from: another seed than the demo's (0), more patients.
TRAINING_COHORT_SEED = 1000
TRAINING_COHORT_PATIENTS = 300


def mix_argument(mix: dict[str, float]) -> str:
    """``make_cohort --mix`` text of a subtype mix."""
    return ",".join(f"{subtype}={100 * weight:.6g}" for subtype, weight in mix.items())


def demo_experiment(experiment_name: str, variant_name: str, overrides: dict | None = None):
    """(experiment, variant) for the demo model; ExperimentError when it is unknown or not a CNN."""
    experiment = get_experiment(experiment_name, overrides)
    variant = experiment.variant(variant_name)
    if experiment.family != "cnn":
        raise ExperimentError(
            f"experiment {experiment.name} is a {experiment.family} model; the demo model is trained on "
            "rendered image patches and needs a CNN experiment")
    return experiment, variant


def independent_cohort(patients: int, seed: int, size: int) -> dict:
    """What the demo model's training data records about its cohort (JSON)."""
    return {
        "kind": "independent synthetic cohort",
        "seed": seed,
        "patients": patients,
        "size": size,
        "subtype_mix": dict(DEMO_SUBTYPE_MIX),
        "in_archive": False,
    }


def describe_cohort(cohort: dict, n_lesions: int | None = None) -> str:
    """One line for logs, the models page and the comparison page."""
    lesions = f", {n_lesions} lesions" if n_lesions is not None else ""
    return (f"independent synthetic cohort seed {cohort['seed']}, {cohort['patients']} patients{lesions}, "
            f"{cohort['size']} px, not in the archive")


def existing_demo_model(experiment_name: str, variant_name: str, patients: int, seed: int):
    """The ModelVersion already trained on this independent cohort, or None (the task's status guard)."""
    from inference.models import ModelVersion

    return ModelVersion.objects.filter(
        experiment_name=experiment_name, variant=variant_name,
        training_data__independent_cohort__seed=seed, training_data__independent_cohort__patients=patients,
    ).order_by("-id").first()


def train_demo_model(experiment_name: str = DEMO_MODEL_EXPERIMENT, variant_name: str = DEMO_MODEL_VARIANT,
                     patients: int = TRAINING_COHORT_PATIENTS, seed: int = TRAINING_COHORT_SEED, size: int = 256,
                     overrides: dict | None = None):
    """Train the demo model on an independent cohort rendered in memory, activate it, score the archive.

    Returns the new ModelVersion, or the existing one when this cohort already gave a
    model (a repeated call trains nothing).
    """
    experiment, variant = demo_experiment(experiment_name, variant_name, overrides)
    existing = existing_demo_model(experiment.name, variant.name, patients, seed)
    if existing is not None:
        logger.info("demo model: %s was already trained on this cohort; nothing to do", existing)
        return existing
    from inference import services, training
    from inference.tasks import score

    from .cohort import CohortSpec
    from .synthetic import lesion_crops

    cohort = independent_cohort(patients, seed, size)
    timings = {}
    started = time.perf_counter()
    crops = lesion_crops(CohortSpec(patients=patients, seed=seed, size=size, subtype_mix=DEMO_SUBTYPE_MIX))
    patches = crops.patches(variant.phases, experiment.patch)
    timings["render_s"] = round(time.perf_counter() - started, 3)
    labels = crops.labels
    logger.info("demo model: %s rendered (%d malignant) in %.0f s; training %s/%s", describe_cohort(cohort, len(labels)),
                int(labels.sum()), timings["render_s"], experiment.name, variant.name)

    started = time.perf_counter()
    model = training.fit_model(experiment, patches, labels, experiment.seed, training.Reporter())
    timings["fit_s"] = round(time.perf_counter() - started, 3)
    stored, sha256 = services.save_artifact(lambda path: training.save_model(model, path), experiment.name, variant.name,
                                            f"independent-seed{seed}-p{patients}", ".keras")
    n_malignant = int(labels.sum())
    version = services.register_model_version(
        experiment=experiment,
        variant=variant,
        artifact=stored,
        artifact_sha256=sha256,
        metrics={
            "oof_auc": None,
            "fold_auc": {},
            "n_lesions": int(len(labels)),
            "n_malignant": n_malignant,
            "n_benign": int(len(labels)) - n_malignant,
            "n_folds": 0,
            "timings": timings,
        },
        training_data={
            "source": describe_cohort(cohort, len(labels)),
            "independent_cohort": cohort,
            "lesions": [],  # no lesion of the archive
            "excluded": [],
        },
        activate=True,
    )
    logger.info("demo model: stored and activated %s (%s); scoring the archive's lesions", version, stored)
    started = time.perf_counter()
    scored = score(model_version_pk=version.pk)
    logger.info("demo model: %s scored %d lesions in %.0f s", version, scored, time.perf_counter() - started)
    return version
