"""python manage.py verify_archive — every Instance's file present with its SHA-256; files without a row listed."""
from django.core.management.base import BaseCommand, CommandError

from portal.integrity import verify_archive


class Command(BaseCommand):
    help = (
        "Read every stored instance back and compare its SHA-256 with the archive's; list files under "
        "instances/ that no Instance names (never deleted). Exits 1 when anything is wrong."
    )

    def handle(self, *args, **options):
        report = verify_archive()
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
