"""DICOM of a synthetic study: CT Image Storage instances, de-identified by construction.

One series per phase, one instance per slice, with deterministic UIDs (the same spec gives
the same UIDs and bytes; another geometry or mix gives others, so two cohorts never clash
in the archive). Attributes are those of DICOM PS3.3 C.8.2 (CT Image) and PS3.15 Annex E
(Basic Application Confidentiality Profile).
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

import numpy as np
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, CTImageStorage

from archive.vocabulary import PHASES
from cohort.anatomy import RenderedStudy, render_volumes
from cohort.figures import figure
from cohort.latents import PatientCase
from cohort.spec import TRANSFER_SYNTAXES, CohortSpec


def _uid(spec: CohortSpec, *parts) -> str:
    # Deterministic for the spec: same seed and geometry give the same UIDs (and bytes);
    # another geometry or mix gives other UIDs, so two cohorts never clash in the archive.
    key = (
        spec.seed,
        spec.size,
        spec.slices,
        spec.slice_mm,
        spec.fov_mm,
        spec.transfer_syntax,
        tuple(sorted(spec.subtype_mix.items())),
        spec.lesions_per_patient,
    )
    # "cohort.generator" names the UID namespace (the first module's name), not a module.
    name = "|".join(["cohort.generator", repr(key)] + [str(p) for p in parts])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"  # UUID-derived UID (PS3.5 B.2)


def sop_instance_uid(case: PatientCase, spec: CohortSpec, phase: str, index: int) -> str:
    """The SOPInstanceUID of slice ``index`` (0 = most superior) of ``phase`` (deterministic)."""
    return _uid(spec, case.index, "sop", phase, index)


def _hhmmss(seconds: float) -> str:
    seconds = int(round(seconds)) % 86400
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def series_description(phase: str, delay_s: float) -> str:
    """``NC``, ``CM 35s``, ``NG 95s``, ``EX 5min``: the phase and its delay after injection."""
    if phase == "NC":
        return "NC"
    if phase == "EX":
        return f"EX {round(delay_s / 60)}min"
    return f"{phase} {round(delay_s)}s"


class StudyUIDs(NamedTuple):
    StudyInstanceUID: str
    FrameOfReferenceUID: str
    SeriesInstanceUID: dict[str, str]


def study_uids(case: PatientCase, spec: CohortSpec) -> StudyUIDs:
    """The study, frame of reference and per-phase series UIDs of a case (deterministic)."""
    return StudyUIDs(
        _uid(spec, case.index, "study"),
        _uid(spec, case.index, "frame"),
        {phase: _uid(spec, case.index, "series", phase) for phase in PHASES},
    )


_DEID_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def series_template(
    case: PatientCase, spec: CohortSpec, phase: str, uids: StudyUIDs | None = None
) -> Dataset:
    """The attributes shared by every slice of one series (see :func:`slice_dataset`)."""
    uids = uids or study_uids(case, spec)
    acquisition = case.injection_time_s + case.delay_s[phase]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = case.study_date
    ds.StudyTime = _hhmmss(case.injection_time_s + case.delay_s["NC"] - 60)
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = _hhmmss(acquisition)
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "cohort.generator (synthetic)"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT abdomen renal mass protocol (synthetic)"
    ds.SeriesDescription = series_description(phase, case.delay_s[phase])
    ds.PatientName = case.patient_id
    ds.PatientID = case.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = case.sex
    ds.PatientAge = f"{case.age:03d}Y"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "cohort.generator synthetic data; PS3.15 Basic Profile"
    ds.DeidentificationMethodCodeSequence = DicomSequence([_code(v, m) for v, m in _DEID_CODES])
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.BurnedInAnnotation = "NO"
    ds.BodyPartExamined = "ABDOMEN"
    ds.SliceThickness = spec.slice_mm
    ds.KVP = 120
    ds.DataCollectionDiameter = 500
    ds.ReconstructionDiameter = spec.fov_mm
    ds.GantryDetectorTilt = 0
    ds.XRayTubeCurrent = 250
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "FFS"
    ds.StudyInstanceUID = uids.StudyInstanceUID
    ds.SeriesInstanceUID = uids.SeriesInstanceUID[phase]
    ds.StudyID = "1"
    ds.SeriesNumber = PHASES.index(phase) + 1
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = uids.FrameOfReferenceUID
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = spec.size
    ds.PixelSpacing = [spec.pixel_mm, spec.pixel_mm]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    center, width = figure("window")
    ds.WindowCenter = center
    ds.WindowWidth = width
    ds.WindowCenterWidthExplanation = "ABDOMEN"
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    if phase != "NC":
        ds.ContrastBolusAgent = "Iohexol 350 mg I/ml"
        ds.ContrastBolusRoute = "IV"
        ds.ContrastBolusVolume = 100
        ds.ContrastBolusStartTime = _hhmmss(case.injection_time_s)
        ds.ContrastBolusIngredient = "IODINE"
        ds.ContrastBolusIngredientConcentration = 350
    return ds


def slice_dataset(
    case: PatientCase,
    spec: CohortSpec,
    phase: str,
    index: int,
    hu_slice: np.ndarray,
    template: Dataset | None = None,
) -> Dataset:
    """One CT Image Storage instance: slice ``index`` (0 = most superior) of ``phase``, pixels from HU.

    De-identified by construction: PatientName and PatientID are the pseudonym;
    the Type 2 direct identifiers (PatientBirthDate, ReferringPhysicianName,
    AccessionNumber) are present and empty (PS3.15 action Z); no institution,
    physician or operator names. The Contrast/Bolus module is present only on
    enhanced phases. ``template`` (from :func:`series_template`) saves rebuilding
    the shared attributes for every slice; it is not modified.
    """
    template = template if template is not None else series_template(case, spec, phase)
    ds = Dataset(dict(template.items()))  # shares the template's elements; the ones below are new
    sop_uid = sop_instance_uid(case, spec, phase, index)
    z = float(spec.slice_z(index))
    for keyword, value in (
        ("SOPInstanceUID", sop_uid),
        ("InstanceNumber", index + 1),
        ("ImagePositionPatient", [spec.first_pixel_mm, spec.first_pixel_mm, z]),
        ("SliceLocation", z),
    ):
        tag = Tag(keyword)
        ds[tag] = DataElement(tag, dictionary_VR(tag), value)
    stored = (hu_slice.astype(np.int32) + 1024).clip(0, 4095).astype(np.uint16)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.preamble = b"\x00" * 128
    syntax = TRANSFER_SYNTAXES[spec.transfer_syntax]
    if syntax.is_compressed:
        ds.compress(syntax, stored, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = stored.tobytes()
    return ds


def render_study(
    case: PatientCase, spec: CohortSpec, rendered: RenderedStudy | None = None
) -> dict[str, list[Dataset]]:
    """The four series of ``case`` as CT Image Storage datasets, keyed by phase, slices top to bottom."""
    rendered = rendered or render_volumes(case, spec)
    uids = study_uids(case, spec)
    study = {}
    for phase in PHASES:
        template = series_template(case, spec, phase, uids)
        study[phase] = [
            slice_dataset(case, spec, phase, k, rendered.hu[phase][k], template)
            for k in range(spec.slices)
        ]
    return study
