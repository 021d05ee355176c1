"""Create the demo accounts (admin, coordinator, reader1..3) and print their logins (DEBUG only)."""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from portal.roles import ADMIN, COORDINATOR, READER, ensure_roles

DEMO_USERS = [
    ("admin", ADMIN),
    ("coordinator", COORDINATOR),
    ("reader1", READER),
    ("reader2", READER),
    ("reader3", READER),
]


class Command(BaseCommand):
    help = (
        "Create demo users with random passwords (kept in var/demo-logins.txt, readable by its owner only) and "
        "print them. Runs only with DEBUG=1: a production portal has no known accounts."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "create_demo_users runs only with DEBUG=1 (a demo set-up): it creates an admin and other accounts "
                "whose passwords it prints; create real accounts with 'manage.py createsuperuser' and the admin"
            )
        ensure_roles()
        logins_file = settings.VAR_DIR / "demo-logins.txt"
        known = {}
        if logins_file.exists():
            for line in logins_file.read_text().splitlines():
                name, _, password = line.partition(" ")
                known[name] = password
        User = get_user_model()
        lines = []
        for username, role in DEMO_USERS:
            password = known.get(username) or secrets.token_urlsafe(9)
            user, created = User.objects.get_or_create(username=username)
            if created or not user.check_password(password):
                user.set_password(password)
            user.is_staff = user.is_superuser = role == ADMIN
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            lines.append(f"{username} {password}")
        logins_file.parent.mkdir(parents=True, exist_ok=True)
        # Created (or narrowed) to 0600 before the passwords are written: never readable by others.
        descriptor = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        self.stdout.write("Demo logins (username password role):")
        for (_, role), line in zip(DEMO_USERS, lines):
            self.stdout.write(f"  {line}  ({role})")
