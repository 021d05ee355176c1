"""One ingest path for every upload: browser, REST, STOW-RS, command line.

An upload is all-or-nothing. Every file is unpacked, parsed, checked (SOP class,
UIDs, decodable pixel data, de-identification) and compared with the archive first;
if any file is rejected, nothing is written and the report names each bad file and
why. Otherwise the files are written to content-addressed storage and the rows are
created in one transaction; files written by an upload whose transaction fails are
removed again.

Memory stays bounded whatever the size of the upload: files are checked one at a
time, and each accepted file waits for the verdict on the others in a temporary
file (:class:`_Spool`), not in memory. One budget of files and bytes holds for the
whole upload (``archives.UploadBudget``); a file's decoded pixel data and a deflated
data set's inflated size are bounded before they are decoded (``dicomfiles.DecodeLimits``).
"""

import contextlib
import errno
import hashlib
import io
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass, field

import pydicom
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.utils.functional import empty

from . import archives, deid, dicomfiles, hooks
from .models import (
    Instance,
    Patient,
    Phase,
    PhaseSource,
    Series,
    Study,
    Upload,
    UploadStatus,
    may_add_to_study,
)
from .phase import SeriesTiming, classify_phase

logger = logging.getLogger(__name__)

STORED = "stored"
DUPLICATE = "duplicate"
REJECTED = "rejected"
SKIPPED = "skipped"
NOT_STORED = "not stored"

# The one answer for a file of a study already in the archive that the uploader may not
# add to. Its words are the same whether the uploader can see the study or not, and it
# comes before any comparison with the stored study (PatientID, series), so an upload
# cannot probe what the archive holds.
NOT_YOURS = (
    "StudyInstanceUID: this study is already in the archive and you may not add to it "
    "(only the user who uploaded it first, or a coordinator, may add instances or series to a study)"
)


# No space left, disk quota exceeded, file too large for the file system or its limit.
STORAGE_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class StorageFull(Exception):
    """Storage refused an upload's files for want of space; nothing was stored (the API answers 507)."""


@dataclass
class FileResult:
    """What happened to one file of an upload (one row of the result table)."""

    file: str
    status: str
    reason: str = ""
    SOPInstanceUID: str = ""
    SOPClassUID: str = ""
    StudyInstanceUID: str = ""
    SeriesInstanceUID: str = ""

    def as_dict(self):
        return {k: v for k, v in self.__dict__.items() if v != "" or k in ("file", "status")}


@dataclass
class IngestReport:
    """The outcome of one upload: overall status, per-file results and the Upload row (if any)."""

    status: str
    files: list = field(default_factory=list)
    upload: Upload | None = None

    def count(self, status):
        return sum(1 for f in self.files if f.status == status)

    def as_dict(self):
        return {
            "status": self.status,
            "upload": self.upload.pk if self.upload else None,
            "stored": self.count(STORED),
            "duplicate": self.count(DUPLICATE),
            "rejected": self.count(REJECTED),
            "skipped": self.count(SKIPPED),
            "files": [f.as_dict() for f in self.files],
        }


class _Spool:
    """The accepted files of one upload, one after another in a temporary file, until they are stored.

    In memory up to ``archives.SPOOL_MEMORY_BYTES`` (an upload of a slice or two), then
    on disk in ``FILE_UPLOAD_TEMP_DIR``; the file is gone when closed (also when the
    process dies: it has no name).
    """

    def __init__(self):
        self.file = tempfile.SpooledTemporaryFile(
            max_size=archives.SPOOL_MEMORY_BYTES, dir=settings.FILE_UPLOAD_TEMP_DIR
        )
        self.end = 0

    def add(self, data):
        """Keep ``data``; returns its offset."""
        self.file.seek(self.end)
        self.file.write(data)
        offset, self.end = self.end, self.end + len(data)
        return offset

    def read(self, offset, size):
        self.file.seek(offset)
        return self.file.read(size)

    def copy_to(self, offset, size, destination):
        """Copy ``size`` bytes from ``offset`` to the binary file ``destination`` in chunks."""
        self.file.seek(offset)
        while size > 0:
            chunk = self.file.read(min(size, 1 << 20))
            destination.write(chunk)
            size -= len(chunk)

    def close(self):
        self.file.close()


@dataclass
class _Candidate:
    result: FileResult
    spool: _Spool
    offset: int
    size: int
    sha256: str
    attributes: dicomfiles.InstanceAttributes
    metadata: dict

    @property
    def data(self):
        """The file's bytes, read back from the spool (only on a UID clash and to store it)."""
        return self.spool.read(self.offset, self.size)


def upload_limits():
    """The zip and size limits from settings."""
    return archives.UploadLimits(
        max_file_bytes=settings.UPLOAD_MAX_FILE_BYTES,
        max_total_bytes=settings.UPLOAD_MAX_TOTAL_BYTES,
        max_members=settings.UPLOAD_MAX_MEMBERS,
        max_ratio=settings.UPLOAD_MAX_ZIP_RATIO,
    )


def decode_limits():
    """The bounds on decoding one file from settings: pixel data (PIXELS_MAX_MB), deflated data sets."""
    return dicomfiles.DecodeLimits(
        max_pixel_bytes=settings.PIXELS_MAX_BYTES,
        max_inflated_bytes=settings.UPLOAD_MAX_FILE_BYTES,
        max_inflate_ratio=settings.UPLOAD_MAX_ZIP_RATIO,
    )


def storage_name(sha256):
    """The one storage path helper: content-addressed by SHA-256."""
    return f"instances/{sha256[:2]}/{sha256[2:4]}/{sha256}.dcm"


def dataset_bytes(ds):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def metadata_json(ds):
    """DICOM JSON of ``ds`` without its pixel data (the WADO-RS metadata adds a BulkDataURI)."""
    pixel_tags = [t for t in (0x7FE00008, 0x7FE00009, 0x7FE00010) if t in ds]
    removed = [ds.pop(t) for t in pixel_tags]
    try:
        return ds.to_json_dict(bulk_data_threshold=10**9, bulk_data_element_handler=None)
    finally:
        for element in removed:
            ds[element.tag] = element


def _prepare(name, data, context, pseudonym_pattern, spool, limits):
    """Parse, check and (if asked) de-identify one file: a candidate (kept in ``spool``) or a rejection."""
    try:
        ds = dicomfiles.read_instance(data, name, limits)
    except dicomfiles.DicomRejected as rejection:
        return FileResult(name, REJECTED, rejection.reason)
    identifiers = FileResult(name, REJECTED, SOPInstanceUID=str(ds.get("SOPInstanceUID", "")))
    if context is not None:
        if ds.get("BurnedInAnnotation", "") == "YES":
            identifiers.reason = (
                "BurnedInAnnotation is YES: burned-in identifiers cannot be removed by the server"
            )
            return identifiers
        ds = deid.deidentify(ds, context)
        data = dataset_bytes(ds)
    else:
        problems = deid.check_deidentified(ds, pseudonym_pattern=pseudonym_pattern)
        if problems:
            identifiers.reason = (
                "not de-identified: "
                + "; ".join(problems)
                + " (remove them, or upload with deidentify=true to have the server de-identify)"
            )
            return identifiers
        if deid.strip_private_tags(ds):
            data = dataset_bytes(ds)
        elif not dicomfiles.is_part10(data):
            # Stored and served as a PS3.10 file (WADO-RS application/dicom), the data set's bytes unchanged.
            data = dicomfiles.as_part10(data, ds)
    attributes = dicomfiles.indexed_attributes(ds)
    if not attributes.PatientID:
        identifiers.reason = (
            "PatientID is empty: a pseudonymous PatientID is needed to group studies by patient"
        )
        return identifiers
    result = FileResult(
        name,
        STORED,
        SOPInstanceUID=attributes.SOPInstanceUID,
        SOPClassUID=attributes.SOPClassUID,
        StudyInstanceUID=attributes.StudyInstanceUID,
        SeriesInstanceUID=attributes.SeriesInstanceUID,
    )
    sha256 = hashlib.sha256(data).hexdigest()
    return _Candidate(
        result, spool, spool.add(data), len(data), sha256, attributes, metadata_json(ds)
    )


@dataclass
class _Known:
    """The studies (with their patient) and series (with their study) the archive already holds for an upload."""

    studies: dict
    series: dict


def _check_against_archive(candidates, user):
    """Mark refusals, duplicates (same UID, same bytes) and conflicts (same UID, other bytes, or other patient).

    A file whose study, series or instance is already in the archive under a study that
    ``user`` may not add to (:func:`archive.models.may_add_to_study`) is refused with
    :data:`NOT_YOURS` before anything else is compared. Returns the candidates to store
    and the :class:`_Known` rows they refer to.
    """
    by_uid = {}
    fresh = []
    for candidate in candidates:
        uid = candidate.attributes.SOPInstanceUID
        earlier = by_uid.get(uid)
        if earlier is not None:
            if earlier.sha256 == candidate.sha256 or dicomfiles.same_data_set(
                earlier.data, candidate.data
            ):
                candidate.result.status, candidate.result.reason = (
                    DUPLICATE,
                    f"same data set as {earlier.result.file} in this upload",
                )
            else:
                candidate.result.status = REJECTED
                candidate.result.reason = (
                    f"SOPInstanceUID conflict: {earlier.result.file} in this upload "
                    "has the same UID with different content"
                )
            continue
        by_uid[uid] = candidate
        fresh.append(candidate)

    stored = {
        uid: (sha256, name, creator)
        for uid, sha256, name, creator in Instance.objects.filter(
            sop_instance_uid__in=list(by_uid)
        ).values_list("sop_instance_uid", "sha256", "file", "series__study__created_by")
    }
    known_series = {
        s.series_instance_uid: s
        for s in Series.objects.select_related("study__patient").filter(
            series_instance_uid__in={c.attributes.SeriesInstanceUID for c in fresh}
        )
    }
    # A known series brings its study (and patient) along; the others are asked for
    # only when an upload names a study through none of its known series.
    known_studies = {s.study.study_instance_uid: s.study for s in known_series.values()}
    missing = {c.attributes.StudyInstanceUID for c in fresh} - set(known_studies)
    if missing:
        known_studies.update(
            (s.study_instance_uid, s)
            for s in Study.objects.select_related("patient").filter(study_instance_uid__in=missing)
        )
    known = _Known(studies=known_studies, series=known_series)
    study_patients = {uid: study.patient.patient_id for uid, study in known.studies.items()}
    series_studies = {uid: series.study.study_instance_uid for uid, series in known.series.items()}
    new = []
    for candidate in fresh:
        a, result = candidate.attributes, candidate.result
        creators = []  # of the stored studies this file would touch: its study, its series' study, its UID's study
        if a.StudyInstanceUID in known.studies:
            creators.append(known.studies[a.StudyInstanceUID].created_by_id)
        if a.SeriesInstanceUID in known.series:
            creators.append(known.series[a.SeriesInstanceUID].study.created_by_id)
        if a.SOPInstanceUID in stored:
            creators.append(stored[a.SOPInstanceUID][2])
        if not all(may_add_to_study(user, creator) for creator in creators):
            result.status, result.reason = REJECTED, NOT_YOURS
            continue
        if a.SOPInstanceUID in stored:
            sha256, name, _ = stored[a.SOPInstanceUID]
            if sha256 == candidate.sha256:
                result.status, result.reason = DUPLICATE, "already in the archive (identical file)"
            elif _stored_data_set_equals(name, candidate.data):
                result.status = DUPLICATE
                result.reason = (
                    "already in the archive (the same data set; "
                    "only the preamble or File Meta Information differ)"
                )
            else:
                result.status = REJECTED
                result.reason = "SOPInstanceUID conflict: the archive holds a different file with this SOPInstanceUID"
            continue
        if study_patients.get(a.StudyInstanceUID, a.PatientID) != a.PatientID:
            result.status = REJECTED
            result.reason = (
                "StudyInstanceUID conflict: the archive holds this study under another PatientID"
            )
            continue
        if series_studies.get(a.SeriesInstanceUID, a.StudyInstanceUID) != a.StudyInstanceUID:
            result.status = REJECTED
            result.reason = (
                "SeriesInstanceUID conflict: the archive holds this series in another study"
            )
            continue
        new.append(candidate)
    return new, known


def read_stored_file(name):
    """The stored file ``name`` as a PS3.10 file (what ``application/dicom`` means).

    Ingest stores every instance as a Part 10 file; a file stored without its
    preamble and File Meta Information by an earlier version is completed here.
    """
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    if dicomfiles.is_part10(data):
        return data
    return dicomfiles.as_part10(
        data, pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    )


def _stored_data_set_equals(name, data):
    """True when the stored file ``name`` holds the same data set as ``data`` (read only on a UID clash)."""
    try:
        return dicomfiles.same_data_set(read_stored_file(name), data)
    except OSError:
        return False


def ingest_upload(
    files, user, channel=Upload.Channel.REST, deidentify=False, study_instance_uid=None
):
    """Validate and store an upload, all or nothing.

    ``files`` is an iterable of ``(name, file object or bytes)``; zip archives are
    unpacked (one nested level). With ``study_instance_uid`` (STOW-RS into a named
    study) a file of another study is refused like any invalid file. Returns an :class:`IngestReport`; its status is
    ``rejected`` (nothing stored, see the per-file reasons), ``duplicate`` (nothing
    new) or ``stored``.
    """
    spool = _Spool()
    try:
        return _ingest(files, user, channel, deidentify, study_instance_uid, spool)
    finally:
        spool.close()


def _ingest(files, user, channel, deidentify, study_instance_uid, spool):
    budget = archives.UploadBudget(upload_limits())
    limits = decode_limits()
    context = deid.DeidentificationContext(secret=settings.DEID_SECRET) if deidentify else None
    pattern = settings.DEID_PSEUDONYM_PATTERN or None
    results, candidates = [], []
    for name, source in files:
        for member in archives.iter_upload_files(name, source, budget=budget):
            if member.skipped:
                results.append(FileResult(member.name, SKIPPED, member.reason))
            elif member.reason:
                results.append(FileResult(member.name, REJECTED, member.reason))
            else:
                prepared = _prepare(member.name, member.data, context, pattern, spool, limits)
                if (
                    study_instance_uid
                    and isinstance(prepared, _Candidate)
                    and prepared.attributes.StudyInstanceUID != study_instance_uid
                ):
                    prepared = prepared.result
                    prepared.status = REJECTED
                    prepared.reason = (
                        f"StudyInstanceUID does not match {study_instance_uid} in the request URL"
                    )
                if isinstance(prepared, _Candidate):
                    candidates.append(prepared)
                    results.append(prepared.result)
                else:
                    results.append(prepared)
    if not results:
        return IngestReport(
            REJECTED, [FileResult("(upload)", REJECTED, "the upload contains no files")]
        )

    new, known = _check_against_archive(candidates, user)
    if any(r.status == REJECTED for r in results):
        for candidate in new:
            candidate.result.status = NOT_STORED
            candidate.result.reason = (
                "valid, but not stored because other files of this upload were rejected"
            )
        return IngestReport(REJECTED, results)

    written = []
    try:
        for candidate in new:
            saved = _write(storage_name(candidate.sha256), candidate)
            if saved is not None:
                written.append(saved)
        with transaction.atomic():
            upload = Upload.objects.create(
                user=user,
                channel=channel,
                status=UploadStatus.STORED if new else UploadStatus.DUPLICATE,
                deidentify=deidentify,
                n_stored=len(new),
                n_duplicate=sum(1 for r in results if r.status == DUPLICATE),
                n_rejected=0,
                report=[r.as_dict() for r in results],
            )
            _create_rows(new, upload, known)
    except IntegrityError:
        _remove(written)
        logger.warning(
            "upload by %s lost a race with a concurrent upload of the same instances", user
        )
        for candidate in new:
            candidate.result.status = NOT_STORED
            candidate.result.reason = (
                "a concurrent upload stored some of these instances; retry the upload"
            )
        return IngestReport(REJECTED, results)
    except OSError as error:
        _remove(written)
        if error.errno in STORAGE_FULL_ERRNOS:
            raise StorageFull(
                f"the archive's storage is full ({os.strerror(error.errno)}): nothing of this upload was stored; "
                "tell an administrator"
            ) from error
        raise
    except Exception:
        _remove(written)
        raise
    return IngestReport(upload.status, results, upload)


def _write(name, candidate):
    """Store ``candidate``'s file under its content-addressed ``name``; the name if this call wrote it.

    On a local FileSystemStorage the file is written under a temporary name and
    hard-linked to ``name`` (an existing file, identical by construction, is left
    alone unless its size shows it was cut short, and a concurrent writer of the same
    name cannot be overwritten); the folders are made only when missing. Other
    storages go through the storage API.
    """
    if default_storage._wrapped is empty:
        default_storage._setup()
    storage = default_storage._wrapped
    if type(storage) is FileSystemStorage and storage.directory_permissions_mode is None:
        path = storage.path(name)
        # Written under a name of its own, then linked to ``name`` in one step: a process
        # killed mid-write leaves a ``.incoming`` file (listed by verify_archive), never a
        # file cut short under the content address that the next upload would trust.
        incoming = f"{path}.{uuid.uuid4().hex[:12]}.incoming"
        try:
            handle = open(incoming, "xb")
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            handle = open(incoming, "xb")
        try:
            with handle:
                candidate.spool.copy_to(candidate.offset, candidate.size, handle)
            if storage.file_permissions_mode is not None:
                os.chmod(incoming, storage.file_permissions_mode)
            try:
                os.link(
                    incoming, path
                )  # fails when ``name`` exists: a concurrent writer is never overwritten
            except FileExistsError:
                if (
                    os.path.getsize(path) != candidate.size
                ):  # cut short by a writer killed before this version
                    os.replace(incoming, path)
                return None
        finally:
            handle.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(incoming)
        return name
    if default_storage.exists(name):
        return None
    try:
        return default_storage.save(name, ContentFile(candidate.data))
    except (
        FileExistsError
    ):  # written since exists() by a concurrent upload (archive.object_storage never overwrites)
        return None


def _remove(names):
    """Delete the files this upload wrote, after its rows were not stored.

    A file that an Instance row names stays: a concurrent upload of the same instance
    found it written by this one and stored its rows first. When the database cannot
    tell, every file stays (``verify_archive`` lists them as orphans).
    """
    if not names:
        return
    try:
        kept = set(Instance.objects.filter(file__in=names).values_list("file", flat=True))
    except DatabaseError:
        logger.exception(
            "files of a failed upload left in place: the database cannot tell which are in use"
        )
        return
    for name in names:
        if name in kept:
            continue
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not remove %s after a failed upload", name)


def _create_rows(candidates, upload, known):
    # Rows found by _check_against_archive are reused; get_or_create covers the rest
    # (and a concurrent upload that created one of them meanwhile).
    patients, studies, series = {}, {}, {}
    grown = set()  # studies that got a new series: their phases are classified again
    # StudyInstanceUID of a study already in the archive
    # -> (study, new SOPInstanceUIDs, new SeriesInstanceUIDs)
    added = {}
    instances = []
    for candidate in candidates:
        a = candidate.attributes
        patient = patients.get(a.PatientID)
        if patient is None:
            known_study = known.studies.get(a.StudyInstanceUID)
            if known_study is not None:  # its patient is this PatientID (checked)
                patient, created = known_study.patient, False
            else:
                patient, created = Patient.objects.get_or_create(
                    patient_id=a.PatientID,
                    defaults={"sex": a.PatientSex or "", "age_years": a.PatientAge},
                )
            if not created and patient.age_years is None and a.PatientAge is not None:
                patient.age_years = a.PatientAge
                patient.save(update_fields=["age_years"])
            patients[a.PatientID] = patient
        study = studies.get(a.StudyInstanceUID)
        if study is None:
            study = known.studies.get(a.StudyInstanceUID)
            existed = study is not None
            if study is None:
                study, created = Study.objects.get_or_create(
                    study_instance_uid=a.StudyInstanceUID,
                    defaults={
                        "patient": patient,
                        "study_date": a.StudyDate,
                        "study_time": a.StudyTime or "",
                        "study_id": a.StudyID or "",
                        "description": a.StudyDescription or "",
                        "created_by": upload.user,
                    },
                )
                existed = not created
                if existed and not may_add_to_study(upload.user, study.created_by_id):
                    # Created by a concurrent upload of someone else: refused like a lost race.
                    raise IntegrityError(f"study {study.pk} was created by a concurrent upload")
            if existed:
                added[a.StudyInstanceUID] = (study, [], [])
        studies[a.StudyInstanceUID] = study
        one_series = series.get(a.SeriesInstanceUID) or known.series.get(a.SeriesInstanceUID)
        if one_series is None:
            one_series, created = Series.objects.get_or_create(
                series_instance_uid=a.SeriesInstanceUID,
                defaults={
                    "study": study,
                    "modality": a.Modality,
                    "series_number": a.SeriesNumber,
                    "description": a.SeriesDescription or "",
                    "frame_of_reference_uid": a.FrameOfReferenceUID or "",
                    "acquisition_time": a.AcquisitionTime or "",
                    "contrast_bolus_agent": a.ContrastBolusAgent or "",
                    "contrast_bolus_start_time": a.ContrastBolusStartTime or "",
                },
            )
            if created:
                grown.add(a.StudyInstanceUID)
                if a.StudyInstanceUID in added:
                    added[a.StudyInstanceUID][2].append(a.SeriesInstanceUID)
        series[a.SeriesInstanceUID] = one_series
        if a.StudyInstanceUID in added:
            added[a.StudyInstanceUID][1].append(a.SOPInstanceUID)
        instances.append(
            Instance(
                sop_instance_uid=a.SOPInstanceUID,
                sop_class_uid=a.SOPClassUID,
                series=one_series,
                upload=upload,
                instance_number=a.InstanceNumber,
                image_position_patient=a.ImagePositionPatient,
                image_orientation_patient=a.ImageOrientationPatient,
                slice_position=a.slice_position,
                pixel_spacing=a.PixelSpacing,
                slice_thickness=a.SliceThickness,
                rows=a.Rows,
                columns=a.Columns,
                number_of_frames=a.NumberOfFrames or 1,
                rescale_intercept=a.RescaleIntercept if a.RescaleIntercept is not None else 0.0,
                rescale_slope=a.RescaleSlope if a.RescaleSlope is not None else 1.0,
                window_center=a.WindowCenter,
                window_width=a.WindowWidth,
                transfer_syntax_uid=a.TransferSyntaxUID,
                acquisition_time=a.AcquisitionTime or "",
                sha256=candidate.sha256,
                file=storage_name(candidate.sha256),
                size_bytes=candidate.size,
                metadata=candidate.metadata,
            )
        )
    Instance.objects.bulk_create(instances, batch_size=500)
    for study, instance_uids, series_uids in added.values():
        _audit_addition(upload, study, instance_uids, series_uids)
    # A phase depends only on the attributes of the study's series, which are fixed
    # when a series is created: an upload that only adds slices changes no phase.
    for uid, study in studies.items():
        if uid in grown:
            classify_study_phases(study)


def _audit_addition(upload, study, instance_uids, series_uids):
    """One audit event for instances (and series) added to a study that was already in the archive."""
    hooks.record(
        upload.user,
        "update",
        object_type="study",
        object_id=study.pk,
        changes={
            "upload": [None, upload.pk],
            "instances_added": [None, len(instance_uids)],
            "series_added": [None, series_uids],
        },
    )


def classify_study_phases(study):
    """Re-classify the contrast phase of every series of ``study`` not set by a person."""
    all_series = list(study.series.all())
    timings = [
        SeriesTiming(
            SeriesInstanceUID=s.series_instance_uid,
            AcquisitionTime=s.acquisition_time,
            ContrastBolusAgent=s.contrast_bolus_agent,
            ContrastBolusStartTime=s.contrast_bolus_start_time,
            SeriesDescription=s.description,
            SeriesNumber=s.series_number,
        )
        for s in all_series
        if s.modality == "CT"
    ]
    phases = classify_phase(timings) if timings else {}
    for s in all_series:
        phase, reason = phases.get(
            s.series_instance_uid, (Phase.UNKNOWN, f"modality {s.modality} is not CT")
        )
        before = (s.automatic_phase, s.phase, s.phase_reason)
        s.automatic_phase = phase
        if s.phase_source == PhaseSource.AUTOMATIC:
            s.phase, s.phase_reason = phase, reason
        if (s.automatic_phase, s.phase, s.phase_reason) != before:  # most uploads add slices only
            s.save(update_fields=["automatic_phase", "phase", "phase_reason"])
