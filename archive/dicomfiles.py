"""Reading, checking and indexing uploaded CT instances (the contrast phase: :mod:`archive.phase`).

Framework-free: plain values in, plain values out. Every refusal is a
:class:`DicomRejected` whose ``reason`` names the file's problem by attribute
keyword and never quotes the value of an identifier, so it can be shown to the
uploader as ``{"file": ..., "status": "rejected", "reason": ...}``.
"""

from __future__ import annotations

import datetime
import io
import math
import re
import zlib
from dataclasses import dataclass

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder, iter_pixels
from pydicom.pixels.decoders.base import DecodeRunner
from pydicom.pixels.utils import as_pixel_options
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
ACCEPTED_SOP_CLASSES = {
    CT_IMAGE_STORAGE: "CT Image Storage",
    ENHANCED_CT_IMAGE_STORAGE: "Enhanced CT Image Storage",
}

_REQUIRED_UIDS = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
_MAX_DECODER_MESSAGE = 300
_INFLATE_CHUNK = 1 << 16


@dataclass(frozen=True)
class DecodeLimits:
    """How much memory checking one file may take, decided before anything large is allocated.

    ``max_pixel_bytes`` bounds the decoded pixel data, Rows x Columns x NumberOfFrames
    x SamplesPerPixel x bytes per sample, computed from the header before any frame
    is decoded (a compressed frame may claim any size). ``max_inflated_bytes`` and
    ``max_inflate_ratio`` (once ``ratio_grace_bytes`` are out) bound a Deflated
    Explicit VR Little Endian data set: pydicom inflates it whole in memory
    (``zlib.decompress`` in ``pydicom.filereader.read_partial``), so it is first
    inflated here in chunks, counted and thrown away.
    """

    max_pixel_bytes: int = 1024 * 1024 * 1024
    max_inflated_bytes: int = 512 * 1024 * 1024
    max_inflate_ratio: float = 200.0
    ratio_grace_bytes: int = 1024 * 1024


class DicomRejected(Exception):
    """An uploaded file that cannot enter the archive.

    ``reason`` is a sentence for the uploader; it names the attribute keyword
    at fault and never contains the value of an identifier.
    """

    def __init__(self, filename: str, reason: str):
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason

    def as_dict(self) -> dict:
        """The per-file entry of an upload report."""
        return {"file": self.filename, "status": "rejected", "reason": self.reason}


def _uid_name(uid: str) -> str:
    name = UID(uid).name
    return f"{name} ({uid})" if name != uid else uid


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if len(text) > _MAX_DECODER_MESSAGE:
        text = text[: _MAX_DECODER_MESSAGE - 3] + "..."
    return text


def _parse(data: bytes, filename: str) -> Dataset:
    """Part 10 first; a file without the 128-byte preamble and 'DICM' is parsed leniently."""
    try:
        return pydicom.dcmread(io.BytesIO(data), force=False)
    except InvalidDicomError:
        pass
    except Exception as exc:  # a Part 10 file that is damaged further in
        raise DicomRejected(
            filename, f"not a readable DICOM file: the data set is damaged ({type(exc).__name__})"
        ) from None
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if "SOPClassUID" not in ds:
            raise ValueError("no SOPClassUID")
        str(ds.SOPClassUID)
    except Exception:
        raise DicomRejected(
            filename, "not a DICOM file (no DICOM Part 10 header and no readable SOPClassUID)"
        ) from None
    return ds


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """A file without meta information gets the transfer syntax it was parsed with."""
    meta = ds.file_meta if hasattr(ds, "file_meta") and ds.file_meta is not None else None
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    if implicit is None:
        return
    if implicit:
        syntax = ImplicitVRLittleEndian
    else:
        syntax = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    if meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax


def _check_pixel_data(ds: Dataset, filename: str, limits: DecodeLimits) -> None:
    if not any(tag in ds for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009)):
        raise DicomRejected(filename, "PixelData is missing: an image is required")
    syntax = _transfer_syntax(ds)
    syntax_text = _uid_name(syntax) if syntax else "unknown transfer syntax"
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except Exception:
        raise DicomRejected(filename, "Rows or Columns is missing or not a number") from None
    _check_pixel_size(ds, filename, rows, columns, limits.max_pixel_bytes)
    try:
        if _native_pixel_data_is_valid(ds, syntax):
            return
        frames = 0
        for frame in iter_pixels(ds, raw=True):
            if tuple(frame.shape[:2]) != (rows, columns):
                raise ValueError(f"a decoded frame has shape {frame.shape}, not Rows x Columns")
            frames += 1
        if frames == 0:
            raise ValueError("no frame was decoded")
    except DicomRejected:
        raise
    except Exception as exc:
        raise DicomRejected(
            filename, f"PixelData could not be decoded ({syntax_text}): {_first_line(exc)}"
        ) from None


def _check_pixel_size(ds: Dataset, filename: str, rows: int, columns: int, limit: int) -> None:
    """Refuses a header whose decoded pixel data would be larger than ``limit`` bytes, before any decoding."""
    try:
        frames = max(int(ds.get("NumberOfFrames", 1) or 1), 1)
        samples = max(int(ds.get("SamplesPerPixel", 1) or 1), 1)
        sample_bytes = (max(int(ds.get("BitsAllocated", 8) or 8), 1) + 7) // 8
    except (TypeError, ValueError, OverflowError):
        raise DicomRejected(
            filename, "NumberOfFrames, SamplesPerPixel or BitsAllocated is not a number"
        ) from None
    size = rows * columns * frames * samples * sample_bytes
    if size > limit:
        raise DicomRejected(
            filename,
            f"PixelData would decode to {size} bytes (Rows {rows} x Columns {columns} x NumberOfFrames "
            f"{frames} x SamplesPerPixel {samples} x {sample_bytes} byte(s)), more than the archive's "
            f"limit of {limit} bytes per instance",
        )


def _check_inflation(data: bytes, filename: str, limits: DecodeLimits) -> None:
    """Refuses a deflated data set that inflates beyond ``limits``; it is inflated in chunks, never kept."""
    offset, syntax = _file_meta(data)
    if syntax != DeflatedExplicitVRLittleEndian:
        return
    deflated = len(data) - offset
    cap = min(
        limits.max_inflated_bytes,
        max(limits.ratio_grace_bytes, int(limits.max_inflate_ratio * max(deflated, 1))),
    )
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as PS3.5 A.5 and pydicom read it
    view = memoryview(data)[offset:]
    inflated = 0
    try:
        for start in range(0, len(view), _INFLATE_CHUNK):
            pending: bytes | memoryview = view[start : start + _INFLATE_CHUNK]
            while pending and not inflater.eof and inflated <= cap:
                inflated += len(inflater.decompress(pending, _INFLATE_CHUNK))
                # bytes after the end of the stream stay here: ignored
                pending = inflater.unconsumed_tail
            if inflated > cap or inflater.eof:
                break
    except zlib.error:
        return  # damaged: pydicom's own reading refuses it
    if inflated > limits.max_inflated_bytes:
        raise DicomRejected(
            filename,
            f"TransferSyntaxUID is {_uid_name(syntax)} and the data set inflates to more than "
            f"{limits.max_inflated_bytes} bytes",
        )
    if inflated > cap:
        raise DicomRejected(
            filename,
            f"TransferSyntaxUID is {_uid_name(syntax)} and the data set inflates at a ratio above "
            f"{limits.max_inflate_ratio:g} (decompression bomb)",
        )


def _native_pixel_data_is_valid(ds: Dataset, syntax: str | None) -> bool:
    """True when native (uncompressed) pixel data passes pydicom's checks without decoding.

    For the common native layouts (PixelData of 8, 16 or 32 bits allocated, one
    sample per pixel, not YBR_FULL_422) decoding adds nothing to pydicom's own
    validation of the Image Pixel module and of the data length (Rows x Columns x
    SamplesPerPixel x BitsAllocated / 8 x NumberOfFrames, odd lengths padded to
    even), which raises ``ValueError`` with its reason exactly as decoding would.
    Any other layout, and every compressed syntax, returns False: the caller decodes.
    """
    if syntax is None or 0x7FE00010 not in ds:
        return False
    try:
        decoder = get_decoder(UID(syntax))
    except NotImplementedError:
        return False
    if not decoder.is_native:
        return False
    runner = DecodeRunner(decoder.UID)
    runner.set_source(ds)
    runner.set_options(**as_pixel_options(ds))
    if (
        runner.pixel_keyword != "PixelData"
        or runner.bits_allocated not in (8, 16, 32)
        or runner.samples_per_pixel != 1
        or runner.photometric_interpretation == "YBR_FULL_422"
    ):
        return False
    runner.validate()  # raises ValueError for bad module values or too little pixel data
    return True


def _transfer_syntax(ds: Dataset) -> str | None:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return str(meta.TransferSyntaxUID)
    return None


def read_instance(data: bytes, filename: str, limits: DecodeLimits | None = None) -> Dataset:
    """Parse one uploaded file and check that it is an acceptable CT instance.

    Accepts CT Image Storage and Enhanced CT Image Storage with valid
    SOPInstanceUID, SeriesInstanceUID and StudyInstanceUID, a Modality, and pixel
    data that decodes in every frame (native, deflated, RLE, JPEG, JPEG-LS and
    JPEG 2000 transfer syntaxes through the pydicom pixel plugins), within
    ``limits`` (:class:`DecodeLimits`; its defaults when None). Returns the
    parsed dataset. Raises :class:`DicomRejected`, and nothing else, for any input.
    """
    try:
        return _read_instance(data, filename, limits or DecodeLimits())
    except DicomRejected:
        raise
    except (MemoryError, RecursionError) as exc:
        raise DicomRejected(filename, f"not a readable DICOM file ({type(exc).__name__})") from None
    except Exception as exc:
        raise DicomRejected(
            filename,
            f"not a readable DICOM file: unexpected {type(exc).__name__} while checking it",
        ) from None


def _read_instance(data: bytes, filename: str, limits: DecodeLimits) -> Dataset:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DicomRejected(filename, "not a DICOM file (no bytes)")
    if len(data) == 0:
        raise DicomRejected(filename, "not a DICOM file (the file is empty)")
    data = bytes(data)
    _check_inflation(data, filename, limits)
    ds = _parse(data, filename)
    try:
        sop_class = str(ds.get("SOPClassUID", "") or "").strip()
    except Exception:
        raise DicomRejected(filename, "SOPClassUID cannot be read") from None
    if not sop_class:
        raise DicomRejected(filename, "SOPClassUID is missing")
    if sop_class not in ACCEPTED_SOP_CLASSES:
        described = (
            _uid_name(sop_class) if UID(sop_class).is_valid else "with an invalid SOPClassUID"
        )
        raise DicomRejected(
            filename,
            f"SOP class {described} is not accepted: only CT Image Storage and Enhanced CT Image Storage",
        )
    for keyword in _REQUIRED_UIDS:
        try:
            value = str(ds.get(keyword, "") or "").strip()
        except Exception:
            raise DicomRejected(filename, f"{keyword} cannot be read") from None
        if not value:
            raise DicomRejected(filename, f"{keyword} is missing")
        if not UID(value).is_valid:
            raise DicomRejected(
                filename, f"{keyword} is not a valid UID (digits and dots, at most 64 characters)"
            )
    if not str(ds.get("Modality", "") or "").strip():
        raise DicomRejected(filename, "Modality is missing")
    _ensure_transfer_syntax(ds)
    _check_pixel_data(ds, filename, limits)
    return ds


# ---------------------------------------------------------------- Part 10 files

_PREAMBLE = 128
_PREFIX = b"DICM"
# Explicit VR elements whose length field is 4 bytes after 2 reserved bytes (PS3.5 7.1.2).
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}


def is_part10(data: bytes) -> bool:
    """True when ``data`` starts like a PS3.10 file: a 128-byte preamble and ``DICM``."""
    return data[_PREAMBLE : _PREAMBLE + 4] == _PREFIX


def dataset_offset(data: bytes) -> int:
    """Where the data set proper starts: after the preamble, prefix and File Meta group (0002).

    The File Meta Information is Explicit VR Little Endian (PS3.10 7.1); a sender that
    left out the preamble may still have sent the group, and it is skipped the same way.
    """
    return _file_meta(data)[0]


def _file_meta(data: bytes) -> tuple[int, str | None]:
    """:func:`dataset_offset`, and the TransferSyntaxUID (0002,0010) of the File Meta Information if any."""
    position = _PREAMBLE + 4 if is_part10(data) else 0
    syntax = None
    while position + 8 <= len(data) and data[position : position + 2] == b"\x02\x00":
        element = int.from_bytes(data[position + 2 : position + 4], "little")
        vr = data[position + 4 : position + 6]
        if vr in _LONG_VRS:
            header, length = 12, int.from_bytes(data[position + 8 : position + 12], "little")
        elif vr.isalpha() and vr.isupper():
            header, length = 8, int.from_bytes(data[position + 6 : position + 8], "little")
        else:  # implicit VR: a 4-byte length follows the tag
            header, length = 8, int.from_bytes(data[position + 4 : position + 8], "little")
        if element == 0x0010:
            value = data[position + header : position + header + min(length, 64)]
            syntax = value.rstrip(b"\x00 ").decode("ascii", "replace")
        position += header + length
    return min(position, len(data)), syntax


def as_part10(data: bytes, ds: Dataset) -> bytes:
    """``data`` as a conformant PS3.10 file, the data set's bytes kept exactly as sent.

    A file that already has its preamble and ``DICM`` is returned unchanged. Otherwise
    (what STOW-RS clients send for a data set built in memory) the preamble and the File
    Meta Information (SOP class and instance from the data set, the transfer syntax it
    was parsed with, pydicom's implementation UID) are put in front of the data set's
    own bytes, so the same data set sent with or without a preamble has the same
    :func:`dataset_offset` tail.
    """
    if is_part10(data):
        return data
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    syntax = _transfer_syntax(ds)
    if syntax is None:
        _ensure_transfer_syntax(ds)
        syntax = _transfer_syntax(ds)
    meta.TransferSyntaxUID = UID(syntax) if syntax else ImplicitVRLittleEndian
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.write(b"\x00" * _PREAMBLE + _PREFIX)
    pydicom.filewriter.write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue() + data[dataset_offset(data) :]


def same_data_set(a: bytes, b: bytes) -> bool:
    """True when two files hold the same data set, byte for byte.

    Their preambles and File Meta Information may differ (another sender, or one
    sent without them): the data set is what is archived. Equal bytes also mean the
    same transfer syntax (implicit/explicit VR, byte order and compression all show
    in the encoded data set).
    """
    return a == b or a[dataset_offset(a) :] == b[dataset_offset(b) :]


# ---------------------------------------------------------------- indexing


@dataclass(frozen=True)
class InstanceAttributes:
    """The attributes of one instance that the archive indexes, as plain values.

    Field names are the DICOM keywords. Times (TM) are DICOM strings
    ("HHMMSS.FFFFFF"), StudyDate a :class:`datetime.date`, PatientAge whole
    years; multi-valued window settings keep their first value. ``slice_position``
    is ImagePositionPatient projected on the slice normal (mm), for sorting.
    """

    SOPClassUID: str
    SOPInstanceUID: str
    SeriesInstanceUID: str
    StudyInstanceUID: str
    FrameOfReferenceUID: str | None = None
    Modality: str | None = None
    InstanceNumber: int | None = None
    ImagePositionPatient: tuple[float, ...] | None = None  # 3 values
    ImageOrientationPatient: tuple[float, ...] | None = None
    PixelSpacing: tuple[float, ...] | None = None  # 2 values: rows, columns
    SliceThickness: float | None = None
    Rows: int | None = None
    Columns: int | None = None
    NumberOfFrames: int = 1
    RescaleIntercept: float | None = None
    RescaleSlope: float | None = None
    WindowCenter: float | None = None
    WindowWidth: float | None = None
    TransferSyntaxUID: str | None = None
    AcquisitionTime: str | None = None
    ContrastBolusAgent: str | None = None
    ContrastBolusStartTime: str | None = None
    SeriesDescription: str | None = None
    SeriesNumber: int | None = None
    StudyDate: datetime.date | None = None
    StudyTime: str | None = None
    StudyID: str | None = None
    StudyDescription: str | None = None
    PatientID: str | None = None
    PatientSex: str | None = None
    PatientAge: int | None = None
    slice_position: float | None = None


def text_value(value) -> str | None:
    """A DICOM value as stripped text (the first of several values), None when empty or absent."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
        if value is None:
            return None
    text = str(value).strip().strip("\x00").strip()
    return text or None


def _number(value, kind=float):
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        if not len(value):
            return None
        value = value[0]
    try:
        number = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


def _floats(value, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers


def _element(ds: Dataset, keyword: str):
    try:
        return ds.get(keyword)
    except Exception:
        return None


def _functional_group_value(ds: Dataset, sequence: str, keyword: str):
    """A value from the first frame's per-frame group, else from the shared group."""
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        try:
            items = ds.get(groups)
            if not items:
                continue
            inner = items[0].get(sequence)
            if inner and keyword in inner[0]:
                return inner[0].get(keyword)
        except Exception:
            continue
    return None


def _value(ds: Dataset, keyword: str, sequence: str | None = None):
    value = _element(ds, keyword)
    if (value is None or value == "") and sequence is not None:
        value = _functional_group_value(ds, sequence, keyword)
    return value


def parse_age_years(value) -> int | None:
    """PatientAge (AS, e.g. "045Y", "006M") in whole years; None when unreadable."""
    text = text_value(value)
    if not text:
        return None
    match = re.fullmatch(r"(\d{1,3})\s*([DWMY]?)", text.upper())
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2) or "Y"
    days_per_unit = {"D": 1, "W": 7, "M": 365.25 / 12, "Y": 365.25}[unit]
    return int(number * days_per_unit // 365.25) if unit != "Y" else number


def _date(value) -> datetime.date | None:
    text = text_value(value)
    if not text:
        return None
    text = text.replace(".", "")  # ACR-NEMA "YYYY.MM.DD"
    try:
        return datetime.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return None


def parse_time_seconds(value) -> float | None:
    """Seconds after midnight of a DICOM TM ("HHMMSS.FFFFFF", "HHMM", "HH:MM:SS") or time."""
    if value is None:
        return None
    if isinstance(value, datetime.time):
        return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    text = str(value).strip().replace(":", "")
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", text)
    if not match:
        return None
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups()[:3])
    if hours > 23 or minutes > 59 or seconds > 60:
        return None
    fraction = float("0." + match.group(4)) if match.group(4) else 0.0
    return hours * 3600 + minutes * 60 + seconds + fraction


def _time_text(value) -> str | None:
    text = text_value(value)
    if not text:
        return None
    return text if parse_time_seconds(text) is not None else None


def _slice_position(ipp, iop) -> float | None:
    if ipp is None or iop is None:
        return None
    row, column = iop[:3], iop[3:]
    normal = (
        row[1] * column[2] - row[2] * column[1],
        row[2] * column[0] - row[0] * column[2],
        row[0] * column[1] - row[1] * column[0],
    )
    return float(sum(p * n for p, n in zip(ipp, normal)))


def _enhanced_contrast(ds: Dataset) -> tuple[str | None, str | None]:
    """Agent and start time from the Enhanced Contrast/Bolus module."""
    try:
        agents = ds.get("ContrastBolusAgentSequence")
        if not agents:
            return None, None
        item = agents[0]
        agent = (
            text_value(item.get("CodeMeaning"))
            or text_value(item.get("CodeValue"))
            or "contrast agent"
        )
        start = None
        profiles = item.get("ContrastAdministrationProfileSequence")
        if profiles:
            start = _time_text(profiles[0].get("ContrastBolusStartTime"))
        return agent, start
    except Exception:
        return None, None


def indexed_attributes(ds: Dataset) -> InstanceAttributes:
    """The index entry of an accepted instance (see :class:`InstanceAttributes`).

    For Enhanced CT, position, orientation, spacing, rescale and window come from
    the first frame's functional groups (per-frame, else shared) when they are
    not at the top level; AcquisitionTime from AcquisitionDateTime.
    """
    ipp = _floats(_value(ds, "ImagePositionPatient", "PlanePositionSequence"), 3)
    iop = _floats(_value(ds, "ImageOrientationPatient", "PlaneOrientationSequence"), 6)
    acquisition_time = _time_text(_element(ds, "AcquisitionTime"))
    if acquisition_time is None:
        moment = text_value(_element(ds, "AcquisitionDateTime")) or text_value(
            _functional_group_value(ds, "FrameContentSequence", "FrameAcquisitionDateTime")
        )
        if moment and len(moment) > 8:
            acquisition_time = _time_text(re.split(r"[+-]", moment[8:])[0])
    agent = text_value(_element(ds, "ContrastBolusAgent"))
    start = _time_text(_element(ds, "ContrastBolusStartTime"))
    if agent is None and start is None:
        agent, start = _enhanced_contrast(ds)
    meta = getattr(ds, "file_meta", None)
    return InstanceAttributes(
        SOPClassUID=str(ds.SOPClassUID),
        SOPInstanceUID=str(ds.SOPInstanceUID),
        SeriesInstanceUID=str(ds.SeriesInstanceUID),
        StudyInstanceUID=str(ds.StudyInstanceUID),
        FrameOfReferenceUID=text_value(_element(ds, "FrameOfReferenceUID")),
        Modality=text_value(_element(ds, "Modality")),
        InstanceNumber=_number(_element(ds, "InstanceNumber"), int),
        ImagePositionPatient=ipp,
        ImageOrientationPatient=iop,
        PixelSpacing=_floats(_value(ds, "PixelSpacing", "PixelMeasuresSequence"), 2),
        SliceThickness=_number(_value(ds, "SliceThickness", "PixelMeasuresSequence")),
        Rows=_number(_element(ds, "Rows"), int),
        Columns=_number(_element(ds, "Columns"), int),
        NumberOfFrames=_number(_element(ds, "NumberOfFrames"), int) or 1,
        RescaleIntercept=_number(
            _value(ds, "RescaleIntercept", "PixelValueTransformationSequence")
        ),
        RescaleSlope=_number(_value(ds, "RescaleSlope", "PixelValueTransformationSequence")),
        WindowCenter=_number(_value(ds, "WindowCenter", "FrameVOILUTSequence")),
        WindowWidth=_number(_value(ds, "WindowWidth", "FrameVOILUTSequence")),
        TransferSyntaxUID=str(meta.TransferSyntaxUID)
        if meta is not None and "TransferSyntaxUID" in meta
        else None,
        AcquisitionTime=acquisition_time,
        ContrastBolusAgent=agent,
        ContrastBolusStartTime=start,
        SeriesDescription=text_value(_element(ds, "SeriesDescription")),
        SeriesNumber=_number(_element(ds, "SeriesNumber"), int),
        StudyDate=_date(_element(ds, "StudyDate")),
        StudyTime=_time_text(_element(ds, "StudyTime")),
        StudyID=text_value(_element(ds, "StudyID")),
        StudyDescription=text_value(_element(ds, "StudyDescription")),
        PatientID=text_value(_element(ds, "PatientID")),
        PatientSex=text_value(_element(ds, "PatientSex")),
        PatientAge=parse_age_years(_element(ds, "PatientAge")),
        slice_position=_slice_position(ipp, iop),
    )
