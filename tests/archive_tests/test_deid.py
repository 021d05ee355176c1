import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from archive.deid import (
    DIRECT_IDENTIFIERS,
    DeidentificationContext,
    check_deidentified,
    deidentify,
    is_pseudonym,
    strip_private_tags,
)
from archive.dicomfiles import indexed_attributes, read_instance
from tests.factories.dicom import dataset_bytes, make_ct_dataset, make_ct_series

NAME = "Doe^John"


def identified_dataset():
    """A CT instance straight from a scanner: identifiers at the top and nested, private tags."""
    ds = make_ct_dataset(
        PatientName=NAME,
        PatientID="MRN-4711",
        PatientBirthDate="19600101",
        PatientAddress="1 Main Street",
        InstitutionName="St Elsewhere Hospital",
        StationName="CT01",
        DeviceSerialNumber="SN998877",
        ReferringPhysicianName="House^Gregory",
        OperatorsName="Tech^Tina",
        AccessionNumber="ACC123456",
        OtherPatientIDs="OLD-99",
        PatientIdentityRemoved=None,
        DeidentificationMethod=None,
    )
    request = Dataset()
    request.AccessionNumber = "ACC123456"
    request.RequestedProcedureID = "RP1"
    ds.RequestAttributesSequence = Sequence([request])
    other = Dataset()
    other.PatientID = "OLD-99"
    other.IssuerOfPatientID = "Hospital"
    ds.OtherPatientIDsSequence = Sequence([other])
    reference = Dataset()
    reference.ReferencedSOPClassUID = ds.SOPClassUID
    reference.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    reference.add_new(0x00291010, "LO", "private nested")
    ds.ReferencedImageSequence = Sequence([reference])
    ds.add_new(0x00090010, "LO", "ACME")
    ds.add_new(0x00091001, "LO", "Doe John private")
    return ds


VALUES = [
    "Doe",
    "John",
    "MRN-4711",
    "19600101",
    "Main Street",
    "Elsewhere",
    "SN998877",
    "ACC123456",
    "OLD-99",
    "House",
]


# ---------------------------------------------------------------- check_deidentified


def test_deidentified_factory_dataset_has_no_problems():
    assert check_deidentified(make_ct_dataset()) == []


def test_patient_name_doe_john_is_refused_naming_patient_name():
    problems = check_deidentified(make_ct_dataset(PatientName=NAME))
    assert len(problems) == 1 and problems[0].startswith("PatientName is not a pseudonym")


@pytest.mark.parametrize(
    "name", ["SRM-0001", "ANON123", "case_17", "SRM-0001^", "ANONYMIZED", "anonymous", ""]
)
def test_pseudonyms_and_empty_names_are_accepted(name):
    assert is_pseudonym(name)
    assert check_deidentified(make_ct_dataset(PatientName=name)) == []


@pytest.mark.parametrize("name", ["Doe^John", "John Doe", "DOE", "Müller", "Doe^John^^Dr", "X=Y1"])
def test_names_are_not_pseudonyms(name):
    assert not is_pseudonym(name)


def test_pseudonym_pattern_is_configurable():
    assert (
        check_deidentified(
            make_ct_dataset(PatientName="SUBJECT"), pseudonym_pattern=r"SUBJECT|SRM-\d{4}"
        )
        == []
    )
    assert (
        check_deidentified(make_ct_dataset(PatientName="SRM-0001"), pseudonym_pattern=r"P\d+") != []
    )


def test_identifiers_are_found_with_their_sequence_path_and_never_quoted():
    problems = check_deidentified(identified_dataset())
    text = "\n".join(problems)
    for keyword in (
        "PatientName",
        "PatientBirthDate",
        "PatientAddress",
        "InstitutionName",
        "StationName",
        "DeviceSerialNumber",
        "ReferringPhysicianName",
        "OperatorsName",
        "AccessionNumber",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
    ):
        assert any(p.startswith(keyword + " ") for p in problems), keyword
    assert (
        "RequestAttributesSequence[0] > AccessionNumber is not empty (direct identifier)"
        in problems
    )
    assert (
        "PatientIdentityRemoved is missing: set it to YES once the files are de-identified"
        in problems
    )
    for value in VALUES:
        assert value not in text


def test_patient_id_is_allowed_as_the_pseudonymous_key():
    assert check_deidentified(make_ct_dataset(PatientID="MRN-4711")) == []


@pytest.mark.parametrize("patient_id", ["Doe^John", "John Doe", "DOE"])
def test_a_patient_id_that_is_a_name_is_refused_naming_patient_id_never_its_value(patient_id):
    problems = check_deidentified(make_ct_dataset(PatientID=patient_id))
    assert len(problems) == 1 and problems[0].startswith("PatientID is not a pseudonym")
    assert patient_id not in problems[0]


def test_patient_id_is_checked_against_the_configured_pseudonym_pattern():
    assert (
        check_deidentified(make_ct_dataset(PatientID="SRM-0001"), pseudonym_pattern=r"SRM-\d{4}")
        == []
    )
    problems = check_deidentified(
        make_ct_dataset(PatientName="SRM-0001", PatientID="4711"), pseudonym_pattern=r"SRM-\d{4}"
    )
    assert [p.split(" ")[0] for p in problems] == ["PatientID"]


def test_empty_identifiers_and_placeholders_are_accepted():
    ds = make_ct_dataset(InstitutionName="", ReferringPhysicianName="", OperatorsName="ANONYMIZED")
    ds.OtherPatientIDsSequence = Sequence()
    assert check_deidentified(ds) == []


def test_burned_in_annotation_yes_is_refused():
    problems = check_deidentified(make_ct_dataset(BurnedInAnnotation="YES"))
    assert len(problems) == 1 and problems[0].startswith("BurnedInAnnotation is YES")


def test_patient_identity_removed_missing_or_no_is_refused():
    assert check_deidentified(make_ct_dataset(PatientIdentityRemoved=None)) == [
        "PatientIdentityRemoved is missing: set it to YES once the files are de-identified"
    ]
    assert check_deidentified(make_ct_dataset(PatientIdentityRemoved="NO"))[0].startswith(
        "PatientIdentityRemoved is not YES"
    )


def test_identifier_table_keywords_are_dicom_keywords():
    assert all(pydicom.datadict.tag_for_keyword(k) is not None for k in DIRECT_IDENTIFIERS)
    assert "PatientAge" not in DIRECT_IDENTIFIERS and "PatientSex" not in DIRECT_IDENTIFIERS


def test_strip_private_tags_removes_nested_private_tags_and_counts_them():
    ds = identified_dataset()
    assert strip_private_tags(ds) == 3
    assert not any(e.tag.is_private for e in ds.iterall())
    assert strip_private_tags(ds) == 0


# ---------------------------------------------------------------- deidentify


def test_deidentified_file_passes_the_check_and_keeps_nothing_identifying():
    out = deidentify(identified_dataset(), DeidentificationContext(secret="s3cret"))
    assert check_deidentified(out) == []
    for element in out.iterall():
        assert not element.tag.is_private
        if element.keyword in DIRECT_IDENTIFIERS and element.keyword != "PatientName":
            assert element.value in (None, "", [], "ANONYMIZED") or len(element.value) == 0
    written = dataset_bytes(out)
    for value in VALUES:
        assert value.encode() not in written
    assert "RequestAttributesSequence" not in out and "OtherPatientIDsSequence" not in out


def test_deidentified_file_is_marked_and_keeps_covariates_and_dates():
    source = identified_dataset()
    out = deidentify(source, DeidentificationContext(secret="s3cret"))
    assert out.PatientIdentityRemoved == "YES"
    assert "Annex E" in out.DeidentificationMethod and len(out.DeidentificationMethod) <= 64
    assert [c.CodeValue for c in out.DeidentificationMethodCodeSequence] == [
        "113100",
        "113106",
        "113108",
    ]
    assert (
        out.DeidentificationMethodCodeSequence[0].CodeMeaning
        == "Basic Application Confidentiality Profile"
    )
    assert (out.PatientAge, out.PatientSex) == (source.PatientAge, source.PatientSex)
    assert (out.StudyDate, out.AcquisitionTime) == (source.StudyDate, source.AcquisitionTime)
    assert out.BurnedInAnnotation == "NO"
    assert out.PixelData == source.PixelData
    assert "PatientName" in source and str(source.PatientName) == NAME  # the input is not modified


def test_deidentified_file_is_accepted_by_read_instance():
    out = deidentify(identified_dataset(), DeidentificationContext(secret="s3cret"))
    attributes = indexed_attributes(read_instance(dataset_bytes(out), "IM1.dcm"))
    assert attributes.PatientID == str(out.PatientName)


def test_burned_in_annotation_stays_yes_and_refused_after_deidentify():
    out = deidentify(make_ct_dataset(BurnedInAnnotation="YES"), DeidentificationContext())
    assert out.BurnedInAnnotation == "YES"
    assert check_deidentified(out)[0].startswith("BurnedInAnnotation is YES")


def test_files_of_one_context_share_pseudonym_and_uid_mapping():
    context = DeidentificationContext(secret="s3cret")
    cm = make_ct_series(3, phase="CM", PatientName=NAME, PatientID="MRN-4711")
    ng = make_ct_series(
        2,
        phase="NG",
        study_uid=cm[0].StudyInstanceUID,
        frame_of_reference_uid=cm[0].FrameOfReferenceUID,
        PatientName=NAME,
        PatientID="MRN-4711",
    )
    source = cm + ng
    outs = [deidentify(ds, context) for ds in source]
    assert len({str(o.PatientName) for o in outs}) == 1 and len({o.PatientID for o in outs}) == 1
    assert outs[0].PatientID != "MRN-4711"
    assert len({o.StudyInstanceUID for o in outs}) == 1
    assert len({o.FrameOfReferenceUID for o in outs}) == 1
    assert (
        len({o.SeriesInstanceUID for o in outs[:3]}) == 1
        and outs[0].SeriesInstanceUID != outs[3].SeriesInstanceUID
    )
    assert len({o.SOPInstanceUID for o in outs}) == 5
    for old, new in zip(source, outs):
        for keyword in (
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "FrameOfReferenceUID",
        ):
            assert getattr(new, keyword) != getattr(old, keyword)
            assert getattr(new, keyword) == context.new_uid(getattr(old, keyword))
        assert new.file_meta.MediaStorageSOPInstanceUID == new.SOPInstanceUID
        assert new.SOPClassUID == old.SOPClassUID


def test_referenced_uids_are_remapped_consistently_and_class_uids_kept():
    context = DeidentificationContext(secret="s3cret")
    source = identified_dataset()
    out = deidentify(source, context)
    reference = out.ReferencedImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == out.SOPInstanceUID
    assert reference.ReferencedSOPClassUID == source.SOPClassUID


def test_same_secret_gives_the_same_result_and_another_secret_another():
    source = identified_dataset()
    first = dataset_bytes(deidentify(source, DeidentificationContext(secret="a")))
    again = dataset_bytes(deidentify(source, DeidentificationContext(secret="a")))
    other = deidentify(source, DeidentificationContext(secret="b"))
    assert first == again
    assert other.SOPInstanceUID != pydicom.dcmread(__import__("io").BytesIO(first)).SOPInstanceUID


def test_different_patients_of_one_upload_get_different_pseudonyms_unless_one_is_given():
    context = DeidentificationContext(secret="s3cret")
    a = deidentify(make_ct_dataset(PatientID="MRN-1"), context)
    b = deidentify(make_ct_dataset(PatientID="MRN-2"), context)
    assert a.PatientID != b.PatientID and is_pseudonym(a.PatientID)
    fixed = DeidentificationContext(pseudonym="SRM-0042")
    assert deidentify(make_ct_dataset(PatientID="MRN-1"), fixed).PatientName == "SRM-0042"


def test_context_refuses_a_name_as_pseudonym():
    with pytest.raises(ValueError):
        DeidentificationContext(pseudonym=NAME)


def test_shipped_ct_files_are_deidentified_to_pass_the_check():
    context = DeidentificationContext(secret="s3cret")
    for name in ("CT_small.dcm", "693_J2KR.dcm", "eCT_Supplemental.dcm"):
        ds = pydicom.dcmread(pydicom.data.get_testdata_file(name))
        out = deidentify(ds, context)
        assert check_deidentified(out) == [], name
        read_instance(dataset_bytes(out), name)


def test_every_shipped_test_file_is_checked_and_deidentified_without_raising():
    import os

    context = DeidentificationContext(secret="s3cret")
    for path in pydicom.data.get_testdata_files():
        if not os.path.isfile(path):
            continue
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            continue  # not DICOM at all: read_instance refuses those
        assert isinstance(check_deidentified(ds), list)
        problems = check_deidentified(deidentify(ds, context))
        assert all(p.startswith("BurnedInAnnotation") for p in problems), (path, problems)
