"""Request bodies are bounded: refused by Content-Length before they are read; uploads have their own cap."""

import io

import pytest
from django.test.client import ClientHandler

from archive.models import Instance
from tests.factories.dicom import dataset_bytes, make_ct_series

MB = 1024 * 1024


class CountingBody(io.RawIOBase):
    """A request body of ``size`` bytes made up as it is read; ``read_bytes`` says how much was read."""

    def __init__(self, size):
        self.size, self.read_bytes = size, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"a" * n
        self.read_bytes += n
        return n


def send(path, size, content_type, **headers):
    """POST a made-up body of ``size`` bytes through the whole middleware stack; (status, bytes read)."""
    body = CountingBody(size)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(size),
        "CONTENT_TYPE": content_type,
        **headers,
    }
    response = ClientHandler(enforce_csrf_checks=True)(environ)
    return response.status_code, body.read_bytes


def stow_body(datasets, boundary="b0undary"):
    return (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + dataset_bytes(ds)
            + b"\r\n"
            for ds in datasets
        )
        + f"--{boundary}--\r\n".encode()
    )


STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=b0undary'


@pytest.mark.django_db
def test_a_large_post_to_the_login_page_is_refused_without_reading_the_body():
    status, read = send(
        "/accounts/login/",
        64 * MB,
        "application/x-www-form-urlencoded",
        HTTP_COOKIE="csrftoken=" + "x" * 32,
    )
    assert status == 413
    assert read == 0


@pytest.mark.django_db
def test_a_large_json_body_to_the_api_is_refused_by_its_content_length(reader, token_for):
    status, read = send(
        "/api/v1/lesions/",
        64 * MB,
        "application/json",
        HTTP_AUTHORIZATION=f"Token {token_for(reader)}",
    )
    assert status == 413 and read == 0


@pytest.mark.django_db
def test_a_stow_body_above_the_upload_total_is_refused_with_413_before_it_is_read(
    reader, token_for, settings
):
    settings.UPLOAD_MAX_TOTAL_BYTES = 2 * MB
    status, read = send(
        "/dicomweb/studies", 3 * MB, STOW_TYPE, HTTP_AUTHORIZATION=f"Token {token_for(reader)}"
    )
    assert status == 413 and read == 0
    assert not Instance.objects.exists()


@pytest.mark.django_db
def test_stow_and_the_upload_api_take_bodies_above_the_form_limit(api_client_for, reader, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000  # far below one CT slice
    client = api_client_for(reader)
    slices = make_ct_series(3, phase="NC")
    stow = client.generic(
        "POST",
        "/dicomweb/studies",
        stow_body(slices[:2]),
        content_type=STOW_TYPE,
        HTTP_ACCEPT="application/dicom+json",
    )
    assert stow.status_code == 200, stow.content
    raw = client.generic(
        "POST", "/api/v1/uploads/", dataset_bytes(slices[2]), content_type="application/dicom"
    )
    assert raw.status_code == 201, raw.json()
    assert Instance.objects.count() == 3
    too_big_form = client.generic(
        "POST", "/api/v1/lesions/", b"{" + b" " * 3000 + b"}", content_type="application/json"
    )
    assert too_big_form.status_code == 413
    assert "at most 2000" in too_big_form.json()["error"]
