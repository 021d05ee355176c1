"""The archive in an S3-compatible object store (AWS S3, MinIO, Ceph RGW): :class:`S3Storage`.

django-storages' S3Storage, with the two properties that ingest and ``verify_archive``
rely on from a local folder:

- **A name is written once.** Every write is a conditional PutObject with
  ``If-None-Match: *``: when the key exists the store answers 412 Precondition Failed
  and the write raises FileExistsError, as ``open(path, "xb")`` does, leaving the object
  there as it is; a 409 ConditionalRequestConflict (another conditional write of the key
  under way) is retried (AWS S3 conditional writes:
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html; MinIO
  honours the header since 2024, minio/minio#20346). The plain S3Storage overwrites an
  existing key (AWS_S3_FILE_OVERWRITE=True, its default) or, with
  AWS_S3_FILE_OVERWRITE=False, stores the file under another, suffixed name after a HEAD
  request: neither is safe for two uploads of the same instance at once. Here the name is
  never changed (the instance's content address) and only the store decides who wrote it
  first.
- **Errors are OSErrors**, as they are from a disk: FileNotFoundError for a missing key
  (404), PermissionError for a refused request (403), OSError for any other answer and
  for a store that cannot be reached. Ingest's clean-up after a failed upload and
  ``verify_archive`` handle every storage the same way.

One PutObject per file: S3 takes up to 5 GB in a single PUT, more than an instance
(UPLOAD_MAX_FILE_MB) or a model file. (s3transfer's managed upload, which the plain
class uses, does not pass If-None-Match on.)
"""

import contextlib
import errno
import itertools
import time

from botocore.exceptions import BotoCoreError, ClientError
from storages.backends import s3
from storages.utils import clean_name, get_available_overwrite_name

# Attempts of a write that another conditional write of the same key holds up (409).
CONFLICT_ATTEMPTS = 3


class StorageError(OSError):
    """The object store refused a request or could not be reached (the message says which and why)."""


def _os_error(error, key):
    """The OSError that stands for ``error`` (botocore's) on object ``key``."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code", "")
        answer = f"{status} {code}" if code and code != str(status) else str(status)
        message = f"object storage answered {answer} for {key}"
        if status == 404:
            return FileNotFoundError(errno.ENOENT, message)
        if status == 403:
            return PermissionError(errno.EACCES, message)
        return StorageError(errno.EIO, message)
    return StorageError(errno.EIO, f"object storage could not be reached for {key}: {error}")


@contextlib.contextmanager
def _translated(key):
    """Raise botocore's errors inside the block as :func:`_os_error` of ``key``."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise _os_error(error, key) from error


class S3File(s3.S3File):
    """An object opened for reading; the download happens on the first read, its errors as OSErrors."""

    def _get_file(self):
        with _translated(self.obj.key):
            return super()._get_file()

    file = property(_get_file, s3.S3File._set_file)


class S3Storage(s3.S3Storage):
    """S3Storage that never overwrites an object and reports every error as an OSError (module docstring)."""

    def get_available_name(self, name, max_length=None):
        # The name is kept as asked: the conditional write refuses it when it is taken.
        return get_available_overwrite_name(clean_name(name), max_length)

    def _open(self, name, mode="rb"):
        key = self._normalize_name(clean_name(name))
        with _translated(key):
            return S3File(key, mode, self)

    def _save(self, name, content):
        cleaned = clean_name(name)
        key = self._normalize_name(cleaned)
        params = self._get_write_parameters(key, content)
        for attempt in itertools.count(1):
            if hasattr(content, "seek"):
                content.seek(0)
            try:
                self.connection.meta.client.put_object(
                    Bucket=self.bucket_name, Key=key, Body=content, IfNoneMatch="*", **params
                )
                return cleaned
            except ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 412:
                    raise FileExistsError(
                        errno.EEXIST, f"{key} is in the object store already"
                    ) from None
                # 409 ConditionalRequestConflict: another conditional write of this key is under way.
                if status != 409 or attempt == CONFLICT_ATTEMPTS:
                    raise _os_error(error, key) from error
            except BotoCoreError as error:
                raise _os_error(error, key) from error
            time.sleep(0.1 * attempt)

    def delete(self, name):
        with _translated(name):
            super().delete(name)

    def exists(self, name):
        with _translated(name):
            return super().exists(name)

    def listdir(self, name):
        with _translated(name):
            return super().listdir(name)

    def size(self, name):
        with _translated(name):
            return super().size(name)

    def get_modified_time(self, name):
        with _translated(name):
            return super().get_modified_time(name)
