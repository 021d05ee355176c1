"""An S3-compatible object store for tests: moto's standalone server, one per test module.

``moto_server`` (moto[server], pinned in requirements.txt) speaks the S3 REST API on a
free port of 127.0.0.1; the portal talks to it through django-storages' S3Storage and
boto3 exactly as it would to AWS S3 or MinIO. Authorisation is off until a test turns
it on (``ObjectStore.enforce_policy``): then moto checks every request against the IAM
policies of the portal's access key, which is how a test makes the store refuse one write.
"""

import contextlib
import json
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from archive.object_storage import S3Storage
from benchmarks.processes import Processes, free_port, wait_for_http

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
REGION = "us-east-1"


@dataclass
class ObjectStore:
    """A running moto server, its bucket and the portal's settings for it."""

    endpoint_url: str
    bucket: str
    access_key: str = "testing"
    secret_key: str = "testing"

    def client(self):
        """A boto3 S3 client with the store's current key (the test's own view of the bucket)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def read(self, key):
        """The bytes of object ``key``."""
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def settings(self):
        """The settings (and environment variables, as strings) that point the portal at this bucket."""
        return {
            "STORAGE_BACKEND": "archive.object_storage.S3Storage",
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def keys(self, prefix=""):
        """Every object key in the bucket under ``prefix`` (sorted), read with boto3 directly."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ()))

    def empty(self):
        client = self.client()
        for key in self.keys():
            client.delete_object(Bucket=self.bucket, Key=key)

    def enforce_policy(self, statements):
        """From now on moto authorises every request: the portal gets a new IAM user with ``statements``.

        The portal's settings are switched to that user's key (use :meth:`settings` again).
        Undo with :meth:`stop_enforcing`.
        """
        iam = _iam_client(self.endpoint_url)
        user = f"portal-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=user)
        iam.put_user_policy(
            UserName=user,
            PolicyName="portal",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        _set_auth(self.endpoint_url, "0")

    def stop_enforcing(self):
        _set_auth(self.endpoint_url, "inf")
        self.access_key, self.secret_key = "testing", "testing"


def _iam_client(endpoint_url):
    import boto3

    return boto3.client(
        "iam",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _set_auth(endpoint_url, initial_no_auth_action_count):
    # moto's control endpoint: after this many unauthenticated requests ("inf": never) IAM is enforced.
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth",
        method="POST",
        data=initial_no_auth_action_count.encode(),
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=10).read()


@contextlib.contextmanager
def running_object_store(workdir):
    """Start ``moto_server`` on a free port with one empty bucket; stop it on exit."""
    processes = Processes()
    port = free_port()
    log = Path(workdir) / "moto.log"
    try:
        child = processes.start([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], log)
        store = ObjectStore(endpoint_url=f"http://127.0.0.1:{port}", bucket="portal-media")
        wait_for_http(f"{store.endpoint_url}/moto-api/data.json", child, log, timeout=60)
        store.client().create_bucket(Bucket=store.bucket)
        yield store
    finally:
        processes.stop_all()


@pytest.fixture(scope="module")
def object_store(tmp_path_factory):
    """A moto S3 server for the test module."""
    with running_object_store(tmp_path_factory.mktemp("moto")) as store:
        yield store


@pytest.fixture
def s3_storage(object_store, settings):
    """The portal's default storage is the test bucket (emptied before the test) for this test."""
    object_store.empty()
    yield use_object_store(object_store, settings)
    object_store.stop_enforcing()


def use_object_store(store, settings):
    """Point the portal's settings (and so ``default_storage``) at ``store``'s bucket with its current key."""
    values = store.settings()
    for name, value in values.items():
        if name.startswith("AWS_"):
            setattr(settings, name, value)
    # Assigning STORAGES last: Django's setting_changed handler drops the cached default_storage,
    # and the next use builds an S3Storage that reads the AWS_* values above.
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": values["STORAGE_BACKEND"]}}
    return store


class PausingS3Storage(S3Storage):
    """The portal's S3 storage that calls ``pause(name)`` just ``before`` or ``after`` it writes an object.

    For a test that puts two uploads of the same file in a given order (the class
    attributes are shared by every thread).
    """

    pause = None
    stage = "after"

    def _save(self, name, content):
        pause, stage = PausingS3Storage.pause, PausingS3Storage.stage
        if pause is not None and stage == "before":
            pause(name)
        saved = super()._save(name, content)
        if pause is not None and stage == "after":
            pause(saved)
        return saved
