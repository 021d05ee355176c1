"""``manage.py sweep_training_runs [--minutes N]``: fail running runs whose worker stopped sending heartbeats."""

from django.core.management.base import BaseCommand

from inference.services import sweep_stale_runs


class Command(BaseCommand):
    help = "Mark running training runs with a heartbeat older than --minutes as failed."

    def add_arguments(self, parser):
        parser.add_argument(
            "--minutes",
            type=float,
            default=None,
            help="default: INFERENCE_HEARTBEAT_TIMEOUT_MINUTES (15)",
        )

    def handle(self, *args, **options):
        swept = sweep_stale_runs(options["minutes"])
        self.stdout.write(
            f"marked {len(swept)} run(s) failed: {swept}" if swept else "no stale runs"
        )
