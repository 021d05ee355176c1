"""Authentication of the portal: API tokens, the login lockout, the client's address.

Kept apart from the views: DRF imports it from settings.

- **API tokens** are django-rest-knox tokens: the database holds a SHA-512 digest of each
  key and the key's first 15 characters (to find its row), never the key, and a token may
  expire. :func:`issue_token` makes one (``manage.py drf_create_token``);
  :class:`CachedTokenAuthentication` checks them.
- **Failed logins** are counted by django-axes per account and per address (settings
  ``AXES_*``, from ``LOGIN_FAILURE_LIMIT`` and ``LOGIN_COOLOFF_MINUTES``); a locked-out
  login gets :func:`lockout_response`.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from knox.models import AuthToken

from archive.models import access_cache


class CachedTokenAuthentication(TokenAuthentication):
    """Knox token authentication that remembers a valid token's user for a few seconds per process.

    The same user object comes back for every request with that token, so its
    permission cache (``has_perm``) is reused too: a request costs no
    authentication or permission query while the entry lives. Entries live at
    most ``models.ACCESS_CACHE_SECONDS`` (30 s) and are dropped at once in this
    process when a token, user, group or permission changes (see
    ``models.AccessCache``); other processes notice within those 30 s. A token
    that reaches its expiry is refused at once in every process (the remembered
    entry carries the expiry). An invalid token or an inactive user is never remembered.
    """

    def authenticate_credentials(self, token):
        cached = access_cache.get_token(token)
        if cached is not None:
            expiry = cached[1].expiry
            if expiry is None or expiry > timezone.now():
                return cached
            # Expired: knox's own check below deletes the row and refuses the token.
        user, auth_token = super().authenticate_credentials(token)
        access_cache.set_token(token, (user, auth_token))
        return user, auth_token


class CachedTokenScheme(KnoxTokenScheme):
    """The OpenAPI schema's description of :class:`CachedTokenAuthentication` (knox's, by subclass)."""

    target_class = CachedTokenAuthentication


def issue_token(user, expires_days=None):
    """Issue a new API token for ``user`` and return its key: the only time the key is seen.

    ``expires_days``: days until the token is refused (``None``: the setting
    ``API_TOKEN_EXPIRES_DAYS``; ``0``: never). The database keeps only the key's digest.
    """
    if expires_days is None:
        expires_days = settings.API_TOKEN_EXPIRES_DAYS
    if expires_days < 0:
        raise ValueError(
            f"expires_days is {expires_days}; give a number of days >= 0 (0: never expires)"
        )
    _, key = AuthToken.objects.create(
        user, expiry=timedelta(days=expires_days) if expires_days else None
    )
    return key


def lockout_message():
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many failed logins for this account or from this address: logging in is locked for "
        f"{minutes} minutes after the last attempt. An administrator can unlock it sooner."
    )


def lockout_response(request, original_response=None, credentials=None):
    """The answer to a login refused by django-axes (``AXES_LOCKOUT_CALLABLE``): 429 and Retry-After.

    A browser gets the login page with the reason; a client that asks for JSON (the
    ``Accept`` header) or sends ``X-Requested-With: XMLHttpRequest`` gets ``{"error": ...}``.
    """
    message = lockout_message()
    wants_json = (
        request.headers.get("X-Requested-With") == "XMLHttpRequest"
        or request.get_preferred_type(["text/html", "application/json"]) == "application/json"
    )
    if wants_json:
        response = JsonResponse({"error": message}, status=429)
    else:
        form = AuthenticationForm(request)
        context = {"form": form, "lockout": message, "next": request.POST.get("next", "")}
        response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


def forget_failed_logins(sender, request, user, **kwargs):
    """A successful login clears the failed logins counted against that account (``user_logged_in``).

    Only the account's own: failures against other accounts from the same address stay
    counted, so logging in to one's own account cannot reset an address's guesses at others
    (django-axes' ``AXES_RESET_ON_SUCCESS`` would clear both).
    """
    from axes.utils import reset

    reset(username=user.get_username())
