"""Everything ``make demo`` needs in the database: demo users, then the demo cohort."""
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo users and load the demo cohort (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=24)

    def handle(self, *args, **options):
        call_command("create_demo_users", stdout=self.stdout)
