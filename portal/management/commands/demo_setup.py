"""Everything ``make demo`` needs in the database: demo users, the demo cohort, a model that has learned.

The demo reader study is a sequential one (unaided, then aided) of a synthetic cohort
(seed 0) drawn with a benign share of 40 % (:data:`portal.demo_model.DEMO_SUBTYPE_MIX`)
and three simulated readers. Its model is
trained on an independent synthetic cohort rendered in memory and never imported
(:func:`portal.demo_model.train_demo_model`), so none of the reader study's patients
is in its training data; a cross-validated training run on the demo's own lesions is
queued beside it to show the training page at work. Once that model has scored the
lesions it is frozen for the reader study and the simulated readers record their aided
calls with its scores (:func:`portal.demo_model.simulate_demo_aided_reading`; here with
``--inline`` or an existing model, otherwise by the worker's task).
"""

import shutil

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from annotations.models import ReaderStudy
from cohort.importer import CohortImportError
from cohort.spec import CohortSpec
from inference.experiments import ExperimentError, parse_overrides
from portal.demo_model import (
    DEMO_ALSO_EXPERIMENTS,
    DEMO_BENIGN_SHARE,
    DEMO_COHORT_SEED,
    DEMO_MODEL_EXPERIMENT,
    DEMO_MODEL_VARIANT,
    DEMO_READER_STUDY,
    DEMO_SIMULATED_READERS,
    DEMO_SUBTYPE_MIX,
    TRAINING_COHORT_PATIENTS,
    TRAINING_COHORT_SEED,
    demo_experiment,
    describe_cohort,
    existing_demo_model,
    independent_cohort,
    mix_argument,
    simulate_demo_aided_reading,
    train_demo_model,
)
from portal.management.commands.create_demo_users import DEMO_USERS
from portal.tasks import train_demo_model as train_demo_model_task

DEMO_PATIENTS = 48


class Command(BaseCommand):
    help = (
        "Create the demo users; the first time, generate and import the demo cohort (40 % benign mix, a sequential "
        "reader study with 3 simulated readers); train the demo model on an independent synthetic cohort (queued "
        "for the worker, or --inline), freeze it for the reader study and record the simulated readers' aided "
        "calls with its scores; queue a cross-validated training run on the demo's own lesions."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--patients",
            type=int,
            default=DEMO_PATIENTS,
            help=f"demo cohort (default {DEMO_PATIENTS})",
        )
        parser.add_argument(
            "--size",
            type=int,
            default=256,
            help="matrix of the demo images (and of the model's cohort)",
        )
        parser.add_argument(
            "--no-training", action="store_true", help="import only: no demo model, no training run"
        )
        parser.add_argument(
            "--model-experiment",
            default=DEMO_MODEL_EXPERIMENT,
            help=f"experiment of the demo model and the training run (default {DEMO_MODEL_EXPERIMENT})",
        )
        parser.add_argument(
            "--model-variant",
            default=DEMO_MODEL_VARIANT,
            help=f"variant of the demo model and the training run (default {DEMO_MODEL_VARIANT})",
        )
        parser.add_argument(
            "--model-set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="experiment override for both, as train --set (e.g. epochs=3)",
        )
        parser.add_argument(
            "--training-patients",
            type=int,
            default=TRAINING_COHORT_PATIENTS,
            help=f"patients of the demo model's independent cohort (default {TRAINING_COHORT_PATIENTS})",
        )
        parser.add_argument(
            "--training-seed",
            type=int,
            default=TRAINING_COHORT_SEED,
            help=f"seed of that cohort (default {TRAINING_COHORT_SEED}; not the demo's {DEMO_COHORT_SEED})",
        )
        parser.add_argument(
            "--inline",
            action="store_true",
            help="train the demo model and the training run in this process (no worker needed)",
        )

    def handle(self, *args, **options):
        overrides = self._checked(options)
        call_command("create_demo_users", stdout=self.stdout)
        imported = not ReaderStudy.objects.filter(name=DEMO_READER_STUDY).exists()
        if imported:
            self._import_cohort(options)
        else:
            self.stdout.write(f"Demo cohort already imported ({DEMO_READER_STUDY!r}).")
        if options["no_training"]:
            return
        self._demo_model(options, overrides)
        if imported:
            self._training_run(options)

    def _checked(self, options):
        """The experiment overrides; every option checked before anything is written (CommandError naming it)."""
        try:
            overrides = parse_overrides(options["model_set"])
            experiment, _ = demo_experiment(
                options["model_experiment"], options["model_variant"], overrides
            )
        except ExperimentError as exc:
            raise CommandError(str(exc)) from None
        if options["patients"] < experiment.folds:
            raise CommandError(
                f"--patients must be at least {experiment.folds} (the training run's folds)"
            )
        if options["training_patients"] < 1:
            raise CommandError("--training-patients must be at least 1")
        try:
            CohortSpec(patients=options["patients"], size=options["size"])
        except ValueError as exc:
            raise CommandError(f"--patients/--size: {exc}") from None
        if options["training_seed"] == DEMO_COHORT_SEED:
            raise CommandError(
                f"--training-seed {DEMO_COHORT_SEED} is the demo cohort's own seed: the model would train on the "
                "reader study's patients; choose another seed"
            )
        return overrides

    def _import_cohort(self, options):
        out = settings.VAR_DIR / "demo-cohort"
        readers = ",".join(name for name, role in DEMO_USERS if role == "reader")
        self.stdout.write(
            f"Generating and importing {options['patients']} synthetic patients (subtype mix {DEMO_BENIGN_SHARE:.0%} "
            "benign; a few minutes) ..."
        )
        call_command(
            "make_cohort",
            "--out",
            str(out),
            "--patients",
            str(options["patients"]),
            "--seed",
            str(DEMO_COHORT_SEED),
            "--size",
            str(options["size"]),
            "--mix",
            mix_argument(DEMO_SUBTYPE_MIX),
            "--import",
            "--user",
            "admin",
            "--readers",
            readers,
            "--simulate-readers",
            str(DEMO_SIMULATED_READERS),
            "--design",
            "sequential",
            "--reader-study",
            DEMO_READER_STUDY,
            stdout=self.stdout,
        )
        # The archive holds the images now; keep only the ground truth table.
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
        reader_study = ReaderStudy.objects.get(name=DEMO_READER_STUDY)
        self.stdout.write(f"Comparison page: /reader-studies/{reader_study.pk}/comparison/")

    def _demo_model(self, options, overrides):
        experiment, variant = demo_experiment(
            options["model_experiment"], options["model_variant"], overrides
        )
        cohort = independent_cohort(
            options["training_patients"], options["training_seed"], options["size"]
        )
        existing = existing_demo_model(
            experiment.name, variant.name, cohort["patients"], cohort["seed"]
        )
        if existing is not None:
            self.stdout.write(f"Demo model: {existing}, trained on {describe_cohort(cohort)}.")
            self._aided_reading(existing)
            return
        arguments = {
            "experiment_name": options["model_experiment"],
            "variant_name": variant.name,
            "patients": cohort["patients"],
            "seed": cohort["seed"],
            "size": cohort["size"],
            "overrides": overrides,
        }
        also = [name for name in DEMO_ALSO_EXPERIMENTS if name != experiment.name]
        models = " and ".join(
            [f"{experiment.name}/{variant.name} ({experiment.model_builder})"]
            + [f"{name}/{variant.name}" for name in also]
        )
        what = f"{models} on an {describe_cohort(cohort)}"
        if options["inline"]:
            self.stdout.write(f"Training the demo model {what} ...")
            version = train_demo_model(**arguments)
            self.stdout.write(
                f"Demo models active ({version} and {variant.name} of {', '.join(also) or 'no other'}); "
                "the demo lesions are scored."
            )
            self._aided_reading(version)
        else:
            train_demo_model_task.apply_async(kwargs=arguments)
            self.stdout.write(
                f"The demo models are queued: the worker trains {what}, activates them and scores the demo lesions "
                "(a few minutes after it starts; then it is on the comparison page, with the simulated readers' "
                "aided calls)."
            )

    def _aided_reading(self, version):
        """The simulated readers' aided calls with the demo model (frozen for the reader study); a warning if not."""
        try:
            aided = simulate_demo_aided_reading(version)
        except CohortImportError as error:
            self.stderr.write(f"No simulated aided calls: {error}")
            return
        if aided is not None:
            self.stdout.write(
                f"Aided reading: {aided.model_version} is frozen for {DEMO_READER_STUDY!r}; "
                f"{aided.recorded} simulated aided calls recorded (simulated readers move toward its score)."
            )

    def _training_run(self, options):
        sets = [argument for text in options["model_set"] for argument in ("--set", text)]
        inline = ["--inline"] if options["inline"] else []
        call_command(
            "train",
            "--experiment",
            options["model_experiment"],
            "--variant",
            options["model_variant"],
            *sets,
            *inline,
            stdout=self.stdout,
        )
        self.stdout.write(
            "A cross-validated training run on the demo's own lesions is "
            + (
                "done"
                if inline
                else "queued after it (Models page; it is not activated: the demo model stays the one compared)"
            )
            + "."
        )
