"""WADO-RS (PS3.18 10.4): retrieving instances, their metadata and their frames.

- Metadata answers the DICOM JSON of every instance (PS3.18 F.2), with the pixel data
  as a ``BulkDataURI``; a series' metadata text is kept per process.
- Instances come as ``multipart/related; type="application/dicom"`` and frames as
  ``multipart/related; type="application/octet-stream"`` in Explicit VR Little Endian
  (decoded when the stored file is compressed).

A user retrieves only the studies they may see; what a browser may keep is said by
ETag and Cache-Control, since an instance's bytes never change.
"""

import collections
import dataclasses
import functools
import hashlib
import io
import json
import threading

import numpy as np
import pydicom
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpResponse, JsonResponse
from pydicom.uid import ExplicitVRLittleEndian

from .. import hooks
from ..ingest import read_stored_file
from ..models import Instance, Series, Study
from .base import DicomWebView
from .dicom_json import DICOM_JSON, dicom_json_response, metadata_with_bulkdata, with_bulkdata
from .multipart import multipart_response, multipart_stream
from .stow import store_instances


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


def _column(meta, field):
    """``table.column`` of a model field, quoted for the database (for the hand-written lookups)."""
    quote = connection.ops.quote_name
    return f"{quote(meta.db_table)}.{quote(meta.get_field(field).column)}"


@functools.cache
def _instance_lookup_sql():
    """One statement (no ORM query building per request): file, frames and study id of an instance by its UIDs."""
    instance, series, study = (m._meta for m in (Instance, Series, Study))
    quote = connection.ops.quote_name
    return (
        f"SELECT {_column(instance, 'file')}, {_column(instance, 'number_of_frames')}, {_column(series, 'study')}"
        f" FROM {quote(instance.db_table)}"
        f" INNER JOIN {quote(series.db_table)} ON {_column(instance, 'series')} = {_column(series, 'id')}"
        f" INNER JOIN {quote(study.db_table)} ON {_column(series, 'study')} = {_column(study, 'id')}"
        f" WHERE {_column(instance, 'sop_instance_uid')} = %s AND {_column(series, 'series_instance_uid')} = %s"
        f" AND {_column(study, 'study_instance_uid')} = %s"
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
            json.dumps(with_bulkdata(metadata, base, study_uid, series_uid, sop_uid, frames))
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
    selected = [
        _column(series, "id"),
        _column(series, "study"),
        _column(study, "study_instance_uid"),
        _column(series, "series_instance_uid"),
    ]
    return (
        f"SELECT {', '.join(selected)}, COUNT({_column(instance, 'id')}), MAX({_column(instance, 'id')})"
        f" FROM {quote(series.db_table)}"
        f" INNER JOIN {quote(study.db_table)} ON {_column(series, 'study')} = {_column(study, 'id')}"
        f" INNER JOIN {quote(instance.db_table)} ON {_column(instance, 'series')} = {_column(series, 'id')}"
        f" WHERE {_column(study, 'study_instance_uid')} = %s"
        + (f" AND {_column(series, 'series_instance_uid')} = %s" if one_series else "")
        + f" GROUP BY {', '.join(selected)}, {_column(series, 'series_number')}"
        f" ORDER BY {_column(series, 'series_number')}, {_column(series, 'id')}"
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
        return dicom_json_response([metadata_with_bulkdata(i, base) for i in instances])


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
                    "error": f"the frame list has {len(listed)} numbers; "
                    f"the instance has {found.number_of_frames} frame(s)"
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
