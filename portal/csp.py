"""The Content-Security-Policy header (django-csp), with a fresh nonce on every response.

django-csp puts ``'nonce-…'`` into the header only when something read ``request.csp_nonce``
before the response left (its docs, "Nonce usage"); pages that render no inline script
(the admin, the API docs) would then carry a policy without one. The portal makes the nonce
for every request instead, so that each response's policy names its own nonce and a template
that later adds ``nonce="{{ request.csp_nonce }}"`` never meets a header that lacks it.
The policy itself is ``CONTENT_SECURITY_POLICY`` in the settings (README
"Content-Security-Policy").
"""

from csp.middleware import CSPMiddleware


class NonceEveryResponseCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with ``request.csp_nonce`` (16 random bytes, base64) made up front."""

    def process_request(self, request):
        super().process_request(request)
        str(request.csp_nonce)
