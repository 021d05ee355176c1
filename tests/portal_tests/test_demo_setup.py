"""``manage.py demo_setup``: a demo whose model learned from patients the reader study does not hold, and whose
simulated readers read again aided by it."""

import html
import io

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from annotations.models import ReaderCall, ReaderStudy, Session
from cohort.importer import cohort_lesions
from cohort.latents import sample_cohort
from cohort.management.commands.make_cohort import parse_mix
from cohort.readers import simulate_aided_reader_calls
from cohort.spec import CohortSpec
from evaluation import services as evaluation
from evaluation.inputs import gather_inputs
from inference.experiments import get_experiment
from inference.folds import assign_folds
from inference.models import ModelVersion, Prediction, PredictionKind, ReaderStudyModel
from portal import demo_model
from portal import tasks as demo_tasks
from portal.management.commands import demo_setup

pytestmark = pytest.mark.django_db

# A small demo: 20 patients (21 lesions, 4 benign) at 128 px, a model trained on 200 other
# patients for 15 epochs, and a 3-fold training run on the demo's own lesions.
SMALL_DEMO = [
    "--patients",
    "20",
    "--size",
    "128",
    "--training-patients",
    "200",
    "--model-set",
    "epochs=15",
    "--model-set",
    "folds=3",
    "--inline",
]


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.DEBUG = True  # the demo (its users) is for DEBUG set-ups only
    return tmp_path


def _setup(*arguments):
    out = io.StringIO()
    call_command("demo_setup", *arguments, stdout=out)
    return out.getvalue()


def test_a_small_demo_compares_readers_with_models_trained_on_other_patients_that_beat_chance_and_aided_with_unaided(
    var_dir, client
):
    _setup(*SMALL_DEMO)
    reader_study = ReaderStudy.objects.get(name=demo_setup.DEMO_READER_STUDY)
    models = ModelVersion.objects.filter(is_active=True, variant=demo_model.DEMO_MODEL_VARIANT)
    assert sorted(m.experiment_name for m in models) == ["radiomics", "source-study"]
    for model in models:
        cohort = model.training_data["independent_cohort"]
        assert (cohort["seed"], cohort["patients"], cohort["in_archive"]) == (
            demo_model.TRAINING_COHORT_SEED,
            200,
            False,
        )
        assert model.training_data["lesions"] == [] and model.artifact_sha256
        assert not model.predictions.filter(in_training_data=True).exists()

    inputs = gather_inputs(reader_study)
    assert {m.pk for m in inputs.analysed_models} == {m.pk for m in models}
    assert all(m.scores_source == "held-out final-model" for m in inputs.analysed_models)
    assert len(inputs.analysed_lesions) == 21 and len(inputs.analysed_readers) == 3
    result, _ = evaluation.compute_result(inputs)
    for compared in inputs.analysed_models:
        auc = next(
            row["auc"] for row in result["subgroups"][0]["auc"] if row["key"] == compared.key
        )
        assert auc > 0.5, compared.key

    # A sequential study: the demo CNN frozen for it, each simulated reader's aided call on every lesion
    # (moved toward the CNN's held-out score), the aided − unaided section on the comparison page.
    demo_cnn = models.get(experiment_name=demo_model.DEMO_MODEL_EXPERIMENT)
    assert reader_study.design == ReaderStudy.Design.SEQUENTIAL
    assert ReaderStudyModel.objects.get(reader_study=reader_study).model_version == demo_cnn
    aided = ReaderCall.objects.filter(reader_study=reader_study, session=Session.AIDED)
    assert aided.count() == 3 * 21 and all(
        call.simulated and call.locked and call.blinded for call in aided
    )
    assert not ReaderCall.objects.filter(
        reader_study=reader_study, simulated=False
    ).exists()  # real readers: the UI
    block = result["aided_vs_unaided"]
    assert sorted(block["readers"]) == [
        "Simulated reader 1",
        "Simulated reader 2",
        "Simulated reader 3",
    ]
    assert block["frozen_model"]["id"] == demo_cnn.pk and block["auc"]["sentence"].startswith(
        "Readers' mean AUC"
    )
    assert block["call_changes"]["pooled"]["reads"] == 3 * 21
    client.force_login(get_user_model().objects.get(username="coordinator"))
    page = html.unescape(
        client.get(f"/reader-studies/{reader_study.pk}/comparison/").content.decode()
    )
    assert "Aided versus unaided reading" in page and block["auc"]["sentence"] in page

    cross_validated = ModelVersion.objects.get(training_run__isnull=False)
    assert not cross_validated.is_active  # the demo model stays the one compared
    benign_per_fold = {}
    for entry in cross_validated.training_data["lesions"]:
        benign_per_fold.setdefault(entry["fold"], 0)
        benign_per_fold[entry["fold"]] += not entry["malignant"]
    assert sorted(benign_per_fold) == [1, 2, 3] and min(benign_per_fold.values()) >= 1


def test_the_default_demo_cohort_is_at_least_a_quarter_benign_and_every_fold_of_its_training_run_holds_benign_lesions():
    spec = CohortSpec(
        patients=demo_setup.DEMO_PATIENTS,
        seed=demo_setup.DEMO_COHORT_SEED,
        size=256,
        subtype_mix=parse_mix(demo_model.mix_argument(demo_model.DEMO_SUBTYPE_MIX)),
    )
    lesions = [(case.index, lesion) for case in sample_cohort(spec) for lesion in case.lesions]
    labels = np.array([int(lesion.malignant) for _, lesion in lesions])
    assert (labels == 0).mean() >= 0.25
    experiment = get_experiment(demo_model.DEMO_MODEL_EXPERIMENT)
    folds = assign_folds(
        labels, [patient for patient, _ in lesions], experiment.folds, experiment.seed
    )
    assert all(((folds == fold) & (labels == 0)).any() for fold in range(1, experiment.folds + 1))


def test_without_inline_the_demo_model_is_queued_for_the_worker_with_its_independent_cohort(
    var_dir, monkeypatch
):
    ReaderStudy.objects.create(name=demo_setup.DEMO_READER_STUDY)  # imported earlier
    queued = []
    monkeypatch.setattr(
        demo_setup.train_demo_model_task, "apply_async", lambda kwargs: queued.append(kwargs)
    )
    out = _setup()
    assert queued == [
        {
            "experiment_name": "source-study",
            "variant_name": "CM",
            "patients": 300,
            "seed": 1000,
            "size": 256,
            "overrides": {},
        }
    ]
    assert "independent synthetic cohort seed 1000, 300 patients" in out


def test_a_demo_model_already_trained_on_the_cohort_is_not_trained_again(var_dir):
    existing = ModelVersion.objects.create(
        experiment_name="source-study",
        experiment={},
        variant="CM",
        phases=["CM"],
        builder="small_cnn",
        version=1,
        artifact="a.keras",
        artifact_sha256="0" * 64,
        training_data={
            "independent_cohort": demo_model.independent_cohort(300, 1000, 256),
            "lesions": [],
        },
    )
    assert (
        demo_model.train_demo_model("source-study", "CM", patients=300, seed=1000, also=())
        == existing
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--training-seed", "0"], "the demo cohort's own seed"),
        (["--training-patients", "0"], "--training-patients must be at least 1"),
        (["--model-variant", "XX"], "has no variant 'XX'"),
        (["--model-experiment", "no-such-experiment"], "unknown experiment"),
        (["--model-set", "epochs=0"], "epochs: must be from 1 to 500"),
        (["--patients", "3"], "--patients must be at least 5"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(var_dir, arguments, message):
    with pytest.raises(CommandError, match=message):
        _setup(*arguments)
    assert not get_user_model().objects.exists()
    assert not ReaderStudy.objects.exists() and not ModelVersion.objects.exists()


def _existing_demo_models():
    """Both demo models as if the worker had trained them on the default independent cohort (nothing to train)."""
    cohort = {"independent_cohort": demo_model.independent_cohort(300, 1000, 256), "lesions": []}
    return [
        ModelVersion.objects.create(
            experiment_name=name,
            experiment={},
            variant="CM",
            phases=["CM"],
            builder=builder,
            version=1,
            artifact="a",
            artifact_sha256="0" * 64,
            training_data=cohort,
            is_active=True,
        )
        for name, builder in (("source-study", "small_cnn"), ("radiomics", "radiomics"))
    ]


def test_the_worker_task_freezes_the_demo_model_and_the_simulated_readers_read_aided_with_its_scores(
    var_dir,
):
    """The task path (no --inline): after the demo model is stored and has scored the lesions, the simulated
    readers' aided calls follow cohort.readers.simulate_aided_reader_calls with its scores; a second run adds none."""
    call_command("create_demo_users", stdout=io.StringIO())
    call_command(
        "make_cohort",
        "--out",
        str(var_dir / "cohort"),
        "--patients",
        "3",
        "--seed",
        "0",
        "--size",
        "64",
        "--slices",
        "24",
        "--mix",
        demo_model.mix_argument(demo_model.DEMO_SUBTYPE_MIX),
        "--import",
        "--user",
        "admin",
        "--readers",
        "reader1",
        "--simulate-readers",
        "3",
        "--design",
        "sequential",
        "--reader-study",
        demo_setup.DEMO_READER_STUDY,
        verbosity=0,
    )
    reader_study = ReaderStudy.objects.get(name=demo_setup.DEMO_READER_STUDY)
    cnn, radiomics = _existing_demo_models()
    lesions = cohort_lesions(reader_study)
    for number, lesion in enumerate(lesions.values()):
        for version, score in ((cnn, 0.1 + 0.2 * number), (radiomics, 0.5)):
            Prediction.objects.create(
                model_version=version, lesion=lesion, kind=PredictionKind.FINAL, score=score
            )
    arguments = {
        "experiment_name": "source-study",
        "variant_name": "CM",
        "patients": 300,
        "seed": 1000,
        "size": 256,
    }
    assert demo_tasks.train_demo_model(**arguments) == cnn.pk

    assert ReaderStudyModel.objects.get(reader_study=reader_study).model_version == cnn
    generated = demo_model.demo_cohort_lesions(3)
    scores = {
        lesion_id: cnn.predictions.get(lesion=lesion).score for lesion_id, lesion in lesions.items()
    }
    expected = simulate_aided_reader_calls(
        generated,
        3,
        demo_model.DEMO_COHORT_SEED,
        [scores[lesion.lesion_id] for lesion in generated],
    )
    stored = {
        (call.reader.username, call.lesion_id): call.probability
        for call in ReaderCall.objects.filter(session=Session.AIDED).select_related("reader")
    }
    assert stored == {
        (f"simulated-reader-{c.reader + 1}", lesions[c.lesion_id].pk): round(c.probability)
        for c in expected.aided
    }
    assert demo_tasks.train_demo_model(**arguments) == cnn.pk
    assert ReaderCall.objects.filter(session=Session.AIDED).count() == len(stored)
    assert "0 simulated aided calls recorded" in _setup(
        "--inline"
    )  # demo_setup again: the model exists, no new call


def test_the_demo_model_without_a_score_for_every_lesion_leaves_no_aided_calls_and_says_why(
    var_dir,
):
    call_command("create_demo_users", stdout=io.StringIO())
    call_command(
        "make_cohort",
        "--out",
        str(var_dir / "cohort"),
        "--patients",
        "2",
        "--seed",
        "0",
        "--size",
        "64",
        "--slices",
        "24",
        "--mix",
        demo_model.mix_argument(demo_model.DEMO_SUBTYPE_MIX),
        "--import",
        "--user",
        "admin",
        "--simulate-readers",
        "3",
        "--design",
        "sequential",
        "--reader-study",
        demo_setup.DEMO_READER_STUDY,
        verbosity=0,
    )
    cnn, _ = _existing_demo_models()
    errors = io.StringIO()
    call_command("demo_setup", "--inline", stdout=io.StringIO(), stderr=errors)
    assert "No simulated aided calls" in errors.getvalue()
    assert "no model score for lesion(s) SRM-0001-L1" in errors.getvalue()
    assert not ReaderCall.objects.filter(session=Session.AIDED).exists()
