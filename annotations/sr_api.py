"""DICOM SR of a study's lesions (``GET /studies/{uid}/sr/``) and its re-import (``POST /sr-imports/``)."""

import io

import pydicom
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from pydicom.errors import InvalidDicomError
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import access
from .api import AnnotationViewMixin
from .audit import audit_export
from .errors import Invalid
from .sr import build_measurement_report, import_measurement_report


class StudySRView(AnnotationViewMixin, APIView):
    """``GET /api/v1/studies/{StudyInstanceUID}/sr/``: a TID 1500 Measurement Report (audited)."""

    @extend_schema(responses={(200, "application/dicom"): bytes})
    def get(self, request, study_instance_uid):
        study = (
            access.studies_visible_to(request.user)
            .filter(study_instance_uid=study_instance_uid)
            .first()
        )
        if study is None:
            raise NotFound("no such study that you may open")
        report = build_measurement_report(study, request.user)
        buffer = io.BytesIO()
        report.save_as(buffer, enforce_file_format=True)
        filename = f"{study_instance_uid}-sr.dcm"
        response = HttpResponse(buffer.getvalue(), content_type="application/dicom")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        audit_export(request.user, study, filename)
        return response


class SRImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="a DICOM SR (TID 1500) as exported by GET /studies/{uid}/sr/"
    )


def read_sr_file(handle):
    """The dataset of an uploaded SR file, or :class:`Invalid` naming ``file``."""
    try:
        return pydicom.dcmread(handle)
    except (InvalidDicomError, EOFError, ValueError, TypeError) as error:
        raise Invalid(f"not a DICOM file: {error}", "file") from None


class SRImportViewSet(AnnotationViewMixin, viewsets.ViewSet):
    """``POST /api/v1/sr-imports/`` (multipart ``file``): lesions and ROIs from an SR."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=SRImportRequestSerializer, responses={201: dict})
    def create(self, request):
        payload = SRImportRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        lesions = import_measurement_report(
            read_sr_file(payload.validated_data["file"]), request.user
        )
        return Response(
            {
                "lesions": [
                    {"id": lesion.pk, "label": lesion.label, "n_rois": lesion.rois.count()}
                    for lesion in lesions
                ]
            },
            status=status.HTTP_201_CREATED,
        )
