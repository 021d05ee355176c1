"""What every DICOMweb view shares: DRF authentication, plain Django answers, the base URL.

Authentication and permissions are those of the REST API (session or token); a user
finds and retrieves only the studies they may see.
"""

from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ..models import Study


class DicomWebView(APIView):
    """Base view: DRF authentication; answers plain Django responses (no DRF rendering)."""

    permission_classes = [IsAuthenticated]
    schema = (
        None  # DICOMweb is specified by PS3.18, not by the portal's OpenAPI schema (/api/schema/)
    )

    def perform_content_negotiation(self, request, force=False):
        # DICOMweb media types are negotiated by each view; DRF renders only errors (JSON).
        return (JSONRenderer(), "application/json")

    def base_url(self, request):
        """The absolute URL of the DICOMweb root, as the client reached it (its scheme and host)."""
        return request.build_absolute_uri("/dicomweb").rstrip("/")

    def visible_studies(self, request):
        return Study.objects.visible_to(request.user)
