"""python manage.py verify_archive — every Instance's file present with its SHA-256; files without a row listed."""

from django.core.management.base import BaseCommand, CommandError

from archive.integrity import remove_orphans, verify_archive


class Command(BaseCommand):
    help = (
        "Read every stored instance back and compare its SHA-256 with the archive's; list files under "
        "instances/ that no Instance names (deleted only with --remove-orphans). Exits 1 when anything is wrong."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--remove-orphans",
            action="store_true",
            help="delete the files without an Instance (left by killed uploads) older than --orphan-minutes",
        )
        parser.add_argument(
            "--orphan-minutes",
            type=float,
            default=60,
            help="only files last changed more than this many minutes ago are removed (default 60: "
            "spares uploads being stored now)",
        )

    def handle(self, *args, **options):
        report = verify_archive()
        if options["remove_orphans"]:
            for name in remove_orphans(report, options["orphan_minutes"]):
                self.stdout.write(f"removed  {name}")
        for finding in report.findings:
            self.stdout.write(f"{finding.kind:8s} {finding.name}  {finding.detail}")
        summary = (
            f"{report.instances} instance(s) checked: {report.intact} ok, {report.count('missing')} missing, "
            f"{report.count('unreadable')} unreadable, {report.count('corrupt')} corrupt; "
            f"{report.count('orphan')} file(s) without an Instance"
        )
        if not report.ok:
            raise CommandError(summary, returncode=1)
        self.stdout.write(summary)
