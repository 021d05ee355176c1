"""The demo's models: a CNN and a radiomics model trained on an independent synthetic cohort
that never enters the archive.

``make demo`` imports a small synthetic reader study (:data:`DEMO_SUBTYPE_MIX`, seed 0).
A model cross-validated on those few lesions learns little, so the comparison page
would open on a model no better than chance. Instead :func:`train_demo_model` renders a
second, larger cohort in memory (another seed, same case mix and matrix; never written
as DICOM, never imported), trains the experiment's variant on it with the portal's own
training code (:func:`inference.training.fit_model` on patches cut by
:mod:`inference.synthetic` exactly as the archive path cuts them), registers the result as
an ordinary, active ModelVersion whose training data says where it came from, and lets
the normal scoring path (:func:`inference.tasks.score`) score every lesion of the
archive. None of the demo reader study's patients is in its training data, so the
comparison page uses those final-model scores as held-out scores.

Once the demo model has scored the lesions, :func:`simulate_demo_aided_reading` freezes
it for the demo reader study (a sequential one) and records the simulated readers'
aided calls with its scores, so the comparison page shows aided versus unaided reading.

Keras is imported inside :func:`train_demo_model` only (a Celery task or a command
calls it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from archive.vocabulary import BENIGN_SUBTYPES
from cohort.figures import default_subtype_mix
from inference.experiments import get_experiment

logger = logging.getLogger(__name__)

# The demo model's experiment and variant (the ``demo_setup --model-experiment/--model-variant`` defaults).
DEMO_MODEL_EXPERIMENT = "source-study"
DEMO_MODEL_VARIANT = "CM"
# Trained beside it, on the same cohort and variant: the radiomics family, the stronger one at a few
# hundred lesions (benchmarks/learning_curve.py), so the demo compares readers with both families.
DEMO_ALSO_EXPERIMENTS = ("radiomics",)

# The demo reader study: a sequential one (unaided, then aided with the demo model), seed 0,
# read by DEMO_SIMULATED_READERS simulated readers and the demo's reader accounts.
DEMO_READER_STUDY = "Demo reader study (synthetic cohort)"
DEMO_COHORT_SEED = 0
DEMO_SIMULATED_READERS = 3


def with_benign_share(mix: dict[str, float], share: float) -> dict[str, float]:
    """``mix`` rescaled so that benign subtypes make up ``share``, each class keeping its inner proportions."""
    benign = sum(weight for subtype, weight in mix.items() if subtype in BENIGN_SUBTYPES)
    total = sum(mix.values())
    return {
        subtype: weight
        / total
        * (
            share / (benign / total)
            if subtype in BENIGN_SUBTYPES
            else (1 - share) / (1 - benign / total)
        )
        for subtype, weight in mix.items()
    }


# the cohort's default mix (cohort.figures) within each class (ccRCC 56 : papillary 17 : chromophobe 5 : other 2;
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
    """(experiment, variant) for a demo model (a CNN or a radiomics experiment); ExperimentError when unknown."""
    experiment = get_experiment(experiment_name, overrides)
    return experiment, experiment.variant(variant_name)


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
    return (
        f"independent synthetic cohort seed {cohort['seed']}, {cohort['patients']} patients{lesions}, "
        f"{cohort['size']} px, not in the archive"
    )


def existing_demo_model(experiment_name: str, variant_name: str, patients: int, seed: int):
    """The ModelVersion already trained on this independent cohort, or None (the task's status guard)."""
    from inference.models import ModelVersion

    return (
        ModelVersion.objects.filter(
            experiment_name=experiment_name,
            variant=variant_name,
            training_data__independent_cohort__seed=seed,
            training_data__independent_cohort__patients=patients,
        )
        .order_by("-id")
        .first()
    )


def _fit(experiment, variant, crops):
    """``(save(path) -> sha256, suffix)`` of the experiment's variant fitted on every lesion of ``crops``."""
    if experiment.family == "radiomics":
        from inference.radiomics import feature_matrix
        from inference.radiomics_training import RadiomicsModel, build_classifier

        x, names = feature_matrix(crops.feature_rows(variant.phases, experiment.radiomics))
        pipeline = build_classifier(experiment.classifier, experiment.seed).fit(x, crops.labels)
        return RadiomicsModel(pipeline, names, tuple(variant.phases)).save, ".joblib"
    from inference import training

    patches = crops.patches(variant.phases, experiment.patch)
    model = training.fit_model(
        experiment,
        patches,
        crops.labels,
        experiment.seed,
        training.Reporter(),
        roi_extent_mm=crops.roi_radius_mm,
    )
    return (lambda path: training.save_model(model, path)), ".keras"


def train_demo_model(
    experiment_name: str = DEMO_MODEL_EXPERIMENT,
    variant_name: str = DEMO_MODEL_VARIANT,
    patients: int = TRAINING_COHORT_PATIENTS,
    seed: int = TRAINING_COHORT_SEED,
    size: int = 256,
    overrides: dict | None = None,
    also: tuple[str, ...] = DEMO_ALSO_EXPERIMENTS,
):
    """Train the demo model(s) on an independent cohort rendered in memory, activate them, score the archive.

    ``experiment_name`` (with ``overrides``) and each experiment of ``also`` (unchanged)
    are trained on the same cohort and variant. Returns the ModelVersion of
    ``experiment_name``; a model this cohort already gave is reused (a repeated call
    trains nothing).
    """
    wanted = [demo_experiment(experiment_name, variant_name, overrides)]
    wanted += [demo_experiment(name, variant_name) for name in also if name != experiment_name]
    versions = {}
    for experiment, variant in wanted:
        existing = existing_demo_model(experiment.name, variant.name, patients, seed)
        if existing is not None:
            logger.info(
                "demo model: %s was already trained on this cohort; nothing to do", existing
            )
            versions[experiment.name] = existing
    if len(versions) == len(wanted):
        return versions[wanted[0][0].name]
    from cohort.spec import CohortSpec
    from inference import services
    from inference.synthetic import lesion_crops
    from inference.tasks import score

    cohort = independent_cohort(patients, seed, size)
    started = time.perf_counter()
    crops = lesion_crops(
        CohortSpec(patients=patients, seed=seed, size=size, subtype_mix=DEMO_SUBTYPE_MIX)
    )
    render_s = round(time.perf_counter() - started, 3)
    labels = crops.labels
    n_malignant = int(labels.sum())
    logger.info(
        "demo model: %s rendered (%d malignant) in %.0f s",
        describe_cohort(cohort, len(labels)),
        n_malignant,
        render_s,
    )
    for experiment, variant in wanted:
        if experiment.name in versions:
            continue
        started = time.perf_counter()
        save, suffix = _fit(experiment, variant, crops)
        timings = {"render_s": render_s, "fit_s": round(time.perf_counter() - started, 3)}
        stored, sha256 = services.save_artifact(
            save, experiment.name, variant.name, f"independent-seed{seed}-p{patients}", suffix
        )
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
        logger.info(
            "demo model: stored and activated %s (%s); scoring the archive's lesions",
            version,
            stored,
        )
        started = time.perf_counter()
        scored = score(model_version_pk=version.pk)
        logger.info(
            "demo model: %s scored %d lesions in %.0f s",
            version,
            scored,
            time.perf_counter() - started,
        )
        versions[experiment.name] = version
    return versions[wanted[0][0].name]


@dataclass(frozen=True)
class AidedDemo:
    """What :func:`simulate_demo_aided_reading` did: the model version aided readers see, calls recorded."""

    model_version: object
    recorded: int


def demo_cohort_lesions(patients: int):
    """The generator's lesions of the demo cohort's first ``patients`` patients, in import order (latents only)."""
    from cohort.latents import sample_cohort
    from cohort.management.commands.make_cohort import parse_mix
    from cohort.spec import CohortSpec

    # The mix exactly as make_cohort received it from demo_setup (text, then parsed).
    spec = CohortSpec(
        patients=patients,
        seed=DEMO_COHORT_SEED,
        subtype_mix=parse_mix(mix_argument(DEMO_SUBTYPE_MIX)),
    )
    return [lesion for case in sample_cohort(spec) for lesion in case.lesions]


def simulate_demo_aided_reading(
    version, reader_study_name: str = DEMO_READER_STUDY, readers: int = DEMO_SIMULATED_READERS
) -> AidedDemo | None:
    """The demo's simulated readers read aided with the demo model ``version`` (a ModelVersion that scored the lesions).

    Freezes ``version`` as the model the sequential demo reader study shows in its aided
    session (a version frozen earlier stays once aided calls exist) and records each
    simulated reader's aided call on every lesion with the score the model-output
    endpoint serves (:func:`inference.aided.aided_model_output`: out-of-fold where
    there is one, else the final model's), following
    :func:`cohort.readers.simulate_aided_reader_calls`; the calls are locked after the
    reader's unaided call and marked simulated. Real readers' calls are not touched.
    Idempotent. None when there is no demo reader study or it is unaided only (a demo
    imported before aided reading). :class:`cohort.importer.CohortImportError`
    when the calls cannot be simulated (a lesion without a score, other unaided calls).
    """
    from annotations.errors import Conflict
    from annotations.models import ReaderStudy
    from cohort.importer import cohort_lesions, record_simulated_aided_calls
    from inference import aided

    reader_study = ReaderStudy.objects.filter(name=reader_study_name).first()
    if reader_study is None or reader_study.design != ReaderStudy.Design.SEQUENTIAL:
        return None
    try:
        frozen = aided.freeze_model_version(reader_study, version.pk)
    except Conflict:  # aided calls were made with the version frozen earlier: it stays
        frozen = aided.frozen_model_version(reader_study)
    lesions = demo_cohort_lesions(reader_study.cases.count())
    rows = cohort_lesions(reader_study)
    scores = {}
    for lesion in lesions:
        if lesion.lesion_id in rows:
            try:
                output = aided.aided_model_output(reader_study, rows[lesion.lesion_id])
                scores[lesion.lesion_id] = output["probability"]
            except LookupError:
                pass  # record_simulated_aided_calls names the lesions without a score
    recorded = record_simulated_aided_calls(
        reader_study, lesions, readers, DEMO_COHORT_SEED, scores
    )
    logger.info("demo aided reading: %d simulated aided calls with %s", recorded, frozen)
    return AidedDemo(frozen, recorded)
