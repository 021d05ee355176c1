"""Request body limits, and the idle expiry of browser sessions.

Request body limits: every body is refused by its Content-Length before anything reads it.

Django's own check (``DATA_UPLOAD_MAX_MEMORY_SIZE``) covers ``request.body`` and form
fields, but DRF's JSON parser and ``request.read()`` read a stream without it. This
middleware refuses, for every view, a body whose announced Content-Length is above the
view's limit: ``DATA_UPLOAD_MAX_MEMORY_SIZE`` by default (the login page, the JSON API,
the admin), or the setting a view names in ``request_body_limit`` (the upload API and
STOW-RS name ``UPLOAD_MAX_TOTAL_BYTES``). A body sent without Content-Length is not read
by Django at all.
"""

import time

from django.conf import settings
from django.http import JsonResponse

# How often an active session's expiry moves forward: at most one session write a minute
# per user, whatever the number of requests (a case opening sends hundreds).
SESSION_REFRESH_SECONDS = 60


def request_body_limit(view_func):
    """The most bytes a request body may have for ``view_func`` (None: no limit)."""
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    setting = getattr(view_class, "request_body_limit", None)
    return getattr(settings, setting) if setting else settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class RequestBodyLimitMiddleware:
    """Answers 413 to a request whose Content-Length is above its view's :func:`request_body_limit`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"error": "the Content-Length header is not a number"}, status=400)
        limit = request_body_limit(view_func)
        if limit is not None and length > limit:
            return JsonResponse(
                {
                    "error": f"the request body has {length} bytes; this address accepts at most {limit}"
                },
                status=413,
            )
        return None


class SessionIdleMiddleware:
    """Slides a logged-in browser session's expiry (``SESSION_COOKIE_AGE``) while it is used.

    Django fixes a session's expiry when the session is saved; saving on every request
    (``SESSION_SAVE_EVERY_REQUEST``) would write the session row for every frame the
    viewer loads. Here an authenticated session records when it was last seen and is
    saved again (new expiry ``SESSION_COOKIE_AGE`` from now) only when that is more than
    :data:`SESSION_REFRESH_SECONDS` ago, so a session ends after ``SESSION_IDLE_MINUTES``
    without a request, give or take a minute. Token requests carry no session and are
    untouched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and session.session_key and request.user.is_authenticated:
            now = int(time.time())
            if now - session.get("_seen", 0) > SESSION_REFRESH_SECONDS:
                session["_seen"] = now  # modifies the session: saved with a new expiry
        return self.get_response(request)
