"""The imaging archive: Patient / Study / Series / Instance, and the uploads that filled it."""

import io
import threading
import time

import numpy as np
import pydicom
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from portal.roles import MANAGE_STUDIES, VIEW_ALL_STUDIES, can

from . import hooks
from .vocabulary import PHASE_LABELS, PHASES, UNKNOWN_PHASE


class Sex(models.TextChoices):
    FEMALE = "F", "female"
    MALE = "M", "male"
    OTHER = "O", "other"
    UNKNOWN = "", "unknown"


# The contrast phases of archive.vocabulary (members NC, CM, NG, EX), and UNKNOWN for a series
# whose phase could not be told.
Phase = models.TextChoices(
    "Phase",
    [(phase, (phase, PHASE_LABELS[phase])) for phase in PHASES]
    + [("UNKNOWN", (UNKNOWN_PHASE, "unknown"))],
)


class PhaseSource(models.TextChoices):
    AUTOMATIC = "automatic", "classified from the DICOM attributes"
    MANUAL = "manual", "set by a person"


class Patient(models.Model):
    patient_id = models.CharField("pseudonymous PatientID", max_length=64, unique=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True, default=Sex.UNKNOWN)
    age_years = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "portal_patient"  # the table of the portal app, where the model began

    def __str__(self):
        return self.patient_id


class StudyQuerySet(models.QuerySet):
    def _visible_filter(self, user):
        """Studies ``user`` uploaded first, or that a rule of an app above adds (:mod:`archive.hooks`)."""
        rule = Q(created_by=user)
        extra = hooks.extra_visible_studies(user)
        return rule if extra is None else rule | extra

    def visible_to(self, user):
        """The studies ``user`` may open: all for coordinators/admins, else those they created and assigned ones.

        "Created" is the study's :attr:`Study.created_by` (who uploaded it first), a
        column of the study itself: adding a slice to a study makes nobody its reader.
        Assigned studies come from the visibility rules of :mod:`archive.hooks`
        (annotations: the cases of the reader studies the user reads).
        """
        if not user.is_authenticated:
            return self.none()
        if can(user, VIEW_ALL_STUDIES):
            return self
        extra = hooks.extra_visible_studies(user)
        if extra is None:
            return self.filter(created_by=user)
        assigned = self.model.objects.filter(extra).values("pk")
        return self.filter(Q(created_by=user) | Q(pk__in=assigned))

    def is_visible_to(self, user, study_id):
        """Whether ``user`` may open the study with primary key ``study_id`` (one cheap query at most).

        Same rule as :meth:`visible_to`. A "yes" is remembered per process for
        :data:`ACCESS_CACHE_SECONDS` (see :class:`AccessCache`); a "no" is never
        remembered, so newly granted access shows at once.
        """
        if not user.is_authenticated:
            return False
        if can(user, VIEW_ALL_STUDIES):
            return True
        key = (user.pk, study_id)
        if access_cache.get_visible(key):
            return True
        visible = self.filter(self._visible_filter(user), pk=study_id).exists()
        if visible:
            access_cache.set_visible(key)
        return visible


# How long a process may reuse what it learned about a user's access: the user a
# DRF token belongs to (with that user object's permission cache) and "user U may
# see study S". Revocation (token deleted, user deactivated, role or permission
# changed, reader removed from a reader study) is seen at once by the process that
# made the change (signals below clear the cache) and by every other process
# (gunicorn workers) within this many seconds. 0 turns the cache off.
ACCESS_CACHE_SECONDS = 30


class AccessCache:
    """A small per-process, time-limited cache of authentication and study visibility.

    Only positive answers are kept: an unknown token or an invisible study is asked
    of the database every time.
    """

    max_entries = 10_000

    def __init__(self):
        self._lock = threading.Lock()
        self._tokens = {}
        self._visible = {}

    @staticmethod
    def _ttl():
        return getattr(settings, "ACCESS_CACHE_SECONDS", ACCESS_CACHE_SECONDS)

    def _get(self, table, key):
        entry = table.get(key)
        if entry is None:
            return None
        expires, value = entry
        if time.monotonic() >= expires:
            table.pop(key, None)
            return None
        return value

    def _set(self, table, key, value):
        ttl = self._ttl()
        if ttl <= 0:
            return
        with self._lock:
            if len(table) >= self.max_entries:
                table.clear()
            table[key] = (time.monotonic() + ttl, value)

    def get_token(self, key):
        return self._get(self._tokens, key)

    def set_token(self, key, value):
        self._set(self._tokens, key, value)

    def get_visible(self, key):
        return self._get(self._visible, key)

    def set_visible(self, key):
        self._set(self._visible, key, True)

    def clear(self, *args, **kwargs):
        with self._lock:
            self._tokens.clear()
            self._visible.clear()


access_cache = AccessCache()


class Study(models.Model):
    study_instance_uid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_date = models.DateField(null=True, blank=True)
    study_time = models.CharField(max_length=16, blank=True)
    study_id = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="who uploaded the study's first instances: sees it by upload and may add to it",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        db_table = "portal_study"  # the table of the portal app, where the model began
        verbose_name_plural = "studies"

    def __str__(self):
        return f"{self.patient} {self.study_date or ''} {self.study_instance_uid}"


def may_add_to_study(user, created_by_id):
    """Whether ``user`` may add instances or series to the study created by ``created_by_id``.

    Its creator may, and whoever may manage studies; the rule needs only the creator's id
    (the one column ingest reads of a stored study).
    """
    if user is None or not user.is_authenticated:
        return False
    return can(user, MANAGE_STUDIES) or (created_by_id is not None and created_by_id == user.pk)


class Series(models.Model):
    series_instance_uid = models.CharField(max_length=64, unique=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=16)
    series_number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=64, blank=True)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True)
    acquisition_time = models.CharField(max_length=16, blank=True)
    contrast_bolus_agent = models.CharField(max_length=64, blank=True)
    contrast_bolus_start_time = models.CharField(max_length=16, blank=True)
    phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.UNKNOWN)
    phase_source = models.CharField(
        max_length=10, choices=PhaseSource.choices, default=PhaseSource.AUTOMATIC
    )
    phase_reason = models.CharField(max_length=200, blank=True)
    automatic_phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.UNKNOWN)
    phase_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    phase_set_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "portal_series"  # the table of the portal app, where the model began
        verbose_name_plural = "series"
        ordering = ["series_number", "id"]

    def __str__(self):
        return f"{self.series_number} {self.phase} {self.series_instance_uid}"

    def set_phase_manually(self, phase, user):
        """A person's phase override; kept by later automatic re-classification, and audited.

        Every override is an AuditEvent (``phase`` and ``phase_source`` as [old, new]), so
        the series' history of phases stays readable after the next override.
        """
        with transaction.atomic():
            before = {"phase": self.phase, "phase_source": self.phase_source}
            self.phase = phase
            self.phase_source = PhaseSource.MANUAL
            self.phase_reason = f"set by {user.get_username()}"
            self.phase_set_by = user
            self.phase_set_at = timezone.now()
            self.save(
                update_fields=[
                    "phase",
                    "phase_source",
                    "phase_reason",
                    "phase_set_by",
                    "phase_set_at",
                ]
            )
            changes = {name: [old, getattr(self, name)] for name, old in before.items()}
            hooks.record(user, "update", self, changes)


class UploadStatus(models.TextChoices):
    STORED = "stored", "stored"
    DUPLICATE = "duplicate", "nothing new (all duplicates)"
    REJECTED = "rejected", "rejected, nothing stored"


class Upload(models.Model):
    """One upload (browser, REST or STOW-RS) and its per-file report."""

    class Channel(models.TextChoices):
        BROWSER = "browser", "browser"
        REST = "rest", "REST API"
        STOW = "stow", "DICOMweb STOW-RS"
        COMMAND = "command", "command line"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploads"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=UploadStatus.choices)
    deidentify = models.BooleanField(default=False)
    n_stored = models.PositiveIntegerField(default=0)
    n_duplicate = models.PositiveIntegerField(default=0)
    n_rejected = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "portal_upload"  # the table of the portal app, where the model began
        ordering = ["-created_at"]


class Instance(models.Model):
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    upload = models.ForeignKey(
        Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="instances"
    )
    instance_number = models.IntegerField(null=True, blank=True)
    image_position_patient = models.JSONField(null=True, blank=True)
    image_orientation_patient = models.JSONField(null=True, blank=True)
    slice_position = models.FloatField(
        null=True, blank=True, help_text="IPP projected on the slice normal (mm)"
    )
    pixel_spacing = models.JSONField(null=True, blank=True)
    slice_thickness = models.FloatField(null=True, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    number_of_frames = models.PositiveIntegerField(default=1)
    rescale_intercept = models.FloatField(default=0.0)
    rescale_slope = models.FloatField(default=1.0)
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64)
    acquisition_time = models.CharField(max_length=16, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    file = models.FileField(max_length=200)
    size_bytes = models.PositiveBigIntegerField()
    metadata = models.JSONField(
        help_text="DICOM JSON (PS3.18 F.2) without the pixel data, for WADO-RS metadata"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "portal_instance"  # the table of the portal app, where the model began
        ordering = ["slice_position", "instance_number", "id"]
        indexes = [
            models.Index(fields=["series", "slice_position"], name="portal_inst_series__1a3327_idx")
        ]

    def __str__(self):
        return self.sop_instance_uid

    def pixels_hu(self):
        """The stored image in Hounsfield units (float32; frames first for a multi-frame instance).

        The stored pixel values through this row's RescaleSlope and RescaleIntercept, as
        ingest indexed them (also from an Enhanced CT's functional groups).
        """
        with self.file.open("rb") as handle:
            ds = pydicom.dcmread(io.BytesIO(handle.read()))
        return ds.pixel_array.astype(np.float32) * float(self.rescale_slope or 1.0) + float(
            self.rescale_intercept or 0.0
        )


def clear_access_cache(sender=None, **kwargs):
    """Forget every remembered token and study visibility of this process (a signal receiver)."""
    access_cache.clear()


# What can revoke access: a token, user, group or permission changed or deleted, a
# role or permission granted or taken, a reader or case removed from a reader study,
# an upload or study deleted. Each of these drops what this process remembers
# (creating uploads and studies grants, never revokes: not a reason). The apps above connect
# their own senders to :func:`clear_access_cache` (annotations: its reader studies).
# (Senders are named, not global: a global post_delete receiver would turn off
# Django's fast deletes for every model.)
for _sender in (
    settings.AUTH_USER_MODEL,
    "auth.Group",
    "auth.Permission",
    "knox.AuthToken",
):
    post_save.connect(
        clear_access_cache, sender=_sender, dispatch_uid=f"archive.access_cache.save.{_sender}"
    )
for _sender in (
    settings.AUTH_USER_MODEL,
    "auth.Group",
    "auth.Permission",
    "knox.AuthToken",
    "archive.Upload",
    "archive.Study",
):
    post_delete.connect(
        clear_access_cache, sender=_sender, dispatch_uid=f"archive.access_cache.delete.{_sender}"
    )
for _sender in (
    "auth.User_groups",
    "auth.User_user_permissions",
    "auth.Group_permissions",
):
    m2m_changed.connect(
        clear_access_cache, sender=_sender, dispatch_uid=f"archive.access_cache.m2m.{_sender}"
    )
