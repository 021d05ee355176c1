"""Where the time of one request goes, per path of ``benchmarks/ingest.py`` (cProfile, in process).

Runs the portal's WSGI application in this process (DEBUG off, a fresh SQLite
database and media folder in a temp folder, a reader with a DRF token), stores one
4-phase study and profiles ``--requests`` requests of each path, as the benchmark's
client sends them. Prints milliseconds per request and the top functions by
cumulative and by own time. No network and no Orthanc: this is for finding the
lever, ``benchmarks/ingest.py`` for the figure.

    .venv/bin/python benchmarks/profile_requests.py                 # every path
    .venv/bin/python benchmarks/profile_requests.py --path frames --top 25
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

PATHS = (
    "rest-single",
    "rest-batched",
    "stow",
    "qido-studies",
    "qido-instances",
    "metadata",
    "frames",
    "instances",
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--path", choices=PATHS, action="append", help="profile only these paths (repeatable)"
    )
    parser.add_argument("--requests", type=int, default=64, help="requests per path (default 64)")
    parser.add_argument("--size", type=int, default=512, help="Rows = Columns (default 512)")
    parser.add_argument("--top", type=int, default=15, help="lines per table (default 15)")
    parser.add_argument(
        "--timing-only", action="store_true", help="no profiler: milliseconds per request only"
    )
    parser.add_argument(
        "--database-url", default=None, help="DATABASE_URL (default: a fresh SQLite file)"
    )
    return parser.parse_args(argv)


def setup(workdir, database_url):
    os.environ.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(40),
        DEID_SECRET=secrets.token_urlsafe(40),
        VAR_DIR=str(workdir),
        MEDIA_ROOT=str(workdir / "media"),
        DATABASE_URL=database_url or f"sqlite:///{workdir / 'portal.sqlite3'}",
        DJANGO_SETTINGS_MODULE="portal.settings",
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="testserver",
    )
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth.models import Group, User

    from portal.authentication import issue_token
    from portal.roles import READER, ensure_roles

    ensure_roles()
    user = User.objects.create_user(
        f"profile-{secrets.token_hex(4)}", password=secrets.token_urlsafe(16)
    )
    user.groups.add(Group.objects.get(name=READER))
    return issue_token(user)


def fresh_study(size, slices):
    """(study UID, datasets, Part 10 bytes) of a new 4-phase study with its own UIDs."""
    from pydicom.uid import generate_uid

    from tests.factories.dicom import dataset_bytes, make_ct_study

    study = make_ct_study(n=slices, Rows=size, Columns=size)
    datasets = [ds for series in study.values() for ds in series]
    study_uid = generate_uid()
    for series in study.values():
        series_uid = generate_uid()
        for ds in series:
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
                study_uid,
                series_uid,
                generate_uid(),
            )
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return study_uid, datasets, [dataset_bytes(ds) for ds in datasets]


def multipart(parts, content_type):
    boundary = secrets.token_hex(8)
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + part + b"\r\n"
            for part in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    return body, f'multipart/related; type="{content_type}"; boundary={boundary}'


def requests_for(path, client, headers, n, size):
    """A list of zero-argument calls, each one request of ``path`` as the benchmark sends it."""
    from django.test.client import encode_multipart

    calls = []
    if path in ("rest-single", "rest-batched", "stow"):
        per_request = {"rest-single": 1, "rest-batched": 16, "stow": 32}[path]
        _, _, files = fresh_study(size, max(1, n * per_request // 4))
        chunks = [files[i : i + per_request] for i in range(0, len(files), per_request)][:n]
        for chunk in chunks:
            if path == "stow":
                body, content_type = multipart(chunk, "application/dicom")
                url = "/dicomweb/studies"
            elif path == "rest-single":  # the file as the body, as benchmarks/ingest.py sends it
                body, content_type, url = chunk[0], "application/dicom", "/api/v1/uploads/"
            else:
                boundary = secrets.token_hex(8)
                body = encode_multipart(
                    boundary, {"files": [_named(i, data) for i, data in enumerate(chunk)]}
                )
                content_type, url = f"multipart/form-data; boundary={boundary}", "/api/v1/uploads/"

            def call(body=body, content_type=content_type, url=url):
                response = client.generic("POST", url, body, content_type=content_type, **headers)
                assert response.status_code in (200, 201), (
                    response.status_code,
                    response.content[:300],
                )

            calls.append(call)
        return calls
    study_uid, datasets, _ = REFERENCE
    series_uid = str(datasets[0].SeriesInstanceUID)
    url = {
        "qido-studies": "/dicomweb/studies",
        "qido-instances": f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances",
        "metadata": f"/dicomweb/studies/{study_uid}/series/{series_uid}/metadata",
    }.get(path)
    for i in range(n):
        ds = datasets[i % len(datasets)]
        target = (
            url
            or f"/dicomweb/studies/{study_uid}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
        )
        accept = "application/dicom+json"
        if path == "frames":
            target += "/frames/1"
            accept = 'multipart/related; type="application/octet-stream"'
        elif path == "instances":
            accept = 'multipart/related; type="application/dicom"'

        def call(target=target, accept=accept):
            response = client.get(target, HTTP_ACCEPT=accept, **headers)
            assert response.status_code == 200, (response.status_code, response.content[:300])
            b"".join(response.streaming_content) if response.streaming else response.content

        calls.append(call)
    return calls


def _named(i, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(f"IM{i:04d}.dcm", data, content_type="application/dicom")


REFERENCE = None


def main(argv=None):
    global REFERENCE
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="profile-requests-") as tmp:
        token = setup(Path(tmp), args.database_url)
        from django.test import Client

        from archive.ingest import ingest_upload
        from archive.models import Upload

        client = Client()
        headers = {"HTTP_AUTHORIZATION": f"Token {token}", "HTTP_ACCEPT_ENCODING": "identity"}
        REFERENCE = fresh_study(args.size, 16)
        from django.contrib.auth.models import User

        user = User.objects.get(auth_token__key=token)
        ingest_upload(
            [(f"{i}.dcm", data) for i, data in enumerate(REFERENCE[2])],
            user,
            channel=Upload.Channel.REST,
        )
        client.get(
            "/dicomweb/studies", **headers
        )  # imports the URLconf and views, as a warm server has
        for path in args.path or PATHS:
            calls = requests_for(path, client, headers, args.requests, args.size)
            if path not in ("rest-single", "rest-batched", "stow"):
                calls[0]()  # warm caches once, as the benchmark does
            profiler = cProfile.Profile()
            start = time.perf_counter()
            if not args.timing_only:
                profiler.enable()
            for call in calls:
                call()
            profiler.disable()
            elapsed = time.perf_counter() - start
            kind = "not profiled" if args.timing_only else "profiled"
            print(
                f"\n=== {path}: {len(calls)} requests, {1000 * elapsed / len(calls):.2f} ms/request ({kind})",
                flush=True,
            )
            if args.timing_only:
                continue
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(
                    args.top
                )
                table = out.getvalue()
                print(f"--- by {order}")
                print(table[table.index("   ncalls") :].rstrip())


if __name__ == "__main__":
    main()
