"""Request body limits: every body is refused by its Content-Length before anything reads it.

Django's own check (``DATA_UPLOAD_MAX_MEMORY_SIZE``) covers ``request.body`` and form
fields, but DRF's JSON parser and ``request.read()`` read a stream without it. This
middleware refuses, for every view, a body whose announced Content-Length is above the
view's limit: ``DATA_UPLOAD_MAX_MEMORY_SIZE`` by default (the login page, the JSON API,
the admin), or the setting a view names in ``request_body_limit`` (the upload API and
STOW-RS name ``UPLOAD_MAX_TOTAL_BYTES``). A body sent without Content-Length is not read
by Django at all.
"""
from django.conf import settings
from django.http import JsonResponse


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
                {"error": f"the request body has {length} bytes; this address accepts at most {limit}"}, status=413
            )
        return None
