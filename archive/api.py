"""REST API of the archive: uploads, studies, series (phase override), instance files."""

import io
import logging
import os

import kombu.exceptions
from django import db
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.http import FileResponse, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.utils.datastructures import MultiValueDict
from django.utils.http import parse_header_parameters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser, DataAndFiles, FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.roles import SET_SERIES_PHASE, UPLOAD_STUDIES, VIEW_ALL_STUDIES, can, require

from . import archives, dicomfiles
from .ingest import StorageFull, ingest_upload, read_stored_file
from .models import Instance, Series, Study, Upload
from .serializers import (
    InstanceSerializer,
    PhaseOverrideSerializer,
    SeriesSerializer,
    StudySerializer,
    UploadRequestSerializer,
    UploadSerializer,
)

logger = logging.getLogger(__name__)


DATABASE_UNAVAILABLE = (
    "the database is unreachable at the moment (restarting?); this request was not completed: "
    "send it again in a few seconds"
)
TASK_QUEUE_UNAVAILABLE = (
    "the task queue (Redis) is unreachable: what this request saved is kept, but the background work "
    "it starts did not start; tell an administrator"
)


STORAGE_UNAVAILABLE = (
    "the file storage refused the request or could not be reached; nothing of this request was stored: "
    "send it again later, and tell an administrator if it persists"
)


def _storage_unavailable(exc):
    """True for the object store refusing or not answering, or a file store the portal may not write to."""
    from .object_storage import StorageError  # imported once an error gets here (it loads boto3)

    return isinstance(exc, (StorageError, PermissionError))


def _database_unavailable(exc):
    """True for a lost or refused database connection (not for an error in a query on a working one)."""
    if isinstance(exc, db.InterfaceError):
        return True
    if not isinstance(exc, db.OperationalError):
        return False
    connection = db.connections[db.DEFAULT_DB_ALIAS]
    return connection.connection is None or not connection.is_usable()


def exception_handler(exc, context):
    """DRF errors as they are; a service that is down as 503 and a full disk as 507, each saying what to do;
    anything else unexpected as a JSON 500 that names no internals."""
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    if _database_unavailable(exc):
        logger.warning("database unavailable in %s: %s", context.get("view"), exc)
        return Response({"error": DATABASE_UNAVAILABLE}, status=503, headers={"Retry-After": "5"})
    if isinstance(exc, kombu.exceptions.OperationalError):
        logger.warning("task queue unavailable in %s: %s", context.get("view"), exc)
        return Response({"error": TASK_QUEUE_UNAVAILABLE}, status=503)
    if isinstance(exc, StorageFull):  # RFC 4918 section 11.5: 507 Insufficient Storage
        logger.error("storage full in %s: %s", context.get("view"), exc)
        return Response({"error": str(exc)}, status=507)
    if _storage_unavailable(exc):
        logger.error("file storage unavailable in %s: %s", context.get("view"), exc)
        return Response({"error": STORAGE_UNAVAILABLE}, status=503, headers={"Retry-After": "60"})
    logger.exception("unhandled error in %s", context.get("view"))
    return Response(
        {"error": "internal error; the administrators have the details in the log"}, status=500
    )


class UploadMemoryHandler(MemoryFileUploadHandler):
    """Keeps the files of an upload request of at most :data:`IN_MEMORY_UPLOAD_BYTES` in memory.

    Django's own memory handler gives up when the whole request exceeds
    FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), so a batch of a few CT slices went to
    temporary files, written and read back once each. Larger requests go to
    temporary files as they are read, so a request's memory does not grow with its size.
    """

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.activated = content_length is not None and 0 < content_length <= IN_MEMORY_UPLOAD_BYTES


IN_MEMORY_UPLOAD_BYTES = 8 * 1024 * 1024


class BodyTooLarge(APIException):
    status_code = 413
    default_code = "too_large"


class RawDicomParser(BaseParser):
    """One file as the whole request body, as Orthanc's ``POST /instances`` and many DICOM tools send it.

    ``Content-Type: application/dicom`` (or ``application/zip`` with :class:`RawZipParser`);
    the file's name is the ``Content-Disposition`` filename when one is sent. The body is
    refused before it is read when its Content-Length exceeds the parser's limit (one
    file: UPLOAD_MAX_FILE_BYTES; a zip: UPLOAD_MAX_TOTAL_BYTES), and is copied in chunks to
    a temporary file as it is read (``archives.spool``), never held whole in memory.
    """

    media_type = "application/dicom"
    default_name = "body.dcm"
    limit_setting = "UPLOAD_MAX_FILE_BYTES"
    what = "one file"

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        limit = getattr(settings, self.limit_setting)
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > limit:
            raise BodyTooLarge(
                f"the request body has {length} bytes; {self.what} may have at most {limit}"
            )
        body = io.BytesIO()
        if stream is not None:
            body = archives.spool(stream, limit, directory=settings.FILE_UPLOAD_TEMP_DIR)
            if body is None:
                raise BodyTooLarge(
                    f"the request body has more than {limit} bytes ({self.what}: at most {limit})"
                )
        _, params = parse_header_parameters(request.META.get("HTTP_CONTENT_DISPOSITION", ""))
        name = os.path.basename(params.get("filename", "")) or self.default_name
        body.seek(0, io.SEEK_END)
        size = body.tell()
        body.seek(0)
        upload = UploadedFile(body, name=name, content_type=self.media_type, size=size)
        return DataAndFiles(QueryDict(), MultiValueDict({"file": [upload]}))


class RawZipParser(RawDicomParser):
    media_type = "application/zip"
    default_name = "body.zip"
    limit_setting = "UPLOAD_MAX_TOTAL_BYTES"
    what = "a zip archive"


class UploadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``POST /api/v1/uploads/``: multipart ``files`` (DICOM and/or zip), optional ``deidentify``.

    One file may also be the whole body (``Content-Type: application/dicom`` or
    ``application/zip``, ``?deidentify=true`` in the query string).
    """

    serializer_class = UploadSerializer
    parser_classes = [MultiPartParser, FormParser, RawDicomParser, RawZipParser]
    request_body_limit = (
        "UPLOAD_MAX_TOTAL_BYTES"  # not DATA_UPLOAD_MAX_MEMORY_SIZE (portal.middleware)
    )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI schema generation: no user
            return Upload.objects.none()
        uploads = Upload.objects.select_related("user")
        if can(self.request.user, VIEW_ALL_STUDIES):
            return uploads
        return uploads.filter(user=self.request.user)

    def initialize_request(self, request, *args, **kwargs):
        if request.method == "POST":
            request.upload_handlers = [
                UploadMemoryHandler(request),
                TemporaryFileUploadHandler(request),
            ]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(request=UploadRequestSerializer, responses={201: dict, 200: dict, 422: dict})
    def create(self, request):
        require(request.user, UPLOAD_STUDIES)
        deidentify = request.data.get("deidentify", request.query_params.get("deidentify", False))
        payload = UploadRequestSerializer(
            data={
                "files": request.FILES.getlist("files") + request.FILES.getlist("file"),
                "deidentify": deidentify,
            }
        )
        payload.is_valid(raise_exception=True)
        files = [(f.name, f) for f in payload.validated_data["files"]]
        channel = (
            Upload.Channel.BROWSER
            if request.data.get("channel") == "browser"
            else Upload.Channel.REST
        )
        report = ingest_upload(
            files, request.user, channel=channel, deidentify=payload.validated_data["deidentify"]
        )
        code = {"stored": status.HTTP_201_CREATED, "duplicate": status.HTTP_200_OK}.get(
            report.status, 422
        )
        return Response(report.as_dict(), status=code)


class StudyViewSet(viewsets.ReadOnlyModelViewSet):
    """Studies the user may see, with their series and phases."""

    serializer_class = StudySerializer
    lookup_field = "study_instance_uid"
    lookup_value_regex = r"[0-9.]+"

    def get_queryset(self):
        return (
            Study.objects.visible_to(self.request.user)
            .select_related("patient")
            .prefetch_related("series")
            .order_by("-created_at")
        )


class SeriesViewSet(viewsets.ReadOnlyModelViewSet):
    """Series with their phase; ``POST .../phase/`` overrides it (coordinator, admin)."""

    serializer_class = SeriesSerializer
    lookup_field = "series_instance_uid"
    lookup_value_regex = r"[0-9.]+"

    def get_queryset(self):
        return Series.objects.filter(
            study__in=Study.objects.visible_to(self.request.user)
        ).select_related("study", "phase_set_by")

    @extend_schema(request=PhaseOverrideSerializer, responses=SeriesSerializer)
    @action(detail=True, methods=["post"])
    def phase(self, request, series_instance_uid=None):
        series = self.get_object()
        require(request.user, SET_SERIES_PHASE)
        payload = PhaseOverrideSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        series.set_phase_manually(payload.validated_data["phase"], request.user)
        return Response(SeriesSerializer(series).data)

    @extend_schema(responses=InstanceSerializer(many=True))
    @action(detail=True, methods=["get"])
    def instances(self, request, series_instance_uid=None):
        """Instances sorted by slice position (the viewer's stack order)."""
        series = self.get_object()
        return Response(InstanceSerializer(series.instances.all(), many=True).data)


class InstanceFileView(viewsets.ViewSet):
    """``GET /api/v1/instances/{SOPInstanceUID}/file/``: the stored Part-10 file (application/dicom)."""

    throttle_classes = []  # the viewer loads every slice of 4 series at once (DEFAULT_THROTTLE_CLASSES)

    lookup_value_regex = r"[0-9.]+"

    @extend_schema(responses={(200, "application/dicom"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        instance = get_object_or_404(
            Instance.objects.filter(series__study__in=Study.objects.visible_to(request.user)),
            sop_instance_uid=pk,
        )
        handle = instance.file.open("rb")
        if dicomfiles.is_part10(handle.read(132)):
            handle.seek(0)
            response = FileResponse(handle, content_type="application/dicom")
        else:  # stored without a preamble by an earlier version: served as a Part 10 file
            handle.close()
            response = HttpResponse(
                read_stored_file(instance.file.name), content_type="application/dicom"
            )
        response["Cache-Control"] = "private, max-age=86400"
        return response
