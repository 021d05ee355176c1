"""Helpers that more than one archive test module drives the archive with: a DICOMweb client
on a live server, a POST to the upload API, and ``manage.py verify_archive`` run in-process."""

import io

from dicomweb_client.api import DICOMwebClient
from django.core.management import CommandError, call_command

UPLOADS_URL = "/api/v1/uploads/"


def client_for(live_server, token):
    client = DICOMwebClient(
        url=f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {token}"}
    )
    # One body per request: the test server (like any WSGI server without de-chunking) needs a length.
    client.set_chunk_size(10**9)
    return client


def post(client, files, **data):
    return client.post(UPLOADS_URL, {"files": files, **data}, format="multipart")


def verify():
    """(exit code manage.py gives, what it printed, the summary); Django exits with CommandError.returncode."""
    out = io.StringIO()
    try:
        call_command("verify_archive", stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""
