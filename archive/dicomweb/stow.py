"""STOW-RS (PS3.18 10.5): storing instances through the archive's one ingest path.

The request is ``multipart/related; type="application/dicom"``; the answer is the
PS3.18 store response (ReferencedSOPSequence / FailedSOPSequence, failure reasons
of PS3.4 Annex B). The upload is all-or-nothing like every other upload (409 when
it is refused).
"""

from django.conf import settings
from django.http import JsonResponse

from portal.roles import UPLOAD_STUDIES, can

from .. import archives
from ..ingest import FileResult, ingest_upload
from ..models import Upload
from .dicom_json import dicom_json, dicom_json_response
from .multipart import PartFile, multipart_related_parts

# PS3.4 Annex B / PS3.18 failure reasons used in FailedSOPSequence.
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE_CONFLICT = 0x0111
FAILURE_SOP_CLASS_NOT_SUPPORTED = 0x0122
FAILURE_STUDY_MISMATCH = 0xA900
FAILURE_CANNOT_UNDERSTAND = 0xC000


def store_instances(request, study_uid, base_url):
    """STOW-RS: store the parts of a multipart/related request through the one ingest path."""
    if not can(request.user, UPLOAD_STUDIES):
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
                        "error": f"part {index} has Content-Type {part_type or 'none'}; "
                        "only application/dicom is accepted"
                    },
                    status=415,
                )
            files.append((f"part {index}", PartFile(body, start, end)))
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
    response = dicom_json_response(body, status=status)
    if warnings:
        text = "; ".join(warnings)[:2000].replace('"', "'")
        response["Warning"] = f'299 portal "{text.encode("ascii", "replace").decode()}"'
    return response
