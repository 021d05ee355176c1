"""QIDO-RS (PS3.18 10.6): searching studies, series and instances.

Answers are ``application/dicom+json`` (PS3.18 F.2), 200 with an array, also when it is
empty (``[]``). Matching follows PS3.4 C.2.2.2: single value, UID list, ``*``/``?``
wildcards, date range.
"""

import re

from django.db.models import Count, F, Lookup
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from pydicom.datadict import keyword_for_tag, tag_for_keyword

from ..models import Instance, Series
from .base import DicomWebView
from .dicom_json import dicom_json, dicom_json_response
from .stow import store_instances

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
    """A QIDO-RS query the server cannot answer; its message is the 400 answer."""


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


def _qido_response(items, truncated):
    """The DICOM JSON answer, with PS3.18's Warning when :func:`qido_page` cut the results short."""
    response = dicom_json_response(items)
    if truncated:
        response["Warning"] = (
            '299 portal "The number of results exceeded the maximum supported by the server '
            f'({QIDO_MAX_RESULTS}). Additional results can be requested."'
        )
    return response


class QidoView(DicomWebView):
    """A QIDO-RS search: a query the server cannot answer is a 400 naming what is wrong."""

    def handle_exception(self, exc):
        if isinstance(exc, QueryError):
            return JsonResponse({"error": str(exc)}, status=400)
        return super().handle_exception(exc)


class StudiesView(QidoView):
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
        return _qido_response(results, truncated)

    def post(self, request):
        return store_instances(request, None, self.base_url(request))


class StudySeriesView(QidoView):
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
        return _qido_response(results, truncated)


class SeriesInstancesView(QidoView):
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
        return _qido_response(results, truncated)
