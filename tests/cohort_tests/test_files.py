"""The written cohort: DICOM geometry, contrast and timing, ROI truth, de-identification, determinism."""

import csv
import filecmp

import numpy as np
import pydicom
import pytest
from pydicom import config

from archive.vocabulary import PHASES
from cohort.anatomy import render_volumes
from cohort.figures import lesion_hu_distribution
from cohort.files import write_cohort
from cohort.latents import sample_cohort
from cohort.spec import CohortSpec

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

# DICOM PS3.15 Annex E basic profile: identifiers that must not carry a value.
DIRECT_IDENTIFIERS = (
    "PatientBirthDate",
    "PatientBirthTime",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "PerformingPhysicianName",
    "OperatorsName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "AccessionNumber",
    "StationName",
    "DeviceSerialNumber",
    "MedicalRecordLocator",
    "EthnicGroup",
    "Occupation",
)


def read(path):
    with config.strict_reading():
        return pydicom.dcmread(path)


@pytest.fixture(scope="module")
def series(small_cohort):
    """{patient_id: {phase: [datasets]}} read back from disk."""
    return {
        study.patient_id: {
            phase: [read(p) for p in files.paths] for phase, files in study.series.items()
        }
        for study in small_cohort.studies
    }


@pytest.fixture(scope="module")
def rows(small_cohort):
    with open(small_cohort.csv_path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_each_study_has_four_ct_series_in_phase_order_sharing_one_frame_of_reference(
    series, small_spec
):
    assert len(series) == small_spec.patients
    for phases in series.values():
        assert list(phases) == list(PHASES)
        slices = [ds for datasets in phases.values() for ds in datasets]
        assert {ds.SOPClassUID for ds in slices} == {CT_IMAGE_STORAGE}
        assert {ds.Modality for ds in slices} == {"CT"}
        assert len({ds.FrameOfReferenceUID for ds in slices}) == 1
        assert len({ds.StudyInstanceUID for ds in slices}) == 1
        assert [phases[p][0].SeriesNumber for p in PHASES] == [1, 2, 3, 4]
        assert len({phases[p][0].SeriesInstanceUID for p in PHASES}) == 4
        assert len({ds.SOPInstanceUID for ds in slices}) == len(slices)


def test_slices_carry_realistic_ct_geometry_and_pixel_attributes(series, small_spec):
    for phases in series.values():
        for datasets in phases.values():
            assert len(datasets) == small_spec.slices
            z = [float(ds.ImagePositionPatient[2]) for ds in datasets]
            assert np.allclose(np.diff(z), -small_spec.slice_mm)
            assert [ds.InstanceNumber for ds in datasets] == list(range(1, small_spec.slices + 1))
            ds = datasets[0]
            assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            assert float(ds.PixelSpacing[0]) == pytest.approx(small_spec.pixel_mm)
            assert float(ds.SliceThickness) == small_spec.slice_mm
            assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
            assert (ds.BitsAllocated, ds.PhotometricInterpretation, ds.Rows) == (
                16,
                "MONOCHROME2",
                small_spec.size,
            )
            assert (float(ds.RescaleIntercept), float(ds.RescaleSlope), ds.RescaleType) == (
                -1024,
                1,
                "HU",
            )
            assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (40, 400)
            assert ds.pixel_array.shape == (small_spec.size, small_spec.size)


def seconds(tm):
    return int(tm[:2]) * 3600 + int(tm[2:4]) * 60 + int(tm[4:6])


def test_contrast_module_only_on_enhanced_series_and_delays_fit_each_phase(series):
    windows = {"CM": (30, 40), "NG": (90, 100), "EX": (285, 315)}
    for phases in series.values():
        nc = phases["NC"][0]
        assert "ContrastBolusAgent" not in nc and "ContrastBolusStartTime" not in nc
        assert nc.SeriesDescription == "NC"
        start = seconds(phases["CM"][0].ContrastBolusStartTime)
        assert seconds(nc.AcquisitionTime) < start
        times = [seconds(phases[p][0].AcquisitionTime) for p in PHASES]
        assert times == sorted(times) and len(set(times)) == 4
        for phase, (low, high) in windows.items():
            ds = phases[phase][0]
            assert ds.ContrastBolusAgent and ds.ContrastBolusRoute == "IV"
            assert seconds(ds.ContrastBolusStartTime) == start
            assert low <= seconds(ds.AcquisitionTime) - start <= high, phase
            assert ds.SeriesDescription.startswith(phase)


def test_files_carry_no_direct_identifiers_and_do_carry_the_deidentification_markers(series):
    for patient_id, phases in series.items():
        for ds in (datasets[0] for datasets in phases.values()):
            for keyword in DIRECT_IDENTIFIERS:
                assert not ds.get(keyword), keyword
            assert str(ds.PatientName) == ds.PatientID == patient_id
            assert ds.PatientIdentityRemoved == "YES"
            assert ds.DeidentificationMethod
            assert ds.BurnedInAnnotation == "NO"
            assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
            assert ds.PatientSex in ("M", "F")
            assert len(ds.PatientAge) == 4 and ds.PatientAge.endswith("Y")


def test_csv_has_one_row_per_lesion_with_uids_that_exist(rows, series, small_cohort):
    assert len(rows) == len(small_cohort.truths) >= 3
    for row in rows:
        phases = series[row["patient_id"]]
        assert row["study_instance_uid"] == phases["NC"][0].StudyInstanceUID
        for phase in PHASES:
            ds = phases[phase][int(row[f"{phase}_instance_number"]) - 1]
            assert ds.SeriesInstanceUID == row[f"{phase}_series_instance_uid"]
            assert ds.SOPInstanceUID == row[f"{phase}_sop_instance_uid"]
            assert float(ds.ImagePositionPatient[2]) == pytest.approx(float(row[f"{phase}_z_mm"]))
        assert row["malignant"] in ("0", "1") and 10 <= float(row["size_mm"]) <= 40
        assert float(row["oracle_llr"]) == pytest.approx(float(row["oracle_llr"]))


def test_roi_in_the_csv_lies_on_the_lesion_with_its_phase_attenuation(rows, series, small_spec):
    moved = 0
    for row in rows:
        mean, sd = lesion_hu_distribution(row["subtype"])
        positions = set()
        for j, phase in enumerate(PHASES):
            ds = series[row["patient_id"]][phase][int(row[f"{phase}_instance_number"]) - 1]
            hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            x0, y0 = (float(v) for v in ds.ImagePositionPatient[:2])
            columns = x0 + np.arange(ds.Columns) * float(ds.PixelSpacing[1])
            rows_mm = y0 + np.arange(ds.Rows) * float(ds.PixelSpacing[0])
            x, y, r = (float(row[f"{phase}_{k}"]) for k in ("x_mm", "y_mm", "radius_mm"))
            inside = (columns[None, :] - x) ** 2 + (rows_mm[:, None] - y) ** 2 <= r * r
            n = int(inside.sum())
            assert n >= 3
            measured = hu[inside].mean()
            noise_tolerance = 4 * 15 * 2.2 / np.sqrt(n) + 8  # correlated noise, edge partial volume
            assert abs(measured - float(row[f"{phase}_mean_hu"])) <= noise_tolerance, (
                row["lesion_id"],
                phase,
            )
            assert abs(measured - mean[j]) <= 4 * sd[j] + noise_tolerance, (row["lesion_id"], phase)
            positions.add((x, y, float(row[f"{phase}_z_mm"])))
        moved += len(positions) > 1
    assert moved == len(rows)  # the patient shifts between phases


def test_same_seed_gives_identical_files_and_csv(tmp_path):
    spec = CohortSpec(patients=2, seed=3, size=128, slices=16)
    first, second = write_cohort(spec, tmp_path / "a"), write_cohort(spec, tmp_path / "b")
    assert filecmp.cmp(first.csv_path, second.csv_path, shallow=False)
    for a, b in zip(first.studies, second.studies):
        for phase in PHASES:
            for path_a, path_b in zip(a.series[phase].paths, b.series[phase].paths):
                assert path_a.read_bytes() == path_b.read_bytes()


def test_another_seed_gives_other_pixels_and_uids():
    a = sample_cohort(CohortSpec(patients=1, seed=1, size=128, slices=16))[0]
    b = sample_cohort(CohortSpec(patients=1, seed=2, size=128, slices=16))[0]
    spec = CohortSpec(patients=1, seed=1, size=128, slices=16)
    assert not np.array_equal(render_volumes(a, spec).hu["CM"], render_volumes(b, spec).hu["CM"])


@pytest.mark.parametrize("syntax", ["implicit-le", "rle", "jpeg-ls", "jpeg2000"])
def test_every_transfer_syntax_decodes_to_the_same_pixels(tmp_path, syntax):
    reference = write_cohort(CohortSpec(patients=1, seed=4, size=64, slices=8), tmp_path / "ref")
    other = write_cohort(
        CohortSpec(patients=1, seed=4, size=64, slices=8, transfer_syntax=syntax), tmp_path / syntax
    )
    path_a = reference.studies[0].series["CM"].paths[3]
    path_b = other.studies[0].series["CM"].paths[3]
    ds = read(path_b)
    assert np.array_equal(read(path_a).pixel_array, ds.pixel_array)
    assert ds.file_meta.TransferSyntaxUID.is_little_endian


def test_preview_is_written_as_png(small_cohort):
    assert (small_cohort.csv_path.parent / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
