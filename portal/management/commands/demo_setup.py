"""Everything ``make demo`` needs in the database: demo users, the demo cohort, a first training run."""
import shutil

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotations.models import ReaderStudy
from portal.management.commands.create_demo_users import DEMO_USERS

DEMO_READER_STUDY = "Demo reader study (synthetic cohort)"


class Command(BaseCommand):
    help = (
        "Create the demo users; the first time, generate and import the demo cohort (with 3 simulated "
        "readers) and queue a CPU training run of the CM-phase small_cnn variant."
    )

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=24)
        parser.add_argument("--size", type=int, default=256, help="matrix of the demo images")
        parser.add_argument("--no-training", action="store_true")

    def handle(self, *args, **options):
        call_command("create_demo_users", stdout=self.stdout)
        if ReaderStudy.objects.filter(name=DEMO_READER_STUDY).exists():
            self.stdout.write(f"Demo cohort already imported ({DEMO_READER_STUDY!r}).")
            return
        out = settings.VAR_DIR / "demo-cohort"
        readers = ",".join(name for name, role in DEMO_USERS if role == "reader")
        self.stdout.write(f"Generating and importing {options['patients']} synthetic patients (a few minutes) ...")
        call_command(
            "make_cohort", "--out", str(out), "--patients", str(options["patients"]), "--seed", "0",
            "--size", str(options["size"]), "--import", "--user", "admin", "--readers", readers,
            "--simulate-readers", "3", "--reader-study", DEMO_READER_STUDY, stdout=self.stdout,
        )
        # The archive holds the images now; keep only the ground truth table.
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
        if not options["no_training"]:
            call_command("train", "--experiment", "source-study", "--variant", "CM", stdout=self.stdout)
            self.stdout.write("A CPU training run of the CM-phase small_cnn is queued; the worker starts it.")
