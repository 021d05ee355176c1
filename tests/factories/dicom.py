"""Small valid CT datasets built in memory, for tests.

``make_ct_dataset(**overrides)`` gives one de-identified CT Image Storage
instance (16 x 16 pixels of HU noise); any DICOM keyword can be overridden, and
``None`` removes the attribute. ``make_ct_series`` and ``make_ct_study`` give
series and multiphase studies with realistic positions and phase timing
(see shared/data/renal_ct_physiology.md). ``dataset_bytes`` writes Part 10 bytes, and
``as_upload`` wraps bytes as the file a browser or API client uploads.
"""

from __future__ import annotations

import datetime
import io
import itertools

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

# Delay after injection start (s) and series number per phase.
PHASE_DELAY_S = {"NC": -120, "CM": 35, "NG": 95, "EX": 300}
PHASE_SERIES_NUMBER = {"NC": 2, "CM": 3, "NG": 4, "EX": 5}
PHASE_DESCRIPTION = {
    "NC": "Abdomen unenhanced 2.5mm",
    "CM": "Abdomen corticomedullary 2.5mm",
    "NG": "Abdomen nephrographic 2.5mm",
    "EX": "Abdomen excretory 2.5mm",
}
PHASE_MEAN_HU = {"NC": 35, "CM": 170, "NG": 150, "EX": 100}

_seed = itertools.count(1)


def _pixels(rows: int, columns: int, mean_hu: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    hu = rng.normal(mean_hu, 12.0, size=(rows, columns))
    stored = np.clip(np.round(hu + 1024), 0, 4095).astype("<u2")  # RescaleIntercept -1024
    return stored.tobytes()


def make_ct_dataset(**overrides) -> Dataset:
    """One valid, de-identified CT Image Storage dataset; keywords in ``overrides`` replace (None deletes)."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientName = "SRM-0001"
    ds.PatientID = "SRM-0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    ds.PatientAge = "061Y"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "test factory: synthetic data"
    ds.BurnedInAnnotation = "NO"
    ds.StudyDate = "20240115"
    ds.StudyTime = "101000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT abdomen renal mass protocol"
    ds.SeriesNumber = 2
    ds.SeriesDescription = "Abdomen unenhanced 2.5mm"
    ds.AcquisitionTime = "101300"
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [-160.0, -160.0, 0.0]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = 2.5
    ds.KVP = 120
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 16
    ds.Columns = 16
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    mean_hu = overrides.pop("_mean_hu", PHASE_MEAN_HU["NC"])
    for keyword, value in overrides.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    if "PixelData" not in overrides and "Rows" in ds and "Columns" in ds:
        ds.PixelData = _pixels(int(ds.Rows), int(ds.Columns), mean_hu, next(_seed))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", CT_IMAGE_STORAGE)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", generate_uid())
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.preamble = b"\x00" * 128
    return ds


def _add_seconds(tm: str, seconds: float) -> str:
    base = datetime.datetime.strptime(tm[:6], "%H%M%S")
    moment = base + datetime.timedelta(seconds=seconds)
    return moment.strftime("%H%M%S")


def make_ct_series(
    n: int,
    phase: str = "NC",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    injection_time: str = "101500",
    slice_spacing: float = 2.5,
    with_bolus_start_time: bool = True,
    **overrides,
) -> list[Dataset]:
    """``n`` slices of one series in phase "NC", "CM", "NG" or "EX".

    Enhanced phases carry ContrastBolusAgent and (unless ``with_bolus_start_time``
    is false) ContrastBolusStartTime = ``injection_time``; AcquisitionTime is the
    injection time plus the phase's typical delay (:data:`PHASE_DELAY_S`).
    ImagePositionPatient z steps by ``slice_spacing``. ``overrides`` go to every slice.
    """
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_of_reference_uid = frame_of_reference_uid or generate_uid()
    timing = {
        "AcquisitionTime": _add_seconds(injection_time, PHASE_DELAY_S[phase]),
        "SeriesNumber": PHASE_SERIES_NUMBER[phase],
        "SeriesDescription": PHASE_DESCRIPTION[phase],
    }
    if phase != "NC":
        timing["ContrastBolusAgent"] = "Iohexol 350"
        timing["ContrastBolusRoute"] = "IV"
        if with_bolus_start_time:
            timing["ContrastBolusStartTime"] = injection_time
    slices = []
    for index in range(n):
        values = {
            "StudyInstanceUID": study_uid,
            "SeriesInstanceUID": series_uid,
            "FrameOfReferenceUID": frame_of_reference_uid,
            "InstanceNumber": index + 1,
            "ImagePositionPatient": [-160.0, -160.0, -index * slice_spacing],
            "SliceThickness": slice_spacing,
            "_mean_hu": PHASE_MEAN_HU[phase],
            **timing,
            **overrides,
        }
        slices.append(make_ct_dataset(**values))
    return slices


def make_ct_study(
    n: int = 3, phases: tuple[str, ...] = ("NC", "CM", "NG", "EX"), **overrides
) -> dict[str, list[Dataset]]:
    """A multiphase study: phase -> its slices; one StudyInstanceUID and FrameOfReferenceUID."""
    study_uid, frame_of_reference_uid = generate_uid(), generate_uid()
    return {
        phase: make_ct_series(
            n,
            phase=phase,
            study_uid=study_uid,
            frame_of_reference_uid=frame_of_reference_uid,
            **overrides,
        )
        for phase in phases
    }


def dataset_bytes(ds: Dataset) -> bytes:
    """``ds`` as DICOM Part 10 bytes."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def as_upload(name, data, content_type="application/dicom"):
    return SimpleUploadedFile(name, data, content_type=content_type)
