"""multipart/related bodies (RFC 2387) as DICOMweb uses them (PS3.18 8.6): read and written in chunks.

A STOW-RS request is scanned part by part in a file, never read whole; a WADO-RS answer
of a study or series is streamed file after file, in pieces of about :data:`_CHUNK` bytes.
"""

import io
import uuid

from django.core.files.storage import default_storage
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import parse_header_parameters

from .. import dicomfiles
from ..ingest import read_stored_file

_CHUNK = 1 << 18
# The most header bytes one part of a STOW-RS body may have.
_PART_HEADER_MAX = 1 << 16


def multipart_related_parts(source, content_type):
    """The parts of a ``multipart/related`` body in the seekable binary file ``source``.

    Returns ``(content type, start, end)`` per part: its content is the bytes
    ``start:end`` of ``source``. The body is scanned in chunks, never read whole.
    Raises ``ValueError`` naming what is wrong with the request.
    """
    main, params = parse_header_parameters(content_type or "")
    if main.lower() != "multipart/related":
        raise ValueError(f"Content-Type must be multipart/related, not {main or 'missing'}")
    boundary = params.get("boundary")
    if not boundary:
        raise ValueError("Content-Type multipart/related has no boundary parameter")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    offsets = _delimiter_offsets(source, delimiter)
    source.seek(0, io.SEEK_END)
    ends = offsets[1:] + [source.tell()]
    parts = []
    for offset, end in zip(offsets, ends):
        start = offset + len(delimiter)
        source.seek(start)
        head = source.read(min(end - start, _PART_HEADER_MAX))
        if head.startswith(b"--"):
            break
        header_blob, separator, _ = head.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a multipart part has no header/body separator")
        part_type = params.get("type", "")
        for line in header_blob.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                part_type = value.strip()
        parts.append((part_type, start + len(header_blob) + 4, end))
    return parts


def _delimiter_offsets(source, delimiter):
    """Where each CRLF + ``--boundary`` of ``source`` starts (a first line without the CRLF: offset -2)."""
    source.seek(0)
    offsets, tail, tail_at = (
        [],
        b"\r\n",
        -2,
    )  # tail: bytes not yet searched whole, from offset tail_at
    while True:
        chunk = source.read(_CHUNK)
        window = tail + chunk
        start = 0
        while (found := window.find(delimiter, start)) >= 0:
            offsets.append(tail_at + found)
            start = found + len(delimiter)
        if not chunk:
            return offsets
        keep = max(start, len(window) - len(delimiter) + 1)
        tail, tail_at = window[keep:], tail_at + keep


def parse_multipart_related(body, content_type):
    """Split a ``multipart/related`` body held in memory into ``(content type, bytes)`` parts."""
    parts = multipart_related_parts(io.BytesIO(body), content_type)
    return [(part_type, body[start:end]) for part_type, start, end in parts]


class PartFile(io.RawIOBase):
    """The bytes ``start:end`` of the binary file ``source`` as a seekable file (one STOW-RS part)."""

    def __init__(self, source, start, end):
        super().__init__()
        self.source, self.start, self.end, self.position = source, start, end, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, buffer):
        n = max(0, min(len(buffer), self.end - self.start - self.position))
        self.source.seek(self.start + self.position)
        data = self.source.read(n)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.end - self.start}[
            whence
        ]
        self.position = max(0, base + offset)
        return self.position

    def tell(self):
        return self.position


def _multipart_chunks(parts, part_type, boundary):
    """The body of a ``multipart/related`` response from parts given as iterables of byte strings.

    Yields pieces of about :data:`_CHUNK` bytes (a part's header goes with its first bytes).
    """
    pending, size = [], 0
    for part in parts:
        pending.append(f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode("latin-1"))
        for chunk in _then_crlf(part):
            pending.append(chunk)
            size += len(chunk)
            if size >= _CHUNK:
                yield b"".join(pending)
                pending, size = [], 0
    pending.append(f"--{boundary}--\r\n".encode("latin-1"))
    yield b"".join(pending)


def _then_crlf(chunks):
    yield from chunks
    yield b"\r\n"


def _multipart_type(part_type, boundary):
    main_type = part_type.split(";")[0]
    extra = part_type[len(main_type) :]
    return f'multipart/related; type="{main_type}"{extra}; boundary={boundary}'


def multipart_response(parts, part_type):
    """An HttpResponse ``multipart/related; type=...`` from byte strings, all of one content type."""
    boundary = uuid.uuid4().hex
    body = b"".join(_multipart_chunks(([content] for content in parts), part_type, boundary))
    return HttpResponse(body, content_type=_multipart_type(part_type, boundary))


def multipart_stream(file_names, part_type="application/dicom"):
    """A StreamingHttpResponse ``multipart/related`` of stored files, read one after another in chunks.

    Memory stays at about one chunk whatever the number of files (a study's retrieval).
    """
    boundary = uuid.uuid4().hex
    chunks = _multipart_chunks(
        (_stored_file_chunks(name) for name in file_names), part_type, boundary
    )
    return StreamingHttpResponse(chunks, content_type=_multipart_type(part_type, boundary))


def _stored_file_chunks(name):
    """The stored file ``name`` as a PS3.10 file (:func:`read_stored_file`), in chunks."""
    with default_storage.open(name, "rb") as handle:
        head = handle.read(132)
        if not dicomfiles.is_part10(head):  # stored without a preamble by an earlier version
            yield read_stored_file(name)
            return
        yield head
        while chunk := handle.read(_CHUNK):
            yield chunk
