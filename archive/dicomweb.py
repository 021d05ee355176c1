"""DICOMweb (DICOM PS3.18) over the archive: QIDO-RS, WADO-RS and STOW-RS.

Responses follow the standard exactly because real clients (``dicomweb-client``,
OHIF, Cornerstone's WADO-RS loader) parse them strictly:

- QIDO-RS answers ``application/dicom+json`` (PS3.18 F.2), 200 with an array, also
  when it is empty (``[]``).
- WADO-RS metadata answers the DICOM JSON of every instance, with the pixel data as
  a ``BulkDataURI``; instances come as ``multipart/related; type="application/dicom"``
  and frames as ``multipart/related; type="application/octet-stream"`` in Explicit VR
  Little Endian (decoded when the stored file is compressed).
- STOW-RS takes ``multipart/related; type="application/dicom"`` and answers the
  PS3.18 store response (ReferencedSOPSequence / FailedSOPSequence); the upload is
  all-or-nothing like every other upload (409 when it is refused).

Authentication and permissions are those of the REST API (session or token);
a user finds and retrieves only the studies they may see.
"""

import collections
import dataclasses
import functools
import hashlib
import io
import json
import re
import threading
import uuid

import numpy as np
import pydicom
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Count, F, Lookup
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import parse_header_parameters
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.uid import ExplicitVRLittleEndian
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from . import archives, dicomfiles, hooks
from .ingest import FileResult, ingest_upload, read_stored_file
from .models import Instance, Series, Study, Upload

DICOM_JSON = "application/dicom+json"

# PS3.4 Annex B / PS3.18 failure reasons used in FailedSOPSequence.
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE_CONFLICT = 0x0111
FAILURE_SOP_CLASS_NOT_SUPPORTED = 0x0122
FAILURE_STUDY_MISMATCH = 0xA900
FAILURE_CANNOT_UNDERSTAND = 0xC000


# ---------------------------------------------------------------------------
# multipart/related


_CHUNK = 1 << 18
# The most header bytes one part of a STOW-RS body may have.
_PART_HEADER_MAX = 1 << 16


def multipart_related_parts(source, content_type):
    """The parts of a ``multipart/related`` body in the seekable binary file ``source``.

    Returns ``(content type, start, end)`` per part: its content is the bytes
    ``start:end`` of ``source``. The body is scanned in chunks, never read whole.
    Raises ``ValueError`` naming what is wrong with the request.
    """
    main, params = parse_header_parameters(content_type or "")
    if main.lower() != "multipart/related":
        raise ValueError(f"Content-Type must be multipart/related, not {main or 'missing'}")
    boundary = params.get("boundary")
    if not boundary:
        raise ValueError("Content-Type multipart/related has no boundary parameter")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    offsets = _delimiter_offsets(source, delimiter)
    source.seek(0, io.SEEK_END)
    ends = offsets[1:] + [source.tell()]
    parts = []
    for offset, end in zip(offsets, ends):
        start = offset + len(delimiter)
        source.seek(start)
        head = source.read(min(end - start, _PART_HEADER_MAX))
        if head.startswith(b"--"):
            break
        header_blob, separator, _ = head.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a multipart part has no header/body separator")
        part_type = params.get("type", "")
        for line in header_blob.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                part_type = value.strip()
        parts.append((part_type, start + len(header_blob) + 4, end))
    return parts


def _delimiter_offsets(source, delimiter):
    """Where each CRLF + ``--boundary`` of ``source`` starts (a first line without the CRLF: offset -2)."""
    source.seek(0)
    offsets, tail, tail_at = (
        [],
        b"\r\n",
        -2,
    )  # tail: bytes not yet searched whole, from offset tail_at
    while True:
        chunk = source.read(_CHUNK)
        window = tail + chunk
        start = 0
        while (found := window.find(delimiter, start)) >= 0:
            offsets.append(tail_at + found)
            start = found + len(delimiter)
        if not chunk:
            return offsets
        keep = max(start, len(window) - len(delimiter) + 1)
        tail, tail_at = window[keep:], tail_at + keep


def parse_multipart_related(body, content_type):
    """Split a ``multipart/related`` body held in memory into ``(content type, bytes)`` parts."""
    parts = multipart_related_parts(io.BytesIO(body), content_type)
    return [(part_type, body[start:end]) for part_type, start, end in parts]


class _PartFile(io.RawIOBase):
    """The bytes ``start:end`` of the binary file ``source`` as a seekable file (one STOW-RS part)."""

    def __init__(self, source, start, end):
        super().__init__()
        self.source, self.start, self.end, self.position = source, start, end, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, buffer):
        n = max(0, min(len(buffer), self.end - self.start - self.position))
        self.source.seek(self.start + self.position)
        data = self.source.read(n)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.end - self.start}[
            whence
        ]
        self.position = max(0, base + offset)
        return self.position

    def tell(self):
        return self.position


def _multipart_chunks(parts, part_type, boundary):
    """The body of a ``multipart/related`` response from parts given as iterables of byte strings.

    Yields pieces of about :data:`_CHUNK` bytes (a part's header goes with its first bytes).
    """
    pending, size = [], 0
    for part in parts:
        pending.append(f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode("latin-1"))
        for chunk in _then_crlf(part):
            pending.append(chunk)
            size += len(chunk)
            if size >= _CHUNK:
                yield b"".join(pending)
                pending, size = [], 0
    pending.append(f"--{boundary}--\r\n".encode("latin-1"))
    yield b"".join(pending)


def _then_crlf(chunks):
    yield from chunks
    yield b"\r\n"


def _multipart_type(part_type, boundary):
    main_type = part_type.split(";")[0]
    extra = part_type[len(main_type) :]
    return f'multipart/related; type="{main_type}"{extra}; boundary={boundary}'


def multipart_response(parts, part_type):
    """An HttpResponse ``multipart/related; type=...`` from byte strings, all of one content type."""
    boundary = uuid.uuid4().hex
    body = b"".join(_multipart_chunks(([content] for content in parts), part_type, boundary))
    return HttpResponse(body, content_type=_multipart_type(part_type, boundary))


def multipart_stream(file_names, part_type="application/dicom"):
    """A StreamingHttpResponse ``multipart/related`` of stored files, read one after another in chunks.

    Memory stays at about one chunk whatever the number of files (a study's retrieval).
    """
    boundary = uuid.uuid4().hex
    chunks = _multipart_chunks(
        (_stored_file_chunks(name) for name in file_names), part_type, boundary
    )
    return StreamingHttpResponse(chunks, content_type=_multipart_type(part_type, boundary))


def _stored_file_chunks(name):
    """The stored file ``name`` as a PS3.10 file (:func:`read_stored_file`), in chunks."""
    with default_storage.open(name, "rb") as handle:
        head = handle.read(132)
        if not dicomfiles.is_part10(head):  # stored without a preamble by an earlier version
            yield read_stored_file(name)
            return
        yield head
        while chunk := handle.read(_CHUNK):
            yield chunk


# ---------------------------------------------------------------------------
# DICOM JSON helpers


def _attribute(keyword, value):
    tag = tag_for_keyword(keyword)
    vr = dictionary_VR(tag)
    element = {"vr": vr}
    if value not in (None, "", []):
        values = value if isinstance(value, list) else [value]
        if vr == "PN":
            values = [{"Alphabetic": str(v)} for v in values]
        element["Value"] = values
    return f"{tag:08X}", element


def dicom_json(**attributes):
    """A DICOM JSON object from keyword=value pairs (None or '' gives an empty attribute)."""
    return dict(sorted(_attribute(k, v) for k, v in attributes.items()))


def _study_attributes(study, summary, base_url):
    """``summary``: the whole study's ``series`` and ``instances`` counts and its set of ``modalities``."""
    return dicom_json(
        StudyDate=study.study_date.strftime("%Y%m%d") if study.study_date else None,
        StudyTime=study.study_time,
        AccessionNumber=None,
        ModalitiesInStudy=sorted(summary["modalities"]) or None,
        ReferringPhysicianName=None,
        PatientName=study.patient.patient_id,
        PatientID=study.patient.patient_id,
        PatientBirthDate=None,
        PatientSex=study.patient.sex or None,
        PatientAge=f"{study.patient.age_years:03d}Y"
        if study.patient.age_years is not None
        else None,
        StudyInstanceUID=study.study_instance_uid,
        StudyID=study.study_id,
        StudyDescription=study.description,
        NumberOfStudyRelatedSeries=summary["series"],
        NumberOfStudyRelatedInstances=summary["instances"],
        RetrieveURL=f"{base_url}/studies/{study.study_instance_uid}",
    )


def _series_attributes(series, base_url):
    study_uid = series.study.study_instance_uid
    return dicom_json(
        StudyInstanceUID=study_uid,
        SeriesInstanceUID=series.series_instance_uid,
        Modality=series.modality,
        SeriesDescription=series.description,
        SeriesNumber=series.series_number,
        NumberOfSeriesRelatedInstances=series.n_instances,
        PerformedProcedureStepStartDate=None,
        PerformedProcedureStepStartTime=None,
        RetrieveURL=f"{base_url}/studies/{study_uid}/series/{series.series_instance_uid}",
    )


def _instance_attributes(instance, base_url):
    series = instance.series
    study_uid = series.study.study_instance_uid
    return dicom_json(
        StudyInstanceUID=study_uid,
        SeriesInstanceUID=series.series_instance_uid,
        SOPClassUID=instance.sop_class_uid,
        SOPInstanceUID=instance.sop_instance_uid,
        InstanceNumber=instance.instance_number,
        Rows=instance.rows,
        Columns=instance.columns,
        NumberOfFrames=instance.number_of_frames,
        RetrieveURL=f"{base_url}/studies/{study_uid}/series/{series.series_instance_uid}/instances/{instance.sop_instance_uid}",
    )


def _include_fields(result, metadata, fields):
    """Add ``includefield`` attributes from a representative instance's metadata."""
    if not metadata:
        return result
    if fields == "all":
        for tag, element in metadata.items():
            result.setdefault(tag, element)
        return result
    for tag in fields:
        if tag in metadata:
            result.setdefault(tag, metadata[tag])
    return result


# ---------------------------------------------------------------------------
# QIDO-RS query parameters


_RESERVED = {"limit", "offset", "includefield", "fuzzymatching"}

# QIDO-RS matching keys per level and the model field each one filters on.
STUDY_LOOKUPS = {
    "PatientID": "patient__patient_id",
    "StudyInstanceUID": "study_instance_uid",
    "StudyDate": "study_date",
    "Modality": "series__modality",
}
SERIES_LOOKUPS = {
    "PatientID": "study__patient__patient_id",
    "StudyInstanceUID": "study__study_instance_uid",
    "StudyDate": "study__study_date",
    "SeriesInstanceUID": "series_instance_uid",
    "Modality": "modality",
    "SeriesNumber": "series_number",
}
INSTANCE_LOOKUPS = {
    "StudyInstanceUID": "series__study__study_instance_uid",
    "SeriesInstanceUID": "series__series_instance_uid",
    "SOPInstanceUID": "sop_instance_uid",
    "SOPClassUID": "sop_class_uid",
    "InstanceNumber": "instance_number",
}


class QueryError(ValueError):
    pass


def _keyword(key):
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        return keyword_for_tag(int(key, 16)) or key
    return key


def parse_qido_query(params):
    """Split QIDO-RS query parameters into matches, limit, offset and include fields."""
    matches, include = {}, []
    limit, offset = None, 0
    for key in params:
        values = params.getlist(key)
        if key == "limit":
            limit = _non_negative(key, values[-1])
        elif key == "offset":
            offset = _non_negative(key, values[-1])
        elif key == "includefield":
            for value in values:
                for item in value.split(","):
                    if item == "all":
                        include = "all"
                    elif include != "all" and item:
                        include.append(_include_tag(item))
        elif key not in _RESERVED:
            matches[_keyword(key)] = values[-1]
    return matches, limit, offset, include


def _include_tag(item):
    if re.fullmatch(r"[0-9A-Fa-f]{8}", item):
        return item.upper()
    tag = tag_for_keyword(item)
    if tag is None:
        raise QueryError(f"includefield {item!r} is not a DICOM keyword or tag")
    return f"{tag:08X}"


def _non_negative(key, value):
    if not value.isdigit():
        raise QueryError(f"{key} must be a non-negative integer, not {value!r}")
    return int(value)


def _date(value):
    if not re.fullmatch(r"\d{8}", value):
        raise QueryError(f"StudyDate {value!r} is not a DICOM date (YYYYMMDD) or range")
    return f"{value[:4]}-{value[4:6]}-{value[6:]}"


def like_pattern(value):
    """A DICOM wildcard value (``*`` any run of characters, ``?`` one) as a LIKE pattern, escape ``\\``."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def glob_pattern(value):
    """A DICOM wildcard value as an SQLite GLOB pattern (the same wildcards; ``[`` taken literally)."""
    return value.replace("[", "[[]")


class WildcardMatch(Lookup):
    """``lhs`` matches a DICOM wildcard value (PS3.4 C.2.2.2.4), case-sensitively like an exact match.

    Translated to the database's own pattern matching, LIKE (GLOB on SQLite, whose LIKE
    ignores case), never to a regular expression: both stop early on a value such as
    ``*a*a*a...b`` that a backtracking regular expression takes hours over.
    """

    lookup_name = "dicom_wildcard"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        lhs = (
            connection.ops.lookup_cast("contains", self.lhs.output_field.get_internal_type()) % lhs
        )
        if connection.vendor == "sqlite":
            return f"{lhs} GLOB %s", [*params, glob_pattern(self.rhs)]
        return f"{lhs} LIKE %s ESCAPE '\\'", [*params, like_pattern(self.rhs)]


def apply_matches(queryset, matches, lookups, level):
    """Filter by QIDO-RS matching: single value, UID list, ``*``/``?`` wildcards, date range."""
    for keyword, value in matches.items():
        path = lookups.get(keyword)
        if path is None:
            raise QueryError(
                f"matching on {keyword} is not supported at the {level} level; "
                f"supported: {', '.join(sorted(lookups))}"
            )
        if keyword == "StudyDate":
            if "-" in value:
                low, _, high = value.partition("-")
                if low:
                    queryset = queryset.filter(**{f"{path}__gte": _date(low)})
                if high:
                    queryset = queryset.filter(**{f"{path}__lte": _date(high)})
            else:
                queryset = queryset.filter(**{path: _date(value)})
        elif keyword.endswith("UID"):
            queryset = queryset.filter(**{f"{path}__in": [v for v in value.split(",") if v]})
        elif "*" in value or "?" in value:
            queryset = queryset.filter(WildcardMatch(F(path), value))
        else:
            queryset = queryset.filter(**{path: value})
    return queryset.distinct()


# ---------------------------------------------------------------------------
# Views


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
        return request.build_absolute_uri("/dicomweb").rstrip("/")

    def visible_studies(self, request):
        return Study.objects.visible_to(request.user)

    def handle_exception(self, exc):
        if isinstance(exc, QueryError):
            return JsonResponse({"error": str(exc)}, status=400)
        return super().handle_exception(exc)


# The most results one QIDO-RS answer holds: without ``limit``, or with a larger one, the
# first this many, and a Warning 299 says that more matched (as PS3.18 asks of a server
# that limits the results of a search).
QIDO_MAX_RESULTS = 1000


def qido_page(queryset, limit, offset):
    """The rows of one QIDO-RS answer, and whether :data:`QIDO_MAX_RESULTS` cut it short."""
    capped = limit is None or limit > QIDO_MAX_RESULTS
    size = QIDO_MAX_RESULTS if capped else limit
    rows = list(
        queryset[offset : offset + size + (1 if capped else 0)]
    )  # one more: did more match?
    return rows[:size], len(rows) > size


def _dicom_json_response(items, truncated=False):
    response = HttpResponse(json.dumps(items), content_type=DICOM_JSON)
    if truncated:
        response["Warning"] = (
            '299 portal "The number of results exceeded the maximum supported by the server '
            f'({QIDO_MAX_RESULTS}). Additional results can be requested."'
        )
    return response


class StudiesView(DicomWebView):
    """``GET /dicomweb/studies`` (QIDO-RS) and ``POST /dicomweb/studies[/{study}]`` (STOW-RS)."""

    request_body_limit = "UPLOAD_MAX_TOTAL_BYTES"  # STOW-RS bodies (portal.middleware)

    def get(self, request):
        matches, limit, offset, include = parse_qido_query(request.GET)
        studies = apply_matches(self.visible_studies(request), matches, STUDY_LOOKUPS, "study")
        studies = studies.select_related("patient").order_by("id")
        page, truncated = qido_page(studies, limit, offset)
        # Counts and modalities of the whole study in one grouped query over the page. (Annotating
        # the filtered queryset would reuse the visibility filter's joins and count only the part
        # of a study the user uploaded.)
        summary = {study.pk: {"series": 0, "instances": 0, "modalities": set()} for study in page}
        per_series = (
            Series.objects.filter(study_id__in=summary)
            .values("study_id", "id", "modality")
            .annotate(n=Count("instances"))
        )
        for row in per_series.order_by():
            study_summary = summary[row["study_id"]]
            study_summary["series"] += 1
            study_summary["instances"] += row["n"]
            if row["modality"]:
                study_summary["modalities"].add(row["modality"])
        base = self.base_url(request)
        results = []
        for study in page:
            result = _study_attributes(study, summary[study.pk], base)
            if include:
                first = (
                    Instance.objects.filter(series__study=study)
                    .values_list("metadata", flat=True)
                    .first()
                )
                _include_fields(result, first, include)
            results.append(result)
        return _dicom_json_response(results, truncated)

    def post(self, request):
        return store_instances(request, None, self.base_url(request))


def store_instances(request, study_uid, base_url):
    """STOW-RS: store the parts of a multipart/related request through the one ingest path."""
    if not request.user.has_perm("portal.upload_studies"):
        return JsonResponse({"error": "you may not upload studies"}, status=403)
    # Read in chunks into a temporary file, not .body: its limit is UPLOAD_MAX_TOTAL_BYTES, checked
    # first by Content-Length (portal.middleware), and again here while copying.
    limit = settings.UPLOAD_MAX_TOTAL_BYTES
    body = archives.spool(request, limit, directory=settings.FILE_UPLOAD_TEMP_DIR)
    if body is None:
        return JsonResponse({"error": f"the request body has more than {limit} bytes"}, status=413)
    with body:
        try:
            parts = multipart_related_parts(body, request.META.get("CONTENT_TYPE", ""))
        except ValueError as error:
            return JsonResponse(
                {"error": str(error)}, status=415 if "must be multipart" in str(error) else 400
            )
        files = []
        for index, (part_type, start, end) in enumerate(parts, start=1):
            if not part_type.lower().startswith("application/dicom"):
                return JsonResponse(
                    {
                        "error": f"part {index} has Content-Type {part_type or 'none'}; only application/dicom is accepted"
                    },
                    status=415,
                )
            files.append((f"part {index}", _PartFile(body, start, end)))
        if not files:
            return JsonResponse({"error": "the request has no parts"}, status=400)
        deidentify = request.GET.get("deidentify", "").lower() in {"1", "true", "yes"}
        report = ingest_upload(
            files,
            request.user,
            channel=Upload.Channel.STOW,
            deidentify=deidentify,
            study_instance_uid=study_uid,
        )
    return _store_response(report, base_url, study_uid)


def _failure_reason(result: FileResult):
    reason = result.reason
    if reason.startswith("SOP class"):
        return FAILURE_SOP_CLASS_NOT_SUPPORTED
    if "conflict" in reason:
        return FAILURE_DUPLICATE_CONFLICT
    if "does not match" in reason:
        return FAILURE_STUDY_MISMATCH
    if result.status == "not stored":
        return FAILURE_PROCESSING
    return FAILURE_CANNOT_UNDERSTAND


def _store_response(report, base_url, study_uid):
    referenced, failed, warnings = [], [], []
    for result in report.files:
        if result.status in ("stored", "duplicate") and report.status != "rejected":
            referenced.append(
                dicom_json(
                    ReferencedSOPClassUID=result.SOPClassUID,
                    ReferencedSOPInstanceUID=result.SOPInstanceUID,
                    RetrieveURL=f"{base_url}/studies/{result.StudyInstanceUID}/series/"
                    f"{result.SeriesInstanceUID}/instances/{result.SOPInstanceUID}",
                )
            )
        elif result.status != "skipped":
            failed.append(
                dicom_json(
                    ReferencedSOPClassUID=result.SOPClassUID or None,
                    ReferencedSOPInstanceUID=result.SOPInstanceUID or None,
                    FailureReason=_failure_reason(result),
                )
            )
            warnings.append(f"{result.file}: {result.reason}")
    body = {}
    retrieve_study = study_uid or next(
        (f.StudyInstanceUID for f in report.files if f.StudyInstanceUID), None
    )
    if retrieve_study and referenced:
        body.update(dicom_json(RetrieveURL=f"{base_url}/studies/{retrieve_study}"))
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    status = 200 if not failed else (409 if not referenced else 202)
    response = HttpResponse(json.dumps(body), content_type=DICOM_JSON, status=status)
    if warnings:
        text = "; ".join(warnings)[:2000].replace('"', "'")
        response["Warning"] = f'299 portal "{text.encode("ascii", "replace").decode()}"'
    return response


class StudySeriesView(DicomWebView):
    """``GET /dicomweb/studies/{study}/series`` and root ``GET /dicomweb/series`` (QIDO-RS)."""

    def get(self, request, study=None):
        matches, limit, offset, include = parse_qido_query(request.GET)
        series = Series.objects.filter(study__in=self.visible_studies(request))
        if study is not None:
            get_object_or_404(self.visible_studies(request), study_instance_uid=study)
            series = series.filter(study__study_instance_uid=study)
        series = apply_matches(series, matches, SERIES_LOOKUPS, "series")
        series = (
            series.select_related("study")
            .annotate(n_instances=Count("instances"))
            .order_by("study_id", "series_number", "id")
        )
        page, truncated = qido_page(series, limit, offset)
        base = self.base_url(request)
        results = []
        for one in page:
            result = _series_attributes(one, base)
            if include:
                _include_fields(
                    result, one.instances.values_list("metadata", flat=True).first(), include
                )
            results.append(result)
        return _dicom_json_response(results, truncated)


class SeriesInstancesView(DicomWebView):
    """``GET /dicomweb/studies/{study}/series/{series}/instances`` (QIDO-RS)."""

    def get(self, request, study, series):
        matches, limit, offset, include = parse_qido_query(request.GET)
        one_series = get_object_or_404(
            Series.objects.filter(study__in=self.visible_studies(request)).select_related("study"),
            study__study_instance_uid=study,
            series_instance_uid=series,
        )
        instances = apply_matches(one_series.instances.all(), matches, INSTANCE_LOOKUPS, "instance")
        page, truncated = qido_page(instances, limit, offset)
        base = self.base_url(request)
        results = []
        for instance in page:
            instance.series = one_series
            result = _instance_attributes(instance, base)
            if include:
                _include_fields(result, instance.metadata, include)
            results.append(result)
        return _dicom_json_response(results, truncated)


def _instances_for(request, study, series=None, instance=None):
    instances = Instance.objects.filter(
        series__study__in=Study.objects.visible_to(request.user),
        series__study__study_instance_uid=study,
    )
    if series is not None:
        instances = instances.filter(series__series_instance_uid=series)
    if instance is not None:
        instances = instances.filter(sop_instance_uid=instance)
    return instances.select_related("series__study").order_by(
        "series__series_number", "series_id", "slice_position", "instance_number", "id"
    )


@dataclasses.dataclass(frozen=True)
class StoredInstance:
    """What retrieval needs of one instance: its stored file and frame count."""

    file_name: str
    number_of_frames: int


@functools.cache
def _instance_lookup_sql():
    """One statement (no ORM query building per request): file, frames and study id of an instance by its UIDs."""
    instance, series, study = (m._meta for m in (Instance, Series, Study))
    quote = connection.ops.quote_name

    def column(meta, field):
        return f"{quote(meta.db_table)}.{quote(meta.get_field(field).column)}"

    return (
        f"SELECT {column(instance, 'file')}, {column(instance, 'number_of_frames')}, {column(series, 'study')}"
        f" FROM {quote(instance.db_table)}"
        f" INNER JOIN {quote(series.db_table)} ON {column(instance, 'series')} = {column(series, 'id')}"
        f" INNER JOIN {quote(study.db_table)} ON {column(series, 'study')} = {column(study, 'id')}"
        f" WHERE {column(instance, 'sop_instance_uid')} = %s AND {column(series, 'series_instance_uid')} = %s"
        f" AND {column(study, 'study_instance_uid')} = %s"
    )


def _instance_for(request, study, series, instance):
    """The instance a WADO-RS URL names, or None when it does not exist or the user may not see it.

    One query finds it by its unique SOPInstanceUID (joined to its series and study,
    which must match the URL); visibility is then asked of the one study
    (``Study.objects.is_visible_to``: no query while the answer is cached).
    """
    with connection.cursor() as cursor:
        cursor.execute(_instance_lookup_sql(), [instance, series, study])
        found = cursor.fetchone()
    if found is None or not Study.objects.is_visible_to(request.user, found[2]):
        return None
    return StoredInstance(found[0], found[1])


def _with_bulkdata(metadata, base, study_uid, series_uid, sop_uid, frames):
    """An instance's stored DICOM JSON with PixelData as a BulkDataURI to all its frames."""
    url = f"{base}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/" + ",".join(
        str(i) for i in range(1, frames + 1)
    )
    return {**metadata, "7FE00010": {"vr": "OW", "BulkDataURI": url}}


def _metadata_with_bulkdata(instance, base):
    series = instance.series
    return _with_bulkdata(
        instance.metadata,
        base,
        series.study.study_instance_uid,
        series.series_instance_uid,
        instance.sop_instance_uid,
        instance.number_of_frames,
    )


# WADO-RS metadata of whole series, kept per process as the JSON text of each series' items.
# Opening a case asks for the metadata of four series, most of a case's bytes; building it
# decodes every instance's stored DICOM JSON and encodes it again (benchmarks/load.py). An
# entry is keyed on the series (id and UIDs), the number and the highest id of its instances
# and the base URL: ingest only adds Instance rows (never changes one) and ids only grow, so an
# added or deleted instance changes the key and the next request builds the text anew. At most
# settings.DICOMWEB_METADATA_CACHE_MB of text per process (least recently used first out; 0: off).
_series_metadata = collections.OrderedDict()
_series_metadata_lock = threading.Lock()
_series_metadata_size = 0


def _series_metadata_budget():
    return int(getattr(settings, "DICOMWEB_METADATA_CACHE_MB", 64) * 2**20)


def _series_metadata_text(series_id, study_uid, series_uid, base):
    """``(key, text)``: the DICOM JSON items of one series' instances, joined by ", ", and their key."""
    rows = list(
        Instance.objects.filter(series_id=series_id)
        .order_by("slice_position", "instance_number", "id")
        .values_list("id", "sop_instance_uid", "number_of_frames", "metadata")
    )
    items = []
    for _, sop_uid, frames, metadata in rows:
        items.append(
            json.dumps(_with_bulkdata(metadata, base, study_uid, series_uid, sop_uid, frames))
        )
    key = (
        series_id,
        study_uid,
        series_uid,
        len(rows),
        max((row[0] for row in rows), default=None),
        base,
    )
    return key, ", ".join(items)


def _remember_series_metadata(key, text):
    global _series_metadata_size
    budget = _series_metadata_budget()
    if len(text) > budget:
        return
    with _series_metadata_lock:
        if key in _series_metadata:
            return
        _series_metadata[key] = text
        _series_metadata_size += len(text)
        while _series_metadata_size > budget:
            _, dropped = _series_metadata.popitem(last=False)
            _series_metadata_size -= len(dropped)


@functools.cache
def _series_lookup_sql(one_series):
    """One statement (no ORM query building per request): the series of a study (or the one named)
    that have instances, in series order: id, study id, UIDs, count and highest id of their instances."""
    instance, series, study = (m._meta for m in (Instance, Series, Study))
    quote = connection.ops.quote_name

    def column(meta, field):
        return f"{quote(meta.db_table)}.{quote(meta.get_field(field).column)}"

    selected = [
        column(series, "id"),
        column(series, "study"),
        column(study, "study_instance_uid"),
        column(series, "series_instance_uid"),
    ]
    return (
        f"SELECT {', '.join(selected)}, COUNT({column(instance, 'id')}), MAX({column(instance, 'id')})"
        f" FROM {quote(series.db_table)}"
        f" INNER JOIN {quote(study.db_table)} ON {column(series, 'study')} = {column(study, 'id')}"
        f" INNER JOIN {quote(instance.db_table)} ON {column(instance, 'series')} = {column(series, 'id')}"
        f" WHERE {column(study, 'study_instance_uid')} = %s"
        + (f" AND {column(series, 'series_instance_uid')} = %s" if one_series else "")
        + f" GROUP BY {', '.join(selected)}, {column(series, 'series_number')}"
        f" ORDER BY {column(series, 'series_number')}, {column(series, 'id')}"
    )


def series_metadata_items(user, study, series, base):
    """The WADO-RS metadata of a study (or one of its series) that ``user`` may see: JSON text per series.

    None when the study or series does not exist, has no instances or is not visible
    to the user. One query finds the series with the count and highest id of their
    instances; a series whose key is cached is answered without reading its instances.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _series_lookup_sql(series is not None), [study] if series is None else [study, series]
        )
        found = cursor.fetchall()
    if not found or not Study.objects.is_visible_to(user, found[0][1]):
        return None
    items = []
    keep = _series_metadata_budget() > 0
    for series_id, _, study_uid, series_uid, n, last in found:
        key = (series_id, study_uid, series_uid, n, last, base)
        with _series_metadata_lock:
            text = _series_metadata.get(key) if keep else None
            if text is not None:
                _series_metadata.move_to_end(key)
        if text is None:
            key, text = _series_metadata_text(series_id, study_uid, series_uid, base)
            _remember_series_metadata(key, text)
        items.append(text)
    return items


class MetadataView(DicomWebView):
    """``GET .../studies/{study}[/series/{series}[/instances/{instance}]]/metadata`` (WADO-RS)."""

    throttle_classes = []  # WADO-RS: viewers read in bursts (settings DEFAULT_THROTTLE_CLASSES)

    def get(self, request, study, series=None, instance=None):
        base = self.base_url(request)
        if instance is None:
            items = series_metadata_items(request.user, study, series, base)
            if items is None:
                return JsonResponse({"error": "not found"}, status=404)
            # json.dumps of the list of the same dicts, byte for byte (its separator is ", ").
            return HttpResponse(f"[{', '.join(items)}]", content_type=DICOM_JSON)
        instances = list(_instances_for(request, study, series, instance))
        if not instances:
            return JsonResponse({"error": "not found"}, status=404)
        return _dicom_json_response([_metadata_with_bulkdata(i, base) for i in instances])


def _file_name(instance):
    return instance.file_name if isinstance(instance, StoredInstance) else instance.file.name


def _read_file(instance):
    return read_stored_file(_file_name(instance))


# An instance's bytes never change (a SOPInstanceUID with other content is refused as a
# conflict and files are content-addressed), so its frames and file may be kept by the
# user's browser; "private": never by a shared cache.
IMMUTABLE = "private, max-age=86400, immutable"


def _etag(instance, suffix=""):
    """A strong validator from the stored file's content-addressed name."""
    return f'"{_file_name(instance).rsplit("/", 1)[-1].removesuffix(".dcm")}{suffix}"'


def _cacheable(response, etag):
    response["ETag"], response["Cache-Control"] = etag, IMMUTABLE
    return response


def _not_modified(request, etag):
    """A 304 when the client already holds ``etag`` (If-None-Match), else None."""
    if etag in (request.META.get("HTTP_IF_NONE_MATCH") or "").split(", "):
        return _cacheable(HttpResponse(status=304), etag)
    return None


def _audit_retrieval(request, study, series, n_instances):
    """A study or series retrieved whole (WADO-RS) is a download in the audit log.

    Single instances and frames are not: the viewer reads them slice by slice, as does
    ``/api/v1/instances/{uid}/file/``, and an event per slice would bury the downloads.
    """
    found = (
        Series.objects.filter(series_instance_uid=series)
        if series
        else Study.objects.filter(study_instance_uid=study)
    ).first()
    details = {"StudyInstanceUID": study, "SeriesInstanceUID": series, "instances": n_instances}
    hooks.record(request.user, "download", found, details)


class RetrieveView(DicomWebView):
    """``GET .../studies/{study}[/series/{series}[/instances/{instance}]]`` (WADO-RS, application/dicom).

    A study or series is streamed (:func:`multipart_stream`), file after file; one
    instance is answered whole, with its ETag.
    """

    throttle_classes = []  # WADO-RS: viewers read in bursts (settings DEFAULT_THROTTLE_CLASSES)

    def get(self, request, study, series=None, instance=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if not any(t in accept for t in ("application/dicom", "*/*", "multipart/related;")) or (
            "multipart/related" in accept
            and "application/dicom" not in accept
            and "*/*" not in accept
            and "type=" in accept
        ):
            return JsonResponse(
                {
                    "error": f'cannot answer Accept: {accept}; use multipart/related; type="application/dicom"'
                },
                status=406,
            )
        if instance is None:
            file_names = list(_instances_for(request, study, series).values_list("file", flat=True))
            if not file_names:
                return JsonResponse({"error": "not found"}, status=404)
            _audit_retrieval(request, study, series, len(file_names))
            return multipart_stream(file_names)
        found = _instance_for(request, study, series, instance)
        if found is None:
            return JsonResponse({"error": "not found"}, status=404)
        etag = _etag(found)
        cached = _not_modified(request, etag)
        if cached is not None:
            return cached
        return _cacheable(multipart_response([_read_file(found)], "application/dicom"), etag)


def _check_frame_numbers(frame_numbers, frames):
    for number in frame_numbers:
        if not 1 <= number <= frames:
            raise IndexError(f"frame {number} does not exist: the instance has {frames} frame(s)")


def frame_bytes(data, frame_numbers):
    """The pixel data of the given frames (1-based) as Explicit VR Little Endian native bytes."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    _check_frame_numbers(frame_numbers, frames)
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_compressed and syntax.is_little_endian:
        raw = ds.PixelData
        size = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated // 8
        return [raw[(n - 1) * size : n * size] for n in frame_numbers]
    pixels = ds.pixel_array
    if frames == 1:
        pixels = pixels[np.newaxis]
    return [
        np.ascontiguousarray(pixels[n - 1]).astype(pixels.dtype.newbyteorder("<")).tobytes()
        for n in frame_numbers
    ]


@functools.lru_cache(maxsize=16384)
def native_frame_layout(name):
    """``(offset, frame size, frames)`` of the pixel data in stored file ``name``, or None.

    None unless the file is native little endian (not compressed, not deflated) with
    a PixelData element of defined length that holds every frame: then a frame is
    read straight from the file, without parsing it again. Cached per name: files are
    content-addressed (``ingest.storage_name``), so a name always holds the same bytes.
    """
    with default_storage.open(name, "rb") as handle:
        ds = pydicom.dcmread(handle, force=True, defer_size=1024)
        syntax = ds.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in ds.file_meta else None
        if (
            syntax is None
            or syntax.is_compressed
            or syntax.is_deflated
            or not syntax.is_little_endian
        ):
            return None
        pixel_data = ds.get_item(0x7FE00010, keep_deferred=True)
        if (
            pixel_data is None
            or getattr(pixel_data, "value_tell", None) is None
            or pixel_data.value is not None
        ):
            return None
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        size = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated // 8
        if size <= 0 or pixel_data.length == 0xFFFFFFFF or pixel_data.length < frames * size:
            return None
        return pixel_data.value_tell, size, frames


def read_frames(instance, frame_numbers):
    """The given frames (1-based) of a stored instance, as :func:`frame_bytes` gives them."""
    name = _file_name(instance)
    layout = native_frame_layout(name)
    if layout is None:
        return frame_bytes(_read_file(instance), frame_numbers)
    offset, size, frames = layout
    _check_frame_numbers(frame_numbers, frames)
    with default_storage.open(name, "rb") as handle:
        content = []
        for number in frame_numbers:
            handle.seek(offset + (number - 1) * size)
            content.append(handle.read(size))
    return content


# The most frame numbers one WADO-RS frames request may list.
FRAMES_MAX_PER_REQUEST = 1000


class FramesView(DicomWebView):
    """``GET .../instances/{instance}/frames/{frames}`` (WADO-RS, application/octet-stream).

    The frames are answered in the order of the list (PS3.18 10.4.1.1.4), each once: a
    number listed again is answered at its first place only. A list of more than
    :data:`FRAMES_MAX_PER_REQUEST` numbers, or of more numbers than the instance has
    frames, is refused (400) before any frame is read.
    """

    throttle_classes = []  # WADO-RS: viewers read in bursts (settings DEFAULT_THROTTLE_CLASSES)

    def get(self, request, study, series, instance, frames):
        listed = frames.split(",")
        if len(listed) > FRAMES_MAX_PER_REQUEST:
            return JsonResponse(
                {
                    "error": f"the frame list has {len(listed)} numbers; at most {FRAMES_MAX_PER_REQUEST} per request"
                },
                status=400,
            )
        try:
            numbers = list(dict.fromkeys(int(n) for n in listed))
        except ValueError:
            return JsonResponse(
                {"error": f"frame list {frames!r} must be comma-separated integers"}, status=400
            )
        found = _instance_for(request, study, series, instance)
        if found is None:
            return JsonResponse({"error": "not found"}, status=404)
        if len(listed) > found.number_of_frames:
            return JsonResponse(
                {
                    "error": f"the frame list has {len(listed)} numbers; the instance has {found.number_of_frames} frame(s)"
                },
                status=400,
            )
        etag = _etag(
            found, "-" + hashlib.sha256(",".join(map(str, numbers)).encode()).hexdigest()[:16]
        )
        cached = _not_modified(request, etag)
        if cached is not None:
            return cached
        try:
            content = read_frames(found, numbers)
        except IndexError as error:
            return JsonResponse({"error": str(error)}, status=404)
        response = multipart_response(
            content, f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
        )
        return _cacheable(response, etag)


class StudyView(RetrieveView):
    """``GET /dicomweb/studies/{study}`` (WADO-RS) and ``POST`` to it (STOW-RS into that study)."""

    request_body_limit = "UPLOAD_MAX_TOTAL_BYTES"  # STOW-RS bodies (portal.middleware)

    def post(self, request, study):
        return store_instances(request, study, self.base_url(request))
