"""``manage.py make_cohort``: write a synthetic multiphase renal CT cohort (see :mod:`cohort.files`)."""

from functools import partial
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from archive.vocabulary import PHASES
from cohort.figures import SUBTYPES
from cohort.files import write_cohort
from cohort.spec import TRANSFER_SYNTAXES, CohortSpec


def parse_mix(text: str) -> dict[str, float]:
    """``"ccRCC=56,papillary=17,..."`` -> weights; subtypes not named get 0."""
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        if not sep:
            raise CommandError(f"--mix item {part!r} is not SUBTYPE=WEIGHT")
        try:
            mix[name.strip()] = float(weight)
        except ValueError:
            raise CommandError(f"--mix weight of {name.strip()!r} is not a number") from None
    return mix


class Command(BaseCommand):
    help = (
        "Write a synthetic multiphase (NC/CM/NG/EX) renal CT cohort: one DICOM study per patient, "
        "cohort.csv with the ground truth and oracle LLR, and the oracle AUCs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="output folder (created)")
        parser.add_argument("--patients", type=int, default=160)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--size", type=int, default=512, help="matrix (pixels per side)")
        parser.add_argument("--fov-mm", type=float, default=380.0)
        parser.add_argument("--slice-mm", type=float, default=2.5, help="slice thickness = spacing")
        extent = parser.add_mutually_exclusive_group()
        extent.add_argument("--slices", type=int, help="slices per series (default 64)")
        extent.add_argument(
            "--z-extent-mm", type=float, help="craniocaudal coverage instead of --slices"
        )
        parser.add_argument(
            "--transfer-syntax", choices=sorted(TRANSFER_SYNTAXES), default="explicit-le"
        )
        parser.add_argument(
            "--mix", help=f"subtype weights, e.g. ccRCC=56,papillary=17 (of {', '.join(SUBTYPES)})"
        )
        parser.add_argument("--preview", help="PNG of the four phases of one lesion (W400/L40)")
        parser.add_argument(
            "--preview-patient", type=int, default=1, help="patient number for --preview"
        )
        parser.add_argument(
            "--import",
            dest="do_import",
            action="store_true",
            help="load the cohort into the portal: studies through the ingest path, lesions with "
            "reference ROIs, pathology, and a reader study holding every case",
        )
        parser.add_argument(
            "--user", help="--import: the uploading user (default: the first superuser)"
        )
        parser.add_argument(
            "--reader-study", help="--import: reader study name (default 'Synthetic cohort seed S')"
        )
        parser.add_argument(
            "--readers",
            default="",
            help="--import: comma-separated usernames assigned to the reader study",
        )
        parser.add_argument(
            "--simulate-readers",
            type=int,
            default=0,
            metavar="K",
            help="--import (demo only): K simulated readers record calls around the oracle; "
            "marked simulated everywhere",
        )
        parser.add_argument(
            "--design",
            choices=["unaided", "sequential", "crossover"],
            help="--import: reading sessions of a new reader study (default unaided; sequential: "
            "an aided call after each locked unaided one; simulated readers' aided calls "
            "follow once a model has scored the lesions, as demo_setup does)",
        )

    def handle(self, *args, **options):
        if options["design"] == "crossover" and options["simulate_readers"]:
            raise CommandError(
                "--design crossover: simulated readers read every case unaided first; "
                "use --design sequential with --simulate-readers"
            )
        slices = options["slices"] or 64
        if options["z_extent_mm"] is not None:
            slices = max(1, round(options["z_extent_mm"] / options["slice_mm"]))
        extra = {"subtype_mix": parse_mix(options["mix"])} if options["mix"] else {}
        try:
            spec = CohortSpec(
                patients=options["patients"],
                seed=options["seed"],
                size=options["size"],
                slices=slices,
                slice_mm=options["slice_mm"],
                fov_mm=options["fov_mm"],
                transfer_syntax=options["transfer_syntax"],
                **extra,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not 1 <= options["preview_patient"] <= spec.patients:
            raise CommandError(f"--preview-patient must lie in 1..{spec.patients}")
        progress = partial(
            tqdm, unit="study", desc="make_cohort", disable=options["verbosity"] == 0
        )
        result = write_cohort(
            spec,
            Path(options["out"]),
            progress=progress,
            preview=options["preview"],
            preview_patient=options["preview_patient"] - 1,
        )
        oracle = result.oracle
        self.stdout.write(
            f"{len(result.studies)} studies, {len(result.truths)} lesions "
            f"({oracle.n_malignant} malignant, {oracle.n_benign} benign) -> {result.csv_path}"
        )
        per_phase = "  ".join(f"{phase} {getattr(oracle, phase):.3f}" for phase in PHASES)
        self.stdout.write(f"oracle AUC  {per_phase}  overall {oracle.overall:.3f}")
        if options["preview"]:
            self.stdout.write(f"preview -> {options['preview']}")
        if options["do_import"]:
            self._import(result, spec, options)

    def _import(self, result, spec, options):
        from django.contrib.auth import get_user_model

        from cohort.importer import CohortImportError, import_cohort

        User = get_user_model()
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"--user {options['user']!r} does not exist")
        else:
            user = User.objects.filter(is_superuser=True).order_by("id").first()
            if user is None:
                raise CommandError(
                    "--import needs --user USERNAME (there is no superuser to upload as)"
                )
        names = [n.strip() for n in options["readers"].split(",") if n.strip()]
        readers = list(User.objects.filter(username__in=names))
        missing = set(names) - {u.username for u in readers}
        if missing:
            raise CommandError(f"--readers: no such user(s): {', '.join(sorted(missing))}")
        progress = partial(tqdm, unit="study", desc="import", disable=options["verbosity"] == 0)
        try:
            summary = import_cohort(
                result,
                user,
                options["reader_study"] or f"Synthetic cohort seed {spec.seed}",
                readers=readers,
                simulate_readers=options["simulate_readers"],
                seed=spec.seed,
                progress=progress,
                design=options["design"],
            )
        except CohortImportError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"imported: {summary.studies_stored} studies stored ({summary.studies_already_there} already there), "
            f"{summary.lesions_created} lesions with reference ROIs and pathology, "
            f"{summary.simulated_calls} simulated calls; reader study {summary.reader_study.name!r} "
            f"(id {summary.reader_study.pk})"
        )
