"""Is the archive whole? Every Instance's file is in storage with its SHA-256, and no file lacks a row.

Ingest stores each instance under its content address (``ingest.storage_name``) and
records the SHA-256 of the stored bytes in ``Instance.sha256``; this module reads every
file back and compares. Files under ``instances/`` that no Instance names are listed,
never deleted: whether they are leftovers or the rows are what was lost is for a person
to decide (e.g. after restoring a database backup older than the media backup).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.files.storage import default_storage
from django.utils import timezone

from .models import Instance

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Finding:
    """One thing wrong: ``kind`` is ``missing``, ``unreadable``, ``corrupt`` or ``orphan``;
    ``name`` the storage name."""

    kind: str
    name: str
    detail: str


@dataclass
class ArchiveReport:
    """What :func:`verify_archive` found: instances checked and every :class:`Finding`."""

    instances: int = 0
    findings: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.findings

    def count(self, kind):
        return sum(1 for finding in self.findings if finding.kind == kind)

    @property
    def intact(self):
        """Instances whose file is there with the recorded SHA-256."""
        return self.instances - sum(1 for finding in self.findings if finding.kind != "orphan")


def file_sha256(name, storage=default_storage):
    """The SHA-256 (hex) of the stored file ``name``, read in chunks."""
    digest = hashlib.sha256()
    with storage.open(name, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stored_names(folder="instances", storage=default_storage):
    """Every file name under ``folder`` of ``storage``, recursively (sorted)."""
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return []
    names = [f"{folder}/{name}" for name in files]
    for sub in folders:
        names += stored_names(f"{folder}/{sub}", storage)
    return sorted(names)


def verify_archive(storage=default_storage, on_instance=None):
    """Check every Instance's file (exists, SHA-256 matches) and list files without a row.

    ``on_instance`` (optional) is called after each instance, e.g. for progress.
    Returns an :class:`ArchiveReport`; nothing is changed or deleted.
    """
    report = ArchiveReport()
    named = set()
    rows = Instance.objects.order_by("id").values_list("sop_instance_uid", "file", "sha256")
    for sop_instance_uid, name, sha256 in rows.iterator(chunk_size=2000):
        report.instances += 1
        named.add(name)
        try:
            found = file_sha256(name, storage)
        except FileNotFoundError:
            report.findings.append(
                Finding(
                    "missing",
                    name,
                    f"SOPInstanceUID {sop_instance_uid}: the file is not in storage",
                )
            )
        except OSError as error:
            report.findings.append(
                Finding(
                    "unreadable",
                    name,
                    f"SOPInstanceUID {sop_instance_uid}: {error.strerror or type(error).__name__}",
                )
            )
        else:
            if found != sha256:
                report.findings.append(
                    Finding(
                        "corrupt",
                        name,
                        f"SOPInstanceUID {sop_instance_uid}: SHA-256 is {found}, the archive recorded {sha256}",
                    )
                )
        if on_instance is not None:
            on_instance(report.instances)
    for name in stored_names(storage=storage):
        if name not in named:
            detail = (
                "an upload interrupted while writing this file left it (left in place)"
                if name.endswith(".incoming")
                else "no Instance names this file (left in place)"
            )
            report.findings.append(Finding("orphan", name, detail))
    return report


def remove_orphans(report, older_than_minutes=60, storage=default_storage, now=None):
    """Delete the ``orphan`` files of ``report`` last changed more than ``older_than_minutes`` ago.

    What a killed upload leaves behind (its files are written before its rows are
    committed, so a worker killed in between leaves files without rows). The age
    spares the files of an upload being stored right now. Removed findings leave
    ``report``; returns their names. Only on an operator's request (``verify_archive
    --remove-orphans``): after restoring a database older than the media, the files
    are the data, so look at the list first.
    """
    now = now or timezone.now()
    removed = []
    for finding in list(report.findings):
        if finding.kind != "orphan":
            continue
        if now - storage.get_modified_time(finding.name) < timedelta(minutes=older_than_minutes):
            continue
        storage.delete(finding.name)
        report.findings.remove(finding)
        removed.append(finding.name)
    return removed
