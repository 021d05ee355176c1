"""python manage.py analyze_reader_study FILE.csv — OR MRMC analysis of a long CSV."""

import json

from django.core.management.base import BaseCommand, CommandError

from evaluation.stats.reader_study import (
    ReaderStudyDataError,
    analyze_reader_study,
    format_report,
    load_reader_study,
)


class Command(BaseCommand):
    help = (
        "Obuchowski-Rockette MRMC analysis (Hillis df) of a long-format reader-study CSV "
        "with columns reader,treatment,case,truth,rating (treatment optional; reader_type, "
        "patient and call optional). With --model-reader NAME the model, given as one reader of a "
        "single-treatment study, is compared with the other readers. With treatments named unaided "
        "and aided it adds aided - unaided (AUC; with a call column also sensitivity, specificity "
        "and call changes)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="long-format CSV file")
        parser.add_argument("--model-reader", help="name of the reader that is the model (CAD/AI)")
        parser.add_argument(
            "--cov",
            choices=["jackknife", "delong", "bootstrap"],
            default="jackknife",
            help="covariance of the reader metrics over cases (default jackknife)",
        )
        parser.add_argument(
            "--metric", choices=["auc", "sensitivity", "specificity"], default="auc"
        )
        parser.add_argument(
            "--threshold",
            type=float,
            help="for sensitivity/specificity: a rating >= THRESHOLD is positive",
        )
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object instead of the report"
        )

    def handle(self, *args, **options):
        if options["metric"] != "auc" and options["threshold"] is None:
            raise CommandError(
                f"--metric {options['metric']} needs --threshold (a rating >= threshold is positive)"
            )
        try:
            study = load_reader_study(options["file"])
            analysis = analyze_reader_study(
                study,
                metric=options["metric"],
                threshold=options["threshold"],
                covariance=options["cov"],
                model_reader=options["model_reader"],
            )
        except ReaderStudyDataError as error:
            if error.file is None:
                raise CommandError(f"file {options['file']}, {error}") from None
            raise CommandError(str(error)) from None
        except ValueError as error:
            raise CommandError(f"file {options['file']}: {error}") from None
        if options["json"]:
            self.stdout.write(json.dumps(analysis.as_dict(), indent=2))
        else:
            self.stdout.write(format_report(analysis))
