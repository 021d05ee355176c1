"""python manage.py plan_reader_study FILE.csv --effect 0.05 --power 0.8 — readers and cases for the next study."""

import json

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from evaluation.stats import sample_size
from evaluation.stats.reader_study import (
    ReaderStudyDataError,
    has_multi_lesion_patients,
    load_reader_study,
)

DEFAULT_READERS = (3, 4, 5, 6, 8, 10, 12, 15)
DEFAULT_CASES = (50, 100, 150, 200, 300, 400, 500, 1000)


class Command(BaseCommand):
    help = (
        "Power and sample size of the next two-treatment reader study (e.g. unaided versus aided), "
        "from a pilot given as a long-format CSV (reader,treatment,case,truth,rating[,patient]): "
        "Obuchowski-Rockette variance components of the AUC and the method of Hillis, Obuchowski "
        "& Berbaum (2011). Prints power over readers x cases and the smallest number of cases "
        "for each number of readers, for random readers and cases (RRRC), fixed readers (FRRC) "
        "and fixed cases (RRFC)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="long-format CSV file of the pilot study")
        parser.add_argument(
            "--effect",
            type=float,
            required=True,
            help="AUC difference between the two treatments to detect, e.g. 0.05",
        )
        parser.add_argument("--power", type=float, default=0.8, help="desired power (default 0.8)")
        parser.add_argument(
            "--alpha", type=float, default=0.05, help="significance level, two-sided (default 0.05)"
        )
        parser.add_argument(
            "--readers",
            type=int,
            nargs="+",
            default=list(DEFAULT_READERS),
            help="numbers of readers in the table (default %(default)s)",
        )
        parser.add_argument(
            "--cases",
            type=int,
            nargs="+",
            default=list(DEFAULT_CASES),
            help="numbers of cases in the table (default %(default)s)",
        )
        parser.add_argument(
            "--max-cases",
            type=int,
            default=sample_size.DEFAULT_MAX_CASES,
            help="largest number of cases searched (default %(default)s)",
        )
        parser.add_argument(
            "--treatments",
            nargs=2,
            metavar=("FIRST", "SECOND"),
            help="the two treatments to compare when the file has more than two",
        )
        parser.add_argument(
            "--cov",
            choices=["jackknife", "delong", "bootstrap"],
            default="jackknife",
            help="covariance of the pilot's reader AUCs over cases (default jackknife)",
        )
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object instead of the tables"
        )

    def handle(self, *args, **options):
        _check_options(options)
        try:
            study = load_reader_study(options["file"])
        except ReaderStudyDataError as error:
            raise CommandError(
                str(error) if error.file else f"file {options['file']}, {error}"
            ) from None
        treatments = _chosen_treatments(study.treatments, options["treatments"], options["file"])
        ratings = study.ratings[[study.treatments.index(t) for t in treatments]]
        patient_level = has_multi_lesion_patients(study)
        try:
            pilot = sample_size.pilot_from_ratings(
                ratings,
                study.truth,
                covariance=options["cov"],
                clusters=study.patients if patient_level else None,
            )
            plan = sample_size.plan_study(
                pilot,
                options["effect"],
                options["power"],
                options["alpha"],
                sorted(set(options["readers"])),
                sorted(set(options["cases"])),
                options["max_cases"],
            )
        except ValueError as error:
            raise CommandError(f"file {options['file']}: {error}") from None
        if options["json"]:
            payload = plan.as_dict()
            payload["pilot"].update(
                treatments=treatments, patient_level=patient_level, covariance=options["cov"]
            )
            self.stdout.write(json.dumps(payload, indent=2))
        else:
            self.stdout.write(
                format_plan(plan, options["file"], treatments, patient_level, options["cov"])
            )


def _check_options(options):
    if not options["effect"] > 0:
        raise CommandError(
            f"--effect must be a positive AUC difference, e.g. 0.05 (got {options['effect']})"
        )
    if not options["effect"] < 1:
        raise CommandError(
            f"--effect is an AUC difference and must be below 1 (got {options['effect']})"
        )
    for name in ("power", "alpha"):
        if not 0 < options[name] < 1:
            raise CommandError(f"--{name} must lie strictly between 0 and 1 (got {options[name]})")
    if min(options["readers"]) < 2:
        raise CommandError(
            f"--readers: a study needs at least 2 readers (got {min(options['readers'])})"
        )
    if min(options["cases"]) < 2 or options["max_cases"] < 2:
        raise CommandError("--cases and --max-cases: a study needs at least 2 cases")


def _chosen_treatments(available, chosen, file):
    if len(available) < 2:
        raise CommandError(
            f"file {file}: planning compares two treatments (e.g. unaided and aided reading), "
            f"but the file has only treatment {', '.join(available)} (column 'treatment')"
        )
    if chosen is None:
        if len(available) > 2:
            raise CommandError(
                f"file {file} has treatments {', '.join(available)}; choose two with --treatments FIRST SECOND"
            )
        return list(available)
    unknown = [t for t in chosen if t not in available]
    if unknown or chosen[0] == chosen[1]:
        raise CommandError(
            f"--treatments must name two different treatments of the file ({', '.join(available)}); "
            f"got {' '.join(chosen)}"
        )
    return list(chosen)


def _fmt(value, digits=3):
    return (
        "n/a"
        if value is None or not np.isfinite(value)
        else f"{value:.{digits}f}".replace("-", "−")
    )


def format_plan(plan: sample_size.StudyPlan, file, treatments, patient_level, covariance) -> str:
    """Text report: pilot components, then per analysis the power table and the cases needed."""
    pilot = plan.pilot
    unit = "patients" if patient_level else "cases"
    lines = [
        f"Pilot {file}: treatments {treatments[0]} and {treatments[1]}, {pilot.n_readers} readers, "
        f"{pilot.n_cases} {unit}; observed AUC difference ({treatments[0]} − {treatments[1]}) "
        f"{_fmt(pilot.observed_effect, 4)}",
        f"OR variance components ({covariance}): Var {pilot.var:.6g}, Cov1 {pilot.cov1:.6g}, "
        f"Cov2 {pilot.cov2:.6g}, Cov3 {pilot.cov3:.6g}, σ²_TR {pilot.var_treatment_reader:.6g}"
        + (" (negative: taken as 0)" if pilot.var_treatment_reader < 0 else ""),
        f"Effect (AUC difference) {plan.effect:g}, α {plan.alpha:g} two-sided, desired power {plan.target_power:g}; "
        "method of Hillis, Obuchowski & Berbaum (2011)",
    ]
    if patient_level:
        lines.append(
            "Some patients have several lesions: the pilot is jackknifed by patient and case counts are patients."
        )
    for analysis, table in plan.tables.items():
        label = sample_size.ANALYSIS_NAMES[sample_size.Analysis(analysis)]
        lines += [
            "",
            f"{label.capitalize()} ({analysis.upper()}): power",
            f"{'readers':>8} \\ {unit}" + "".join(f"{k:>7}" for k in table.cases),
        ]
        for j, row in zip(table.readers, table.power):
            lines.append(f"{j:>8}    " + "".join(f"{_fmt(p, 2):>7}" for p in row))
        lines.append(f"Smallest number of {unit} for power ≥ {plan.target_power:g}:")
        for needed in plan.cases_needed[analysis]:
            if needed.n_cases is not None:
                outcome = f"{needed.n_cases} {unit} (power {_fmt(needed.power)})"
            elif needed.power_limit is not None and needed.power_limit < plan.target_power:
                outcome = f"not reachable (power at most {_fmt(needed.power_limit)} with unlimited {unit})"
            else:
                outcome = f"more than {plan.max_cases} {unit}"
            lines.append(f"  {needed.n_readers:>3} readers: {outcome}")
    return "\n".join(lines)
