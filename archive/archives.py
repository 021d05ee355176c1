"""Unpacking uploads: plain files pass through, zip archives are opened safely.

An archive is refused as a whole (one rejected member named after the archive,
whose reason names the offending member) for path traversal, links, encrypted
members, too many members, archives nested deeper than allowed, or
decompression bombs. Sizes are enforced while decompressing in chunks, never
from the declared sizes alone, so a bomb stops at the limit.

One :class:`UploadBudget` is shared by every item of an upload: the number of
files and the bytes they unpack to are counted over the whole upload, not per
zip. The compression ratio is checked per member and over each whole archive
(the bytes its members unpack to, nested archives included, against the archive's
own size), so a bomb of many small members stops as early as one large member.
Streams are copied to temporary files (:func:`spool`), never read whole into memory.
"""

from __future__ import annotations

import io
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_CHUNK = 1 << 16
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", ".directory"}
_DRIVE = re.compile(r"^[A-Za-z]:")
# A spooled body or upload stays in memory up to this size, then moves to a temporary file.
SPOOL_MEMORY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """Limits on one upload.

    ``max_ratio`` bounds uncompressed/compressed size per member, and over each
    whole archive, once the member (the archive) has produced more than
    ``ratio_grace_bytes`` (small, highly compressible files such as blank test
    images are not bombs). ``max_zip_depth`` is how many levels of zip inside the
    uploaded zip are opened (1: a zip in a zip). ``max_total_bytes`` and
    ``max_members`` hold for the whole upload (:class:`UploadBudget`).
    """

    max_file_bytes: int = 512 * 1024 * 1024
    max_total_bytes: int = 4 * 1024 * 1024 * 1024
    max_members: int = 20000
    max_ratio: float = 100.0
    max_zip_depth: int = 1
    ratio_grace_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class UploadedMember:
    """One file of an upload: its bytes, or why it was rejected or skipped.

    ``name`` is the display name ("study.zip/IM0001.dcm"). Exactly one of: ``data``
    set (a file to check), ``reason`` set with ``skipped`` false (rejected), or
    ``skipped`` true (not an image: directory junk, DICOMDIR; ``reason`` says why).
    """

    name: str
    data: bytes | None = None
    reason: str | None = None
    skipped: bool = False

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def rejected(self) -> bool:
        return self.reason is not None and not self.skipped


class _ArchiveRefused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class UploadBudget:
    """What one upload has used of its :class:`UploadLimits`: files and unpacked bytes.

    Shared by every item of the upload (pass the same budget to each
    :func:`iter_upload_files` call), so ten zips together get the limits of one.
    """

    limits: UploadLimits
    total: int = 0
    members: int = 0

    def count_member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise _ArchiveRefused(
                f"the upload has more than {self.limits.max_members} files (at {name})"
            )

    def add(self, name: str, n: int) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            raise _ArchiveRefused(
                f"the upload unpacks to more than {self.limits.max_total_bytes} bytes (at {name})"
            )


@dataclass
class _ArchiveMeter:
    """The bytes an uploaded archive's members (nested ones' members too) unpack to, and its own size."""

    name: str
    size: int
    unpacked: int = 0

    def add(self, member: str, n: int, limits: UploadLimits) -> None:
        self.unpacked += n
        if self.unpacked > limits.ratio_grace_bytes and self.unpacked > limits.max_ratio * max(
            self.size, 1
        ):
            raise _ArchiveRefused(
                f"{self.name} unpacks at a ratio above {limits.max_ratio:g} over the whole archive "
                f"(decompression bomb; at member {member!r})"
            )


def _is_zip(head: bytes) -> bool:
    # A DICOM file whose preamble happens to start with "PK" is still DICOM.
    return head[:4] in ZIP_MAGIC and head[128:132] != b"DICM"


def _read_capped(source: BinaryIO, cap: int) -> bytes | None:
    """At most ``cap`` bytes from ``source``; None when it holds more."""
    chunks, size = [], 0
    while True:
        chunk = source.read(min(_CHUNK, cap + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return None


def spool(source: BinaryIO, cap: int, head: bytes = b"", directory: str | None = None):
    """``head`` and then ``source`` copied in chunks to a temporary file, at most ``cap`` bytes in all.

    Returns the file (positioned at 0; in memory up to :data:`SPOOL_MEMORY_BYTES`,
    then on disk in ``directory``, removed when closed), or None when there are more
    than ``cap`` bytes: copying stops there.
    """
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, dir=directory)
    size = len(head)
    spooled.write(head)
    while size <= cap:
        chunk = source.read(min(_CHUNK, cap + 1 - size))
        if not chunk:
            break
        spooled.write(chunk)
        size += len(chunk)
    if size > cap:
        spooled.close()
        return None
    spooled.seek(0)
    return spooled


def iter_upload_files(
    name: str,
    data_or_fileobj,
    limits: UploadLimits | None = None,
    budget: UploadBudget | None = None,
) -> Iterator[UploadedMember]:
    """The files of one uploaded item ``name`` (bytes or a binary file object).

    A zip (recognised by its magic bytes, whatever the extension) yields its
    members as ``"name/member"``, a zip inside it likewise (up to
    ``limits.max_zip_depth`` levels); anything else yields itself, for the DICOM
    check to judge. Directory entries are left out; OS junk (``__MACOSX/``,
    ``.DS_Store``, ``Thumbs.db``, AppleDouble ``._*``) and DICOMDIR are yielded as
    skipped. A refused archive yields one rejected member named after the
    archive; members already yielded from it must then be discarded with it (the
    ingest refuses the whole upload anyway). ``budget`` is the upload's
    :class:`UploadBudget` (a fresh one when not given). Never raises on bad input.
    """
    budget = budget or UploadBudget(limits or UploadLimits())
    limits = budget.limits
    skip = _skip_reason(name)
    if skip:
        yield UploadedMember(name, reason=skip, skipped=True)
        return
    spooled = None
    try:
        source, head, seekable = _open_source(data_or_fileobj)
        if _is_zip(head):
            if seekable:
                archive_source = source
            else:
                archive_source = spooled = spool(source, limits.max_total_bytes, head)
                if spooled is None:
                    yield UploadedMember(
                        name, reason=f"archive refused: larger than {limits.max_total_bytes} bytes"
                    )
                    return
            archive_source.seek(0, io.SEEK_END)
            meter = _ArchiveMeter(name, archive_source.tell())
            archive_source.seek(0)
        else:
            rest = _read_capped(source, max(0, limits.max_file_bytes - len(head)))
            if rest is None or len(head) > limits.max_file_bytes:
                yield UploadedMember(
                    name, reason=f"the file is larger than {limits.max_file_bytes} bytes"
                )
                return
            budget.count_member(name)
            budget.add(name, len(head) + len(rest))
            yield UploadedMember(name, data=head + rest)
            return
    except _ArchiveRefused as refused:
        yield UploadedMember(name, reason=refused.reason)
        return
    except Exception as exc:
        yield UploadedMember(name, reason=f"the upload could not be read ({type(exc).__name__})")
        return
    try:
        yield from _iter_zip(name, archive_source, budget, meter, depth=0)
    except _ArchiveRefused as refused:
        yield UploadedMember(name, reason=f"archive refused: {refused.reason}")
    finally:
        if spooled is not None:
            spooled.close()


def _open_source(data_or_fileobj) -> tuple[BinaryIO, bytes, bool]:
    """The source positioned after its first 132 bytes, those bytes, and whether it can seek."""
    seekable = True
    if isinstance(data_or_fileobj, (bytes, bytearray, memoryview)):
        source: BinaryIO = io.BytesIO(bytes(data_or_fileobj))
    else:
        source = data_or_fileobj
        try:
            source.seek(0)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            seekable = False  # a stream: read from where it is
    head = b""
    while len(head) < 132:
        chunk = source.read(132 - len(head))
        if not chunk:
            break
        head += chunk
    return source, head, seekable


def _skip_reason(path: str) -> str | None:
    parts = [p for p in re.split(r"[\\/]", path) if p]
    if not parts:
        return None
    base = parts[-1]
    if any(p == "__MACOSX" for p in parts) or base.lower() in _JUNK_NAMES or base.startswith("._"):
        return "skipped: operating-system metadata, not an image"
    if base.upper() == "DICOMDIR":
        return "skipped: DICOMDIR is a media directory, not an image"
    return None


def _unsafe_path(member: str) -> str | None:
    if "\x00" in member:
        return "has a NUL character in its name"
    if member.startswith(("/", "\\")) or _DRIVE.match(member):
        return "has an absolute path"
    if any(part == ".." for part in re.split(r"[\\/]", member)):
        return "has a path outside the archive (path traversal)"
    return None


def _check_entries(
    archive: str, infos: list[zipfile.ZipInfo], budget: UploadBudget, meter: _ArchiveMeter
) -> None:
    """Refusals decidable from the central directory, before anything is decompressed."""
    limits = budget.limits
    files = [i for i in infos if not i.is_dir()]
    if len(files) + budget.members > limits.max_members:
        raise _ArchiveRefused(f"{archive} holds {len(files)} files, more than {limits.max_members}")
    for info in infos:
        where = f"member {info.filename!r}"
        problem = _unsafe_path(info.filename)
        if problem:
            raise _ArchiveRefused(f"{where} {problem}")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _ArchiveRefused(f"{where} is a symbolic link")
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise _ArchiveRefused(f"{where} is encrypted")
        if info.file_size > limits.max_file_bytes:
            raise _ArchiveRefused(
                f"{where} declares {info.file_size} bytes, more than {limits.max_file_bytes}"
            )
        if info.file_size > limits.ratio_grace_bytes and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise _ArchiveRefused(
                f"{where} declares a compression ratio above {limits.max_ratio:g} (decompression bomb)"
            )
    declared = sum(i.file_size for i in files)
    if budget.total + declared > limits.max_total_bytes:
        raise _ArchiveRefused(
            f"{archive} declares more than {limits.max_total_bytes} bytes uncompressed"
        )
    unpacked = meter.unpacked + declared
    if unpacked > limits.ratio_grace_bytes and unpacked > limits.max_ratio * max(meter.size, 1):
        raise _ArchiveRefused(
            f"{archive} declares a compression ratio above {limits.max_ratio:g} over the whole archive "
            f"(decompression bomb)"
        )


def _extract(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    display: str,
    budget: UploadBudget,
    meter: _ArchiveMeter,
) -> bytes:
    """A member's bytes, decompressed in chunks under the size and ratio limits (member and archive)."""
    limits = budget.limits
    chunks, size = [], 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            budget.add(display, len(chunk))
            meter.add(info.filename, len(chunk), limits)
            if size > limits.max_file_bytes:
                raise _ArchiveRefused(
                    f"member {info.filename!r} unpacks to more than {limits.max_file_bytes} bytes"
                )
            if size > limits.ratio_grace_bytes and size > limits.max_ratio * max(
                info.compress_size, 1
            ):
                raise _ArchiveRefused(
                    f"member {info.filename!r} unpacks at a ratio above {limits.max_ratio:g} (decompression bomb)"
                )
            chunks.append(chunk)
    return b"".join(chunks)


def _iter_zip(
    display: str, source: BinaryIO, budget: UploadBudget, meter: _ArchiveMeter, depth: int
) -> Iterator[UploadedMember]:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise _ArchiveRefused(
            f"{display} is not a readable zip archive ({type(exc).__name__})"
        ) from None
    with archive:
        infos = archive.infolist()
        _check_entries(display, infos, budget, meter)
        for info in infos:
            if info.is_dir():
                continue
            member_name = f"{display}/{info.filename}"
            skip = _skip_reason(info.filename)
            if skip:
                yield UploadedMember(member_name, reason=skip, skipped=True)
                continue
            budget.count_member(member_name)
            try:
                data = _extract(archive, info, member_name, budget, meter)
            except _ArchiveRefused:
                raise
            except NotImplementedError:
                raise _ArchiveRefused(
                    f"member {info.filename!r} uses an unsupported compression method"
                ) from None
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
                raise _ArchiveRefused(
                    f"member {info.filename!r} is damaged ({type(exc).__name__})"
                ) from None
            if _is_zip(data[:132]):
                if depth + 1 > budget.limits.max_zip_depth:
                    raise _ArchiveRefused(
                        f"member {info.filename!r} is an archive nested more than "
                        f"{budget.limits.max_zip_depth} level(s) deep"
                    )
                budget.members -= 1  # the inner archive is a container, not a file
                budget.total -= len(data)  # its members are counted instead
                meter.unpacked -= len(data)
                yield from _iter_zip(member_name, io.BytesIO(data), budget, meter, depth + 1)
                continue
            yield UploadedMember(member_name, data=data)
