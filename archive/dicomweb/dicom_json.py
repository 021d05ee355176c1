"""The DICOM JSON model (PS3.18 F.2): attributes by tag, value representation and value.

Answers are ``application/dicom+json``; pixel data is never inlined but named by a
``BulkDataURI`` (PS3.18 F.2.6) to the instance's WADO-RS frames.
"""

import json

from django.http import HttpResponse
from pydicom.datadict import dictionary_VR, tag_for_keyword

DICOM_JSON = "application/dicom+json"


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


def dicom_json_response(content, status=200):
    """An ``application/dicom+json`` HttpResponse of ``content`` (``json.dumps``, its default separators)."""
    return HttpResponse(json.dumps(content), content_type=DICOM_JSON, status=status)


def with_bulkdata(metadata, base, study_uid, series_uid, sop_uid, frames):
    """An instance's stored DICOM JSON with PixelData as a BulkDataURI to all its frames."""
    url = f"{base}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/" + ",".join(
        str(i) for i in range(1, frames + 1)
    )
    return {**metadata, "7FE00010": {"vr": "OW", "BulkDataURI": url}}


def metadata_with_bulkdata(instance, base):
    """:func:`with_bulkdata` of an Instance row (its series and study selected with it)."""
    series = instance.series
    return with_bulkdata(
        instance.metadata,
        base,
        series.study.study_instance_uid,
        series.series_instance_uid,
        instance.sop_instance_uid,
        instance.number_of_frames,
    )
