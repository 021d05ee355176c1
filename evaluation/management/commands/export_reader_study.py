"""python manage.py export_reader_study ID --long FILE.csv — a reader study's ratings for analysis outside."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.models import ReaderStudy
from evaluation import exports
from evaluation.inputs import ComparisonOptions, gather_inputs


class Command(BaseCommand):
    help = (
        "Write a reader study's analysed ratings (the comparison page's inputs) to files: --long for "
        "'manage.py analyze_reader_study' (readers plus one model as reader 'model:VARIANT'), --csv for the "
        "joined lesion x reader table, --imrmc for the FDA iMRMC program. Only current, locked, blinded "
        "calls unless --include-unblinded."
    )

    def add_arguments(self, parser):
        parser.add_argument("reader_study", type=int, help="reader study id")
        parser.add_argument(
            "--long", metavar="FILE", help="long-format CSV for analyze_reader_study"
        )
        parser.add_argument(
            "--model",
            default="CM",
            help="model written as reader 'model:NAME' in --long: a CNN variant (default CM) or radiomics-VARIANT; "
            "'none' for readers only",
        )
        parser.add_argument(
            "--csv", metavar="FILE", help="joined CSV (one row per lesion x reader, model columns)"
        )
        parser.add_argument("--imrmc", metavar="FILE", help="iMRMC input file")
        parser.add_argument(
            "--include-unblinded", action="store_true", help="also use unblinded calls"
        )

    def handle(self, *args, **options):
        reader_study = ReaderStudy.objects.filter(pk=options["reader_study"]).first()
        if reader_study is None:
            raise CommandError(f"reader study {options['reader_study']} does not exist")
        if not any(options[k] for k in ("long", "csv", "imrmc")):
            raise CommandError("name at least one output: --long FILE, --csv FILE or --imrmc FILE")
        inputs = gather_inputs(
            reader_study, ComparisonOptions(include_unblinded=options["include_unblinded"])
        )
        for line in inputs.exclusions:
            self.stderr.write(line)
        outputs = []
        if options["long"]:
            model_key = None if options["model"].lower() == "none" else f"model:{options['model']}"
            if model_key and model_key not in {m.key for m in inputs.analysed_models}:
                available = ", ".join(m.choice for m in inputs.analysed_models) or "none"
                raise CommandError(
                    f"model {options['model']} has no held-out score on every lesion (analysed models: {available})"
                )
            outputs.append((options["long"], exports.long_csv(inputs, model_key)))
        if options["csv"]:
            outputs.append((options["csv"], exports.joined_csv(inputs)))
        if options["imrmc"]:
            outputs.append((options["imrmc"], exports.imrmc_text(inputs)))
        for path, text in outputs:
            Path(path).write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {path}")
        self.stdout.write(
            f"{len(inputs.analysed_lesions)} lesions, {len(inputs.analysed_readers)} readers, "
            f"{len(inputs.analysed_models)} models analysed; revision {inputs.revision[:12]}"
        )
