"""Issue an API token for a user (the interface of DRF's command of the same name, kept for scripts)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken

from portal.authentication import issue_token


class Command(BaseCommand):
    help = (
        "Issue a new API token for USERNAME and print it once: the portal stores only its digest. "
        "It expires after --expires-days (default: the setting API_TOKEN_EXPIRES_DAYS; 0: never)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "-r",
            "--reset",
            action="store_true",
            dest="reset_token",
            help="revoke the user's existing tokens before issuing the new one",
        )
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="days until the token is refused (0: never expires)",
        )

    def handle(self, *args, username, reset_token, expires_days, **options):
        if expires_days is not None and expires_days < 0:
            raise CommandError(
                f"--expires-days is {expires_days}; give a number of days >= 0 (0: never expires)"
            )
        User = get_user_model()
        try:
            user = User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"Cannot create the Token: user {username} does not exist") from None
        if reset_token:
            AuthToken.objects.filter(user=user).delete()
        key = issue_token(user, expires_days)
        # The same line as DRF's command (scripts read the third word).
        self.stdout.write(f"Generated token {key} for user {username}")
