import collections
import datetime
import io
import os
import re
import time

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

from archive import deid
from archive.dicomfiles import (
    DicomRejected,
    indexed_attributes,
    parse_age_years,
    parse_time_seconds,
    read_instance,
)
from archive.phase import CM, EX, NC, NG, UNKNOWN, SeriesTiming, classify_phase, series_timings
from tests.factories.dicom import (
    dataset_bytes,
    make_ct_dataset,
    make_ct_series,
    make_ct_study,
)


def rejection(data, filename="IM0003.dcm"):
    with pytest.raises(DicomRejected) as caught:
        read_instance(data, filename)
    return caught.value


# ---------------------------------------------------------------- read_instance


def test_factory_ct_instance_is_accepted():
    ds = read_instance(dataset_bytes(make_ct_dataset()), "IM0001.dcm")
    assert ds.Modality == "CT"


def test_rejection_names_the_file_and_builds_the_upload_report_entry():
    error = rejection(b"plain text, not DICOM", "IM0003.dcm")
    assert error.as_dict() == {"file": "IM0003.dcm", "status": "rejected", "reason": error.reason}
    assert error.reason.startswith("not a DICOM file")


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\x00" * 128 + b"DICM", os.urandom(4096), b"PK\x03\x04" * 100]
)
def test_arbitrary_bytes_are_rejected_never_raised(data):
    rejection(data)


def test_truncated_files_are_rejected_never_raised():
    data = dataset_bytes(make_ct_dataset())
    for end in range(0, len(data), 37):
        rejection(data[:end])


def test_mr_image_is_refused_naming_its_sop_class():
    mr = make_ct_dataset(SOPClassUID="1.2.840.10008.5.1.4.1.1.4", Modality="MR")
    reason = rejection(dataset_bytes(mr)).reason
    assert reason == (
        "SOP class MR Image Storage (1.2.840.10008.5.1.4.1.1.4) is not accepted: "
        "only CT Image Storage and Enhanced CT Image Storage"
    )


@pytest.mark.parametrize(
    "keyword", ["SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "Modality"]
)
def test_missing_required_attribute_is_refused_naming_it(keyword):
    reason = rejection(dataset_bytes(make_ct_dataset(**{keyword: None}))).reason
    assert reason == f"{keyword} is missing"


def test_invalid_uid_is_refused_naming_the_keyword_not_the_value():
    bad = "1.2.3.abc.4"
    reason = rejection(dataset_bytes(make_ct_dataset(StudyInstanceUID=bad))).reason
    assert "StudyInstanceUID is not a valid UID" in reason and bad not in reason


def test_instance_without_pixel_data_is_refused():
    ds = make_ct_dataset()
    del ds.PixelData
    assert rejection(dataset_bytes(ds)).reason == "PixelData is missing: an image is required"


def test_undecodable_pixel_data_is_refused_naming_the_transfer_syntax():
    ds = make_ct_dataset()
    ds.compress(RLELossless)
    ds.PixelData = ds.PixelData[:40] + b"\xff" * 8  # a damaged RLE frame
    reason = rejection(dataset_bytes(ds)).reason
    assert reason.startswith("PixelData could not be decoded (RLE Lossless (1.2.840.10008.1.2.5))")


def test_short_native_pixel_data_is_refused():
    ds = make_ct_dataset()
    ds.PixelData = ds.PixelData[:100]
    assert (
        "PixelData could not be decoded (Explicit VR Little Endian"
        in rejection(dataset_bytes(ds)).reason
    )


def _transcoded(syntax, **kwargs):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.compress(syntax, **kwargs)
    return dataset_bytes(ds)


def _written(syntax):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = syntax
    return dataset_bytes(ds)


@pytest.mark.parametrize(
    "make, syntax",
    [
        (lambda: _transcoded(RLELossless), RLELossless),
        (lambda: _transcoded(JPEGLSLossless), JPEGLSLossless),
        (lambda: _transcoded(JPEGLSNearLossless, jls_error=2), JPEGLSNearLossless),
        (lambda: _transcoded(JPEG2000Lossless), JPEG2000Lossless),
        (lambda: _transcoded(JPEG2000, j2k_cr=[20]), JPEG2000),
        (lambda: _written(DeflatedExplicitVRLittleEndian), DeflatedExplicitVRLittleEndian),
        (lambda: _written(ImplicitVRLittleEndian), ImplicitVRLittleEndian),
    ],
    ids=["rle", "jpeg-ls", "jpeg-ls-near", "j2k-lossless", "j2k", "deflate", "implicit"],
)
def test_ct_in_each_transfer_syntax_is_accepted(make, syntax):
    ds = read_instance(make(), "CT_small.dcm")
    assert indexed_attributes(ds).TransferSyntaxUID == syntax


def test_ct_without_part10_header_is_accepted_with_its_parsed_transfer_syntax():
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    buffer = io.BytesIO()
    del ds.file_meta
    ds.save_as(buffer, implicit_vr=True, little_endian=True)  # no preamble, no meta
    accepted = read_instance(buffer.getvalue(), "raw")
    assert indexed_attributes(accepted).TransferSyntaxUID == ImplicitVRLittleEndian


def test_big_endian_ct_is_accepted():
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small_bigendian.dcm"))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert (
        indexed_attributes(read_instance(buffer.getvalue(), "be.dcm")).TransferSyntaxUID
        == ExplicitVRBigEndian
    )


def test_jpeg_lossless_ct_is_accepted():
    # bad_sequence.dcm is JPEG Lossless CT whose fault is instance UIDs with invalid syntax.
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("bad_sequence.dcm"))
    assert "not a valid UID" in rejection(dataset_bytes(ds)).reason
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        setattr(ds, keyword, generate_uid())
    assert (
        indexed_attributes(read_instance(dataset_bytes(ds), "x")).TransferSyntaxUID
        == "1.2.840.10008.1.2.4.70"
    )


# pydicom's and pydicom-data's CT files, with the transfer syntax each is in.
SHIPPED_CT = {
    "CT_small.dcm": "1.2.840.10008.1.2.1",
    "693_J2KI.dcm": "1.2.840.10008.1.2.4.91",
    "693_J2KR.dcm": "1.2.840.10008.1.2.4.90",
    "693_UNCR.dcm": "1.2.840.10008.1.2.1",
    "693_UNCI.dcm": "1.2.840.10008.1.2.1",
    "J2K_pixelrep_mismatch.dcm": "1.2.840.10008.1.2.4.90",
    "explicit_VR-UN.dcm": "1.2.840.10008.1.2.4.90",
    "eCT_Supplemental.dcm": "1.2.840.10008.1.2.1",
}


def _shipped_files():
    return sorted(path for path in pydicom.data.get_testdata_files() if os.path.isfile(path))


def test_every_shipped_test_file_is_accepted_or_refused_with_a_reason():
    started = time.monotonic()
    accepted, refused, examples = {}, collections.Counter(), {}
    for path in _shipped_files():
        with open(path, "rb") as f:
            data = f.read()
        name = os.path.basename(path)
        try:
            ds = read_instance(data, name)
        except DicomRejected as error:
            assert error.reason and error.filename == name
            kind = re.sub(r"\(.*?\)", "(...)", error.reason.split(":")[0])
            refused[kind] += 1
            examples.setdefault(kind, name)
            continue
        attributes = indexed_attributes(ds)
        assert attributes.SOPInstanceUID and attributes.Rows and attributes.Columns
        assert isinstance(deid.check_deidentified(ds), list)
        accepted[name] = attributes.TransferSyntaxUID
    print(f"\n{len(accepted)} accepted, {sum(refused.values())} refused of {len(_shipped_files())}")
    for kind, count in refused.most_common():
        print(f"  {count:3d} {kind} (e.g. {examples[kind]})")
    for name, syntax in SHIPPED_CT.items():
        assert accepted.get(name) == syntax, f"{name} should be accepted"
    assert time.monotonic() - started < 20


def test_enhanced_ct_is_indexed_from_its_functional_groups():
    ds = read_instance(
        open(pydicom.data.get_testdata_file("eCT_Supplemental.dcm"), "rb").read(),
        "eCT_Supplemental.dcm",
    )
    attributes = indexed_attributes(ds)
    assert attributes.NumberOfFrames == 2
    assert attributes.ImagePositionPatient is not None and len(attributes.ImagePositionPatient) == 3
    assert attributes.ImageOrientationPatient is not None and attributes.PixelSpacing is not None
    assert attributes.slice_position is not None


# ---------------------------------------------------------------- indexed_attributes


def test_indexed_attributes_are_plain_values():
    ds = make_ct_dataset(
        WindowCenter=[40, 100],
        WindowWidth=[400, 500],
        PatientAge="045Y",
        ImagePositionPatient=[-100.0, -120.0, -37.5],
        ContrastBolusAgent="Iohexol",
        ContrastBolusStartTime="101500",
    )
    a = indexed_attributes(read_instance(dataset_bytes(ds), "x"))
    assert a.WindowCenter == 40.0 and a.WindowWidth == 400.0
    assert a.PatientAge == 45 and a.PatientSex == "F" and a.PatientID == "SRM-0001"
    assert a.ImagePositionPatient == (-100.0, -120.0, -37.5)
    assert a.ImageOrientationPatient == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert a.PixelSpacing == (0.7, 0.7) and a.SliceThickness == 2.5
    assert a.slice_position == -37.5
    assert a.RescaleIntercept == -1024.0 and a.RescaleSlope == 1.0
    assert a.StudyDate == datetime.date(2024, 1, 15) and a.StudyTime == "101000"
    assert a.ContrastBolusAgent == "Iohexol" and a.ContrastBolusStartTime == "101500"
    assert a.Rows == a.Columns == 16 and a.NumberOfFrames == 1


def test_slice_position_projects_on_the_slice_normal_of_oblique_slices():
    ds = make_ct_dataset(
        ImageOrientationPatient=[0.0, 1.0, 0.0, 0.0, 0.0, -1.0],  # sagittal: normal is -x
        ImagePositionPatient=[12.0, -50.0, 80.0],
    )
    assert indexed_attributes(read_instance(dataset_bytes(ds), "x")).slice_position == -12.0


@pytest.mark.parametrize(
    "value, years",
    [("045Y", 45), ("006M", 0), ("030M", 2), ("010W", 0), ("003D", 0), ("", None), ("abc", None)],
)
def test_patient_age_is_parsed_to_whole_years(value, years):
    assert parse_age_years(value) == years


def test_unreadable_optional_values_become_none():
    ds = make_ct_dataset(PatientAge=None, SliceThickness=None, StudyDate="2024")
    a = indexed_attributes(read_instance(dataset_bytes(ds), "x"))
    assert a.PatientAge is None and a.SliceThickness is None and a.StudyDate is None


# ---------------------------------------------------------------- classify_phase


def timing(uid, acquisition=None, agent=None, start=None, description=None, number=None):
    return SeriesTiming(uid, acquisition, agent, start, description, number)


def test_four_phase_study_with_bolus_start_time_is_classified_by_delay():
    calls = classify_phase(
        [
            timing("nc", "101300", None, None, "Abdomen 5mm", 2),
            timing("cm", "101535", "Iohexol", "101500", "Abdomen 5mm", 3),
            timing("ng", "101640", "Iohexol", "101500", "Abdomen 5mm", 4),
            timing("ex", "102000.500000", "Iohexol", "101500", "Abdomen 5mm", 5),
        ]
    )
    assert {uid: call.phase for uid, call in calls.items()} == {
        "nc": NC,
        "cm": CM,
        "ng": NG,
        "ex": EX,
    }
    assert calls["cm"].reason == "delay 35 s after ContrastBolusStartTime"
    assert calls["nc"].reason == "no ContrastBolusAgent"


def test_factory_study_round_trips_through_indexing_to_its_phases():
    study = make_ct_study(n=2)
    instances = [
        indexed_attributes(read_instance(dataset_bytes(ds), "x"))
        for slices in study.values()
        for ds in slices
    ]
    calls = classify_phase(series_timings(instances))
    expected = {slices[0].SeriesInstanceUID: phase for phase, slices in study.items()}
    assert {uid: call.phase for uid, call in calls.items()} == expected


def test_without_bolus_start_time_contrast_series_are_ordered_by_acquisition_time():
    calls = classify_phase(
        [
            timing("late", "102000", "Iohexol", number=9),
            timing("first", "101535", "Iohexol", number=7),
            timing("second", "101640", "Iohexol", number=3),
            timing("plain", "101300", None, number=2),
        ]
    )
    assert [calls[uid].phase for uid in ("plain", "first", "second", "late")] == [NC, CM, NG, EX]
    assert calls["second"].reason.startswith(
        "2nd contrast-enhanced acquisition of the study by AcquisitionTime"
    )


def test_reconstructions_of_one_acquisition_share_a_phase():
    calls = classify_phase(
        [
            timing("cm-thin", "101535", "Iohexol", number=3),
            timing("cm-thick", "101535", "Iohexol", number=30),
            timing("ng", "101640", "Iohexol", number=4),
        ]
    )
    assert (calls["cm-thin"].phase, calls["cm-thick"].phase, calls["ng"].phase) == (CM, CM, NG)


def test_without_any_time_series_number_orders_the_contrast_series():
    calls = classify_phase(
        [timing("b", agent="Iohexol", number=5), timing("a", agent="Iohexol", number=4)]
    )
    assert (calls["a"].phase, calls["b"].phase) == (CM, NG)
    assert "SeriesNumber" in calls["a"].reason


@pytest.mark.parametrize(
    "description, phase",
    [
        ("Arterial phase 1mm", CM),
        ("CORTICOMEDULLARY", CM),
        ("Abd CM 2.5", CM),
        ("Nephrographic", NG),
        ("Portal venous", NG),
        ("Excretory 5 min", EX),
        ("Delayed", EX),
        ("CT urography", EX),
        ("Non-contrast", NC),
        ("Unenhanced abdomen", NC),
        ("native", NC),
        ("PRE", NC),
    ],
)
def test_series_description_keyword_decides_when_timing_is_absent(description, phase):
    agent = None if phase == NC else "Iohexol"
    call = classify_phase([timing("s", agent=agent, description=description)])["s"]
    assert call.phase == phase


def test_keywords_alone_classify_a_study_without_contrast_attributes():
    calls = classify_phase(
        [
            timing("a", description="unenhanced"),
            timing("b", description="arterial"),
            timing("c", description="nephrographic"),
            timing("d", description="excretory"),
        ]
    )
    assert [calls[k].phase for k in "abcd"] == [NC, CM, NG, EX]
    assert "SeriesDescription" in calls["b"].reason


def test_delay_across_midnight_wraps():
    calls = classify_phase(
        [
            timing("cm", "000010", "Iohexol", "235935"),
            timing("ng", "000135", "Iohexol", "235935"),
            timing("nc", "235800", "Iohexol", "235935"),
        ]
    )
    assert (calls["cm"].phase, calls["ng"].phase, calls["nc"].phase) == (CM, NG, NC)
    assert calls["cm"].reason == "delay 35 s after ContrastBolusStartTime"
    assert calls["nc"].reason == "acquired 95 s before ContrastBolusStartTime"


def test_study_with_only_nc_and_ng():
    study = make_ct_study(n=1, phases=("NC", "NG"))
    instances = [indexed_attributes(ds) for slices in study.values() for ds in slices]
    calls = classify_phase(series_timings(instances))
    assert sorted(call.phase for call in calls.values()) == [NC, NG]


def test_delay_in_a_gap_goes_to_the_nearest_window_unless_the_description_says_otherwise():
    calls = classify_phase(
        [
            timing("a", "101612", "Iohexol", "101500"),  # 72 s
            timing("b", "101618", "Iohexol", "101500"),  # 78 s
            timing("c", "101612", "Iohexol", "101500", "nephrographic"),
            timing("d", "101510", "Iohexol", "101500"),  # 10 s
        ]
    )
    assert [calls[k].phase for k in "abcd"] == [CM, NG, NG, CM]
    assert "nearest is CM" in calls["a"].reason


@pytest.mark.parametrize(
    "delay_s, phase",
    [(25, CM), (69, CM), (80, NG), (179, NG), (180, EX), (600, EX), (900, EX), (1200, UNKNOWN)],
)
def test_phase_window_boundaries(delay_s, phase):
    acquisition = (
        datetime.datetime(2024, 1, 1, 10, 0, 0) + datetime.timedelta(seconds=delay_s)
    ).strftime("%H%M%S")
    assert classify_phase([timing("s", acquisition, "Iohexol", "100000")])["s"].phase == phase


def test_contrast_agent_copied_onto_the_plain_series_is_still_nc_by_timing():
    calls = classify_phase([timing("s", "101300", "Iohexol", "101500", "Abdomen")])
    assert calls["s"].phase == NC


def test_contrast_series_without_any_order_is_unknown():
    call = classify_phase([timing("s", agent="Iohexol")])["s"]
    assert call.phase == UNKNOWN and "no ContrastBolusStartTime" in call.reason


def test_series_timings_take_one_entry_per_series_with_its_earliest_time():
    slices = make_ct_series(3, phase="CM")
    for ds, tm in zip(slices, ["101537", "101535", "101536"]):
        ds.AcquisitionTime = tm
    timings = series_timings(indexed_attributes(ds) for ds in slices)
    assert len(timings) == 1 and timings[0].AcquisitionTime == "101535"


@pytest.mark.parametrize(
    "value, seconds",
    [("101535", 36935.0), ("10:15:35.5", 36935.5), ("1015", 36900.0), ("", None), ("xx", None)],
)
def test_dicom_times_are_parsed_to_seconds(value, seconds):
    assert parse_time_seconds(value) == seconds


def test_factory_pixels_are_ct_like_noise():
    ds = make_ct_dataset()
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert 0 < np.std(hu) < 30
