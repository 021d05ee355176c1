"""``manage.py import_sr FILE.dcm [--user NAME]``: lesions and ROIs from a TID 1500 SR."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotations.errors import AnnotationError
from annotations.sr import import_measurement_report
from annotations.sr_api import read_sr_file


class Command(BaseCommand):
    help = (
        "Import the lesions and ROIs of a DICOM SR Measurement Report (as exported by the portal)."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="SR files (.dcm)")
        parser.add_argument(
            "--user", help="username recorded as the lesions' author and in the audit log"
        )

    def handle(self, *args, **options):
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}")
        for name in options["files"]:
            try:
                with open(name, "rb") as handle:
                    lesions = import_measurement_report(
                        read_sr_file(handle), user, check_access=False
                    )
            except OSError as error:
                raise CommandError(f"{name}: {error.strerror}") from None
            except AnnotationError as error:
                raise CommandError(f"{name}: {error.message}") from None
            labels = (
                ", ".join(f"{lesion.label} ({lesion.rois.count()} ROIs)" for lesion in lesions)
                or "no lesions"
            )
            self.stdout.write(f"{name}: imported {labels}")
