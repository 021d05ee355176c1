"""De-identification: check that an upload is de-identified, or de-identify it.

Source: DICOM PS3.15 Annex E, Table E.1-1 "Application Level Confidentiality
Profile Attributes", Basic Profile column (actions: X remove, Z empty, D dummy
value, U remap UID; "X/Z" etc. mean the least that keeps the IOD valid).

Options of Annex E that this module applies on top of the Basic Profile, and
records in DeidentificationMethodCodeSequence:

- Retain Longitudinal Temporal Information, Full Dates (113106): dates and
  times (StudyDate, AcquisitionTime, ContrastBolusStartTime...) are kept, because
  the contrast phase is inferred from them.
- Retain Patient Characteristics (113108): PatientAge, PatientSex, PatientSize
  and PatientWeight are kept; age and sex are covariates of the reader study.

Two further retentions, not named by an Annex E option code: PatientID is kept
as the pseudonymous identifier (checked against the pseudonym pattern like
PatientName; replaced by the pseudonym in :func:`deidentify`),
and ContrastBolusAgent (Basic Profile D) is kept because phase classification
needs to know whether a series is enhanced.

Error strings name the attribute keyword (with its sequence path), never its value.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

# Direct identifiers of the Basic Profile (keyword -> Annex E action). These are
# what :func:`check_deidentified` refuses when they hold a value, at any depth.
DIRECT_IDENTIFIERS: dict[str, str] = {
    # the patient
    "PatientName": "Z",
    "PatientBirthDate": "Z",
    "PatientBirthTime": "X",
    "PatientBirthName": "X",
    "PatientMotherBirthName": "X",
    "OtherPatientIDs": "X",
    "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X",
    "PatientAddress": "X",
    "PatientTelephoneNumbers": "X",
    "PatientTelecomInformation": "X",
    "RegionOfResidence": "X",
    "CountryOfResidence": "X",
    "EthnicGroup": "X",
    "Occupation": "X",
    "MilitaryRank": "X",
    "BranchOfService": "X",
    "PatientReligiousPreference": "X",
    "MedicalRecordLocator": "X",
    "PatientInsurancePlanCodeSequence": "X",
    "AdditionalPatientHistory": "X",
    "PatientComments": "X",
    "MedicalAlerts": "X",
    "Allergies": "X",
    "PatientInstitutionResidence": "X",
    "ResponsiblePerson": "X",
    "ResponsibleOrganization": "X",
    "AdmissionID": "X",
    "CurrentPatientLocation": "X",
    "AdmittingDiagnosesDescription": "X",
    # people and places of care
    "ReferringPhysicianName": "Z",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X",
    "ConsultingPhysicianName": "X",
    "PerformingPhysicianName": "X",
    "PerformingPhysicianIdentificationSequence": "X",
    "OperatorsName": "X/Z/D",
    "OperatorIdentificationSequence": "X/D",
    "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X",
    "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X",
    "RequestingPhysician": "X",
    "ScheduledPerformingPhysicianName": "X",
    "ContentCreatorName": "Z",
    "PersonName": "D",
    "PersonAddress": "X",
    "PersonTelephoneNumbers": "X",
    "VerifyingObserverName": "D",
    "AccessionNumber": "Z",
    "InstitutionName": "X/Z/D",
    "InstitutionAddress": "X",
    "InstitutionalDepartmentName": "X",
    "InstitutionCodeSequence": "X/Z/D",
    "StationName": "X/Z/D",
    "DeviceSerialNumber": "X/Z/D",
}

# Further Basic Profile actions that :func:`deidentify` applies but that
# :func:`check_deidentified` does not refuse: free text that may, but usually
# does not, carry identifiers, and containers of original values.
OTHER_BASIC_PROFILE_ACTIONS: dict[str, str] = {
    "IssuerOfPatientID": "X",
    "StudyID": "Z",
    "StudyDescription": "X",
    "SeriesDescription": "X",
    "ProtocolName": "X/D",
    "ImageComments": "X",
    "StudyComments": "X",
    "AcquisitionComments": "X",
    "DerivationDescription": "X",
    "RequestAttributesSequence": "X",
    "RequestedProcedureDescription": "X",
    "RequestedProcedureID": "X",
    "ReasonForStudy": "X",
    "ReasonForTheRequestedProcedure": "X",
    "RequestingService": "X/Z",
    "PerformedProcedureStepDescription": "X",
    "PerformedProcedureStepID": "X",
    "ScheduledProcedureStepDescription": "X",
    "ScheduledProcedureStepID": "X",
    "OriginalAttributesSequence": "X",
    "ModifiedAttributesSequence": "X",
    "DigitalSignaturesSequence": "X",
    "IconImageSequence": "X",
    "PatientState": "X",
    "PregnancyStatus": "X",
    "SmokingStatus": "X",
    "SpecialNeeds": "X",
    "PatientSexNeutered": "X",
}

# Strings that de-identification tools write as dummy values (action D).
PLACEHOLDERS = frozenset(
    {
        "ANONYMOUS",
        "ANONYMIZED",
        "ANONYMISED",
        "ANON",
        "REMOVED",
        "DEIDENTIFIED",
        "DE-IDENTIFIED",
        "REDACTED",
    }
)

# A pseudonym is one token of letters, digits, '-', '_' and '.', with at least
# one digit ("SRM-0001", "ANON123", "case_17"), or one of PLACEHOLDERS. It has no
# '^' (the separator of family^given name components), no space and no '=':
# "Doe^John" and "John Doe" are names, and so is a bare "DOE" (no digit).
DEFAULT_PSEUDONYM_PATTERN = (
    r"(?=[^\d]*\d)[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
    r"|(?i:" + "|".join(re.escape(p) for p in sorted(PLACEHOLDERS)) + r")"
)

# LO, at most 64 characters: the code sequence below names the profile and options in full.
DEIDENTIFICATION_METHOD = "PS3.15 Annex E Basic Profile +113106 +113108; archive.deid"
_METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)

# UIDs that name kinds of things (SOP classes, transfer syntaxes, coding
# schemes), not instances: never remapped.
_CLASS_UID_KEYWORDS = frozenset(
    {
        "SOPClassUID",
        "ReferencedSOPClassUID",
        "MediaStorageSOPClassUID",
        "AffectedSOPClassUID",
        "RequestedSOPClassUID",
        "TransferSyntaxUID",
        "ImplementationClassUID",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "MappingResourceUID",
        "ReferencedTransferSyntaxUIDInFile",
        "ReferencedSOPClassUIDInFile",
        "SOPClassesInStudy",
        "PrivateInformationCreatorUID",
    }
)
_DICOM_ROOT = "1.2.840.10008."


def _pattern(pseudonym_pattern) -> re.Pattern:
    if pseudonym_pattern is None or pseudonym_pattern == "":
        return re.compile(DEFAULT_PSEUDONYM_PATTERN)
    if isinstance(pseudonym_pattern, re.Pattern):
        return pseudonym_pattern
    return re.compile(pseudonym_pattern)


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_as_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1", "replace")
    return str(value)


def _is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, Sequence):
        return len(value) == 0
    return _as_text(value).strip(" ^=\\\x00") == ""


def _is_placeholder(value) -> bool:
    return _as_text(value).strip(" ^\x00").upper() in PLACEHOLDERS


def _safe_text(ds: Dataset, keyword: str) -> str:
    try:
        return _as_text(ds.get(keyword, "")).strip()
    except Exception:
        return ""


def is_pseudonym(value, pseudonym_pattern=None) -> bool:
    """Whether a PatientName or PatientID value is empty or a pseudonym (see :data:`DEFAULT_PSEUDONYM_PATTERN`)."""
    text = _as_text(value).strip().rstrip("^").strip()
    return text == "" or _pattern(pseudonym_pattern).fullmatch(text) is not None


def _walk(ds: Dataset, path: str = "") -> Iterator[tuple[str, str, object]]:
    """(path, keyword, element) for every element, items of sequences included.

    An element whose value cannot be decoded comes as (path, keyword, None).
    """
    for tag in list(ds.keys()):
        keyword = keyword_for_tag(tag) or str(Tag(tag))
        where = f"{path}{keyword}"
        try:
            element = ds[tag]
        except Exception:
            yield where, keyword, None
            continue
        yield where, keyword, element
        if element.VR == "SQ" and element.value is not None:
            for index, item in enumerate(element.value):
                yield from _walk(item, f"{where}[{index}] > ")


# The direct identifiers, and PatientID: kept as the archive's key, but only as a pseudonym.
_CHECKED_TAGS = {
    tag_for_keyword(keyword): keyword for keyword in (*DIRECT_IDENTIFIERS, "PatientID")
}
_MAYBE_SEQUENCE_VRS = frozenset({"SQ", "UN", None})


def _walk_identifiers(ds: Dataset, path: str = "") -> Iterator[tuple[str, str, object]]:
    """What :func:`_walk` yields, but only the direct identifiers (:data:`DIRECT_IDENTIFIERS`) and PatientID.

    Only direct identifiers and elements that are or may be sequences (SQ, UN, or
    no VR yet) are converted from their raw bytes; the others are skipped
    unread, so checking costs little more than looking at the tags.
    """
    elements = ds._dict
    for tag in list(elements):
        keyword = _CHECKED_TAGS.get(tag)
        if keyword is None:
            raw = elements.get(tag)
            if (
                raw is None
                or raw.VR not in _MAYBE_SEQUENCE_VRS
                or dictionary_vr_is_not_sequence(tag)
            ):
                continue
        where = f"{path}{keyword or keyword_for_tag(tag) or str(Tag(tag))}"
        try:
            element = ds[tag]
        except Exception:
            if keyword is not None:
                yield where, keyword, None
            continue
        if keyword is not None:
            yield where, keyword, element
        if element.VR == "SQ" and element.value is not None:
            for index, item in enumerate(element.value):
                yield from _walk_identifiers(item, f"{where}[{index}] > ")


def dictionary_vr_is_not_sequence(tag) -> bool:
    """Whether the data dictionary says ``tag`` is not a sequence (unknown and private tags: it cannot say)."""
    try:
        return "SQ" not in dictionary_VR(tag)
    except KeyError:
        return False


def _count_private(ds: Dataset) -> int:
    """Private elements of ``ds``, items of sequences included; only (possible) sequences are converted."""
    count = 0
    elements = ds._dict
    for tag in list(elements):
        raw = elements.get(tag)
        if raw is None:
            continue
        if tag >> 16 & 1:
            count += 1
        if raw.VR not in _MAYBE_SEQUENCE_VRS or dictionary_vr_is_not_sequence(tag):
            continue
        try:
            element = ds[tag]
        except Exception:
            continue
        if element.VR == "SQ" and element.value is not None:
            count += sum(_count_private(item) for item in element.value)
    return count


def check_deidentified(ds: Dataset, pseudonym_pattern=None) -> list[str]:
    """The reasons ``ds`` is not de-identified; ``[]`` when it is.

    Refused: a direct identifier (:data:`DIRECT_IDENTIFIERS`) with a value, at
    any sequence depth, unless the value is a dummy (:data:`PLACEHOLDERS`);
    PatientName (any depth) that is not empty or a pseudonym (``pseudonym_pattern``,
    a regex matched against the whole name; default
    :data:`DEFAULT_PSEUDONYM_PATTERN`); BurnedInAnnotation YES; PatientIdentityRemoved
    not YES. PatientID is the pseudonymous key of the archive: allowed when it
    is a pseudonym by the same pattern as PatientName.
    Private tags are not refused here (they are stripped on ingest). Each reason
    names the keyword and path, never the value.
    """
    pattern = _pattern(pseudonym_pattern)
    problems: list[str] = []
    for path, keyword, element in _walk_identifiers(ds):
        if element is None:
            problems.append(f"{path} cannot be read (direct identifier)")
            continue
        value = element.value
        if _is_empty(value):
            continue
        if keyword == "PatientName":
            if not is_pseudonym(value, pattern):
                problems.append(
                    f"{path} is not a pseudonym (direct identifier): use an ID such as SRM-0001, "
                    "not a name"
                )
        elif keyword == "PatientID":
            if not is_pseudonym(value, pattern):
                problems.append(
                    f"{path} is not a pseudonym (it does not match the pseudonym pattern, DEID_PSEUDONYM_PATTERN): "
                    "use the study's pseudonymous ID such as SRM-0001, not a hospital record number"
                )
        elif element.VR == "SQ":
            problems.append(f"{path} is not empty (direct identifier)")
        elif not _is_placeholder(value):
            problems.append(f"{path} is not empty (direct identifier)")
    if _safe_text(ds, "BurnedInAnnotation").upper() == "YES":
        problems.append(
            "BurnedInAnnotation is YES: the pixels carry burned-in text that the portal cannot remove"
        )
    if _safe_text(ds, "PatientIdentityRemoved").upper() != "YES":
        state = "missing" if "PatientIdentityRemoved" not in ds else "not YES"
        problems.append(
            f"PatientIdentityRemoved is {state}: set it to YES once the files are de-identified"
        )
    return problems


def strip_private_tags(ds: Dataset) -> int:
    """Remove every private element (sequences included) in place; returns how many were removed."""
    count = _count_private(ds)
    if count:
        ds.remove_private_tags()
    return count


@dataclass
class DeidentificationContext:
    """The pseudonym and UID mapping shared by all files of one upload.

    New UIDs are ``2.25`` UUID-derived UIDs, an HMAC-SHA256 of the old UID keyed by ``secret``, so the
    same old UID always maps to the same new one under the same secret (across
    uploads too: a re-upload is recognised as a duplicate). With ``pseudonym``
    set, every file gets it as PatientName and PatientID; without, each original
    PatientID maps to ``ANON`` + 10 digits derived from the secret.
    """

    secret: str | bytes = field(default_factory=lambda: secrets.token_hex(32))
    pseudonym: str | None = None
    uid_map: dict[str, str] = field(default_factory=dict)
    pseudonym_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.secret, bytes):
            self.secret = self.secret.hex()
        if self.pseudonym is not None and (
            self.pseudonym.strip() == "" or not is_pseudonym(self.pseudonym)
        ):
            raise ValueError(
                "pseudonym must be a pseudonym such as SRM-0001 (see DEFAULT_PSEUDONYM_PATTERN)"
            )

    def new_uid(self, old_uid: str) -> str:
        """The replacement of ``old_uid`` in this context."""
        old_uid = str(old_uid).strip()
        if old_uid not in self.uid_map:
            # pydicom's generate_uid ignores entropy_srcs under the 2.25 root, so the
            # UUID is derived here: HMAC of the old UID, with UUID version bits set.
            digest = hmac.new(
                self.secret.encode(), old_uid.encode("ascii", "replace"), hashlib.sha256
            ).digest()
            self.uid_map[old_uid] = f"2.25.{uuid.UUID(bytes=digest[:16], version=4).int}"
        return self.uid_map[old_uid]

    def pseudonym_for(self, patient_id: str | None) -> str:
        """The pseudonym of the patient with the original ``patient_id``."""
        if self.pseudonym is not None:
            return self.pseudonym
        key = (patient_id or "").strip()
        if key not in self.pseudonym_map:
            digest = hmac.new(
                self.secret.encode(), key.encode("utf-8", "replace"), hashlib.sha256
            ).digest()
            self.pseudonym_map[key] = f"ANON{int.from_bytes(digest[:8], 'big') % 10**10:010d}"
        return self.pseudonym_map[key]


def _remappable(keyword: str, value: str) -> bool:
    return bool(value) and keyword not in _CLASS_UID_KEYWORDS and not value.startswith(_DICOM_ROOT)


def _apply(ds: Dataset, context: DeidentificationContext, pseudonym: str) -> None:
    for element in list(ds):
        keyword = element.keyword
        action = DIRECT_IDENTIFIERS.get(keyword) or OTHER_BASIC_PROFILE_ACTIONS.get(keyword)
        if keyword in ("PatientName", "PatientID"):
            element.value = pseudonym
        elif element.tag.group & 0xFF00 in (0x5000, 0x6000) and element.tag.group % 2 == 0:
            del ds[element.tag]  # curves and overlays may carry burned-in text
        elif action:
            if action.startswith("X"):
                del ds[element.tag]
            elif element.VR == "SQ":
                element.value = Sequence()
            elif action == "D" and element.VR in ("PN", "LO", "SH", "LT", "ST", "UT"):
                element.value = "ANONYMIZED"
            else:
                element.value = None
        elif element.VR == "UI" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            new = [context.new_uid(v) if _remappable(keyword, str(v)) else v for v in values]
            element.value = new if element.VM > 1 else new[0]
        elif element.VR == "SQ" and element.value:
            for item in element.value:
                _apply(item, context, pseudonym)


def deidentify(ds: Dataset, context: DeidentificationContext) -> Dataset:
    """A de-identified copy of ``ds`` (the Basic Profile with the options in the module docstring).

    Removes or empties the Basic Profile attributes, remaps every instance UID
    (study, series, SOP instance, frame of reference, referenced and nested UIDs)
    through ``context``, removes private tags, overlays and curves, sets
    PatientName and PatientID to the pseudonym, PatientIdentityRemoved YES,
    DeidentificationMethod and its code sequence. BurnedInAnnotation is left as
    it is: burned-in pixels cannot be fixed here, and such a file stays refused.
    The result passes :func:`check_deidentified`. Deterministic for one secret.
    """
    out = copy.deepcopy(ds)
    pseudonym = context.pseudonym_for(_as_text(ds.get("PatientID", "")))
    strip_private_tags(out)
    _apply(out, context, pseudonym)
    if "PatientName" not in out:
        out.PatientName = pseudonym
    if "PatientID" not in out:
        out.PatientID = pseudonym
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = DEIDENTIFICATION_METHOD
    codes = Sequence()
    for value, meaning in _METHOD_CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    out.DeidentificationMethodCodeSequence = codes
    out.LongitudinalTemporalInformationModified = "UNMODIFIED"
    meta = getattr(out, "file_meta", None)
    if meta is not None:
        if "SOPInstanceUID" in out:
            meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        for keyword in (
            "SourceApplicationEntityTitle",
            "SendingApplicationEntityTitle",
            "ReceivingApplicationEntityTitle",
            "PrivateInformationCreatorUID",
            "PrivateInformation",
        ):
            if keyword in meta:
                delattr(meta, keyword)
    return out
