"""Create the demo accounts (admin, coordinator, reader1..3) and print their logins."""
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from portal.roles import ADMIN, COORDINATOR, READER, ensure_roles

DEMO_USERS = [("admin", ADMIN), ("coordinator", COORDINATOR), ("reader1", READER), ("reader2", READER), ("reader3", READER)]


class Command(BaseCommand):
    help = "Create demo users with random passwords (kept in var/demo-logins.txt) and print them."

    def handle(self, *args, **options):
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
        logins_file.write_text("\n".join(lines) + "\n")
        self.stdout.write("Demo logins (username password role):")
        for (username, role), line in zip(DEMO_USERS, lines):
            self.stdout.write(f"  {line}  ({role})")
