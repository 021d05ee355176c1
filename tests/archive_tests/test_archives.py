import io
import stat
import time
import tracemalloc
import zipfile

import pytest

from archive import archives
from archive.archives import UploadLimits, iter_upload_files
from tests.factories.dicom import dataset_bytes, make_ct_dataset


def zip_bytes(members, compression=zipfile.ZIP_DEFLATED):
    """A zip of ``members``: (name, bytes) pairs or ready ZipInfo/bytes pairs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def dicom():
    return dataset_bytes(make_ct_dataset())


def refusal(members):
    rejected = [m for m in members if m.rejected]
    assert len(rejected) == 1, members
    return rejected[0]


def test_plain_file_yields_itself():
    data = dicom()
    [member] = iter_upload_files("IM0001.dcm", data, UploadLimits())
    assert member.name == "IM0001.dcm" and member.data == data and member.reason is None


def test_non_zip_non_dicom_file_passes_through_for_the_dicom_check_to_reject():
    [member] = iter_upload_files("notes.txt", b"not an image", UploadLimits())
    assert member.data == b"not an image" and not member.rejected


def test_file_object_is_read_like_bytes():
    data = zip_bytes([("IM1.dcm", dicom())])
    members = list(iter_upload_files("study.zip", io.BytesIO(data), UploadLimits()))
    assert [m.name for m in members] == ["study.zip/IM1.dcm"]


def test_zip_members_are_yielded_with_the_archive_name_and_directories_left_out():
    data = zip_bytes(
        [("series1/", b""), ("series1/IM1.dcm", dicom()), ("series1/IM2.dcm", dicom())]
    )
    members = list(iter_upload_files("study.zip", data, UploadLimits()))
    assert [m.name for m in members] == ["study.zip/series1/IM1.dcm", "study.zip/series1/IM2.dcm"]
    assert all(m.data for m in members)


def test_zip_is_recognised_by_magic_bytes_not_extension():
    data = zip_bytes([("IM1.dcm", dicom())])
    members = list(iter_upload_files("upload.dcm", data, UploadLimits()))
    assert [m.name for m in members] == ["upload.dcm/IM1.dcm"]


def test_dicom_file_whose_preamble_starts_like_a_zip_is_not_opened_as_zip():
    ds = make_ct_dataset()
    ds.preamble = b"PK\x03\x04" + b"\x00" * 124
    data = dataset_bytes(ds)
    [member] = iter_upload_files("IM1.dcm", data, UploadLimits())
    assert member.data == data


def test_os_junk_and_dicomdir_are_reported_as_skipped():
    data = zip_bytes(
        [
            ("IM1.dcm", dicom()),
            ("__MACOSX/._IM1.dcm", b"junk"),
            (".DS_Store", b"junk"),
            ("scans/Thumbs.db", b"junk"),
            ("DICOMDIR", b"dir"),
        ]
    )
    members = list(iter_upload_files("study.zip", data, UploadLimits()))
    assert [m.name for m in members if m.data] == ["study.zip/IM1.dcm"]
    skipped = {m.name: m.reason for m in members if m.skipped}
    assert set(skipped) == {
        "study.zip/__MACOSX/._IM1.dcm",
        "study.zip/.DS_Store",
        "study.zip/scans/Thumbs.db",
        "study.zip/DICOMDIR",
    }
    assert "DICOMDIR" in skipped["study.zip/DICOMDIR"]
    assert not any(m.rejected for m in members)


@pytest.mark.parametrize(
    "bad_name, words",
    [
        ("../evil.dcm", "path traversal"),
        ("series/../../evil.dcm", "path traversal"),
        ("..\\evil.dcm", "path traversal"),
        ("/etc/evil.dcm", "absolute path"),
        ("C:/Windows/evil.dcm", "absolute path"),
    ],
)
def test_zip_with_unsafe_member_path_is_refused_whole_naming_the_member(bad_name, words):
    data = zip_bytes([("IM1.dcm", dicom()), (bad_name, dicom())])
    members = list(iter_upload_files("study.zip", data, UploadLimits()))
    assert len(members) == 1
    rejected = refusal(members)
    assert rejected.name == "study.zip"
    assert words in rejected.reason and repr(bad_name) in rejected.reason


def test_zip_with_symlink_member_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("IM1.dcm", dicom())
        link = zipfile.ZipInfo("IM2.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    members = list(iter_upload_files("study.zip", buffer.getvalue(), UploadLimits()))
    assert "symbolic link" in refusal(members).reason and "IM2.dcm" in refusal(members).reason


def test_zip_with_encrypted_member_is_refused():
    data = bytearray(zip_bytes([("IM1.dcm", dicom())]))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature) + flag_offset
        data[at] |= 0x1
    members = list(iter_upload_files("study.zip", bytes(data), UploadLimits()))
    assert "encrypted" in refusal(members).reason


def test_zip_in_zip_is_opened_one_level():
    inner = zip_bytes([("IM1.dcm", dicom())])
    outer = zip_bytes([("inner.zip", inner), ("IM2.dcm", dicom())])
    members = list(iter_upload_files("study.zip", outer, UploadLimits()))
    assert [m.name for m in members] == ["study.zip/inner.zip/IM1.dcm", "study.zip/IM2.dcm"]


def test_zip_nested_two_levels_is_refused():
    innermost = zip_bytes([("IM1.dcm", dicom())])
    middle = zip_bytes([("deeper.zip", innermost)])
    outer = zip_bytes([("inner.zip", middle)])
    members = list(iter_upload_files("study.zip", outer, UploadLimits()))
    rejected = refusal(members)
    assert (
        rejected.name == "study.zip"
        and "nested" in rejected.reason
        and "deeper.zip" in rejected.reason
    )


def test_zip_with_too_many_members_is_refused():
    data = zip_bytes([(f"IM{i}.dcm", b"x") for i in range(6)])
    members = list(iter_upload_files("study.zip", data, UploadLimits(max_members=5)))
    assert "more than 5" in refusal(members).reason


def test_zip_above_total_size_is_refused():
    data = zip_bytes([(f"IM{i}.dcm", dicom()) for i in range(3)])
    members = list(iter_upload_files("study.zip", data, UploadLimits(max_total_bytes=2000)))
    assert "more than 2000 bytes" in refusal(members).reason


def test_small_highly_compressible_files_are_not_taken_for_bombs():
    data = zip_bytes([("IM1.dcm", b"\x00" * 100_000)])
    [member] = iter_upload_files("study.zip", data, UploadLimits(max_ratio=10))
    assert member.data == b"\x00" * 100_000


@pytest.fixture(scope="module")
def bomb_path(tmp_path_factory):
    """200 MB of zeros deflated into about 200 kB, written in a stream."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("IM0001.dcm", "w", force_zip64=True) as member:
            for _ in range(200):
                member.write(zeros)
    return path


def test_decompression_bomb_is_refused_from_its_declared_ratio(bomb_path):
    started = time.monotonic()
    with open(bomb_path, "rb") as upload:
        members = list(iter_upload_files("bomb.zip", upload, UploadLimits()))
    rejected = refusal(members)
    assert "decompression bomb" in rejected.reason and "IM0001.dcm" in rejected.reason
    assert time.monotonic() - started < 2


def test_decompression_bomb_stops_while_decompressing_without_filling_memory(
    bomb_path, monkeypatch
):
    # Even when the declared sizes are not trusted at all, reading stops at the limit.
    monkeypatch.setattr(archives, "_check_entries", lambda *args: None)
    tracemalloc.start()
    try:
        with open(bomb_path, "rb") as upload:
            members = list(iter_upload_files("bomb.zip", upload, UploadLimits()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "decompression bomb" in refusal(members).reason
    assert peak < 64 * 1024 * 1024


def test_member_above_file_size_limit_is_refused_while_decompressing(monkeypatch):
    monkeypatch.setattr(archives, "_check_entries", lambda *args: None)
    data = zip_bytes([("IM1.dcm", bytes(300_000))])
    members = list(
        iter_upload_files("study.zip", data, UploadLimits(max_file_bytes=100_000, max_ratio=1e9))
    )
    assert "more than 100000 bytes" in refusal(members).reason


def test_damaged_zip_is_refused_not_raised():
    data = zip_bytes([("IM1.dcm", dicom())])
    members = list(iter_upload_files("study.zip", data[: len(data) // 2], UploadLimits()))
    assert refusal(members).name == "study.zip"


def test_plain_file_above_file_size_limit_is_refused():
    [member] = iter_upload_files("IM1.dcm", bytes(5000), UploadLimits(max_file_bytes=1000))
    assert member.rejected and "larger than 1000 bytes" in member.reason


def test_tiny_file_size_limit_still_refuses_instead_of_reading_everything():
    [member] = iter_upload_files("IM1.dcm", bytes(5000), UploadLimits(max_file_bytes=50))
    assert member.rejected


def many_small_zeros(n=400, size=512 * 1024):
    """``n`` members of ``size`` zero bytes: each below the 1 MiB grace, the archive about 1000:1."""
    return zip_bytes([(f"IM{i:04d}.dcm", bytes(size)) for i in range(n)])


def test_many_small_members_are_refused_by_the_ratio_over_the_whole_archive():
    members = list(iter_upload_files("many.zip", many_small_zeros(), UploadLimits()))
    rejected = refusal(members)
    assert rejected.name == "many.zip" and not any(m.data for m in members)
    assert "ratio above 100 over the whole archive" in rejected.reason


def test_many_small_members_stop_while_decompressing_when_the_declared_sizes_lie(monkeypatch):
    monkeypatch.setattr(archives, "_check_entries", lambda *args: None)
    data = many_small_zeros()
    members = list(iter_upload_files("many.zip", data, UploadLimits()))
    rejected = refusal(members)
    assert (
        "ratio above 100 over the whole archive" in rejected.reason
        and "decompression bomb" in rejected.reason
    )
    # Stopped once the members had unpacked to 100 times the archive: not all 200 MiB.
    unpacked = sum(len(m.data) for m in members if m.data)
    assert unpacked <= 100 * len(data) + 512 * 1024


def test_one_budget_counts_the_files_and_bytes_of_every_item_of_an_upload():
    budget = archives.UploadBudget(UploadLimits(max_total_bytes=5000, max_members=10))
    first = list(iter_upload_files("a.zip", zip_bytes([("IM1.dcm", bytes(3000))]), budget=budget))
    assert not any(m.rejected for m in first)
    second = list(iter_upload_files("b.dcm", bytes(3000), budget=budget))
    assert "the upload unpacks to more than 5000 bytes" in refusal(second).reason


def test_an_unseekable_stream_is_spooled_not_read_into_memory():
    class Stream(io.RawIOBase):
        def __init__(self, data):
            self.source = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            return self.source.readinto(buffer)

        def seek(self, *args):
            raise io.UnsupportedOperation("a stream")

    members = list(
        iter_upload_files("study.zip", Stream(zip_bytes([("IM1.dcm", dicom())])), UploadLimits())
    )
    assert [m.name for m in members] == ["study.zip/IM1.dcm"]
    refused = list(
        iter_upload_files(
            "big.zip", Stream(zip_bytes([("IM1.dcm", dicom())])), UploadLimits(max_total_bytes=100)
        )
    )
    assert "larger than 100 bytes" in refusal(refused).reason
