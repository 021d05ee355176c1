"""DRF authentication of the portal (kept apart from the views: DRF imports it from settings)."""
from rest_framework.authentication import TokenAuthentication

from .models import access_cache


class CachedTokenAuthentication(TokenAuthentication):
    """DRF token authentication that remembers a valid token's user for a few seconds per process.

    The same user object comes back for every request with that token, so its
    permission cache (``has_perm``) is reused too: a request costs no
    authentication or permission query while the entry lives. Entries live at
    most ``models.ACCESS_CACHE_SECONDS`` (30 s) and are dropped at once in this
    process when a token, user, group or permission changes (see
    ``models.AccessCache``); other processes notice within those 30 s. An invalid
    token or an inactive user is never remembered.
    """

    def authenticate_credentials(self, key):
        cached = access_cache.get_token(key)
        if cached is not None:
            return cached
        user, token = super().authenticate_credentials(key)
        access_cache.set_token(key, (user, token))
        return user, token
