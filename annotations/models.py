"""Lesions and their ROIs, pathology (ground truth), reader studies and blinded reader calls."""

import random

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from archive.models import Phase, Series, Study
from archive.vocabulary import SESSION_LABELS, SESSIONS, SUBTYPE_LABELS, SUBTYPE_NAMES, SUBTYPES


class Side(models.TextChoices):
    LEFT = "left", "left"
    RIGHT = "right", "right"
    UNKNOWN = "unknown", "unknown"


# The histologic subtypes of archive.vocabulary (whose MALIGNANT_SUBTYPES says which are malignant).
Subtype = models.TextChoices(
    "Subtype",
    [(SUBTYPE_NAMES[subtype], (subtype, SUBTYPE_LABELS[subtype])) for subtype in SUBTYPES],
)


class ReaderStudy(models.Model):
    """A named set of cases (studies) read by a set of readers, with its blinding state."""

    class State(models.TextChoices):
        OPEN = "open", "open for reading"
        CLOSED = "closed", "closed"
        UNBLINDED = "unblinded", "unblinded"

    class CaseOrder(models.TextChoices):
        SHUFFLED = "shuffled", "shuffled per reader (reproducible)"
        FIXED = "fixed", "fixed"

    class Design(models.TextChoices):
        UNAIDED = "unaided", "unaided only"
        SEQUENTIAL = (
            "sequential",
            "sequential: unaided call locked, then the model's output and an aided call",
        )
        CROSSOVER = (
            "crossover",
            "crossover: half the cases aided first, the second read after a washout",
        )

    name = models.CharField(max_length=200, unique=True)
    instructions = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    case_order = models.CharField(
        max_length=10, choices=CaseOrder.choices, default=CaseOrder.SHUFFLED
    )
    seed = models.PositiveIntegerField(default=0)
    design = models.CharField(
        max_length=10,
        choices=Design.choices,
        default=Design.UNAIDED,
        help_text="reading sessions: unaided only; sequential unaided then aided (the model's output shown); "
        "or crossover with washout",
    )
    washout_days = models.PositiveSmallIntegerField(
        default=28,
        validators=[MaxValueValidator(365)],
        help_text="crossover: days between a lesion's first read and its second read",
    )
    studies = models.ManyToManyField(
        Study, through="ReaderStudyCase", related_name="reader_studies"
    )
    readers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="reader_studies", blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "reader studies"

    def __str__(self):
        return self.name

    def cases_for(self, reader):
        """The cases in ``reader``'s reading order.

        Fixed order: by position. Shuffled: a permutation drawn from ``seed`` and the
        reader's id, so each reader gets their own order and the same one every time.
        """
        cases = list(self.cases.select_related("study__patient").order_by("position", "id"))
        if self.case_order == self.CaseOrder.SHUFFLED:
            random.Random(f"{self.seed}:{getattr(reader, 'pk', 0)}").shuffle(cases)
        return cases

    @property
    def aided(self) -> bool:
        """Whether readers record an aided call besides their unaided one (sequential or crossover)."""
        return self.design in (self.Design.SEQUENTIAL, self.Design.CROSSOVER)

    def aided_first_study_ids(self, reader) -> set:
        """Crossover: the ids of the studies ``reader`` reads aided first (half the cases, rounded down).

        Drawn from ``seed`` and the reader's id, so each reader gets their own half and the
        same one every time. Empty for the other designs (unaided always comes first).
        """
        if self.design != self.Design.CROSSOVER:
            return set()
        study_ids = sorted(self.cases.values_list("study_id", flat=True))
        chosen = random.Random(f"{self.seed}:crossover:{getattr(reader, 'pk', 0)}").sample(
            study_ids, len(study_ids) // 2
        )
        return set(chosen)

    def first_session(self, reader, study_id) -> str:
        """The session of ``reader``'s first read of the case ``study_id`` (``unaided`` or ``aided``)."""
        return Session.AIDED if study_id in self.aided_first_study_ids(reader) else Session.UNAIDED


class ReaderStudyCase(models.Model):
    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="cases")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reader_study_cases")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["reader_study", "study"], name="one_case_per_study")
        ]


class Lesion(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="lesions")
    label = models.CharField(max_length=32, help_text="e.g. L1, unique within the study")
    side = models.CharField(max_length=8, choices=Side.choices, default=Side.UNKNOWN)
    location = models.CharField(
        max_length=64, blank=True, help_text="e.g. upper pole, interpolar, lower pole"
    )
    long_axis_mm = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(300.0)]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study_id", "label"]
        constraints = [
            models.UniqueConstraint(fields=["study", "label"], name="lesion_label_unique_in_study")
        ]

    def __str__(self):
        return f"{self.study.patient} {self.label}"

    @property
    def patient(self):
        return self.study.patient


class ROI(models.Model):
    """A region of interest of a lesion on one phase, in patient coordinates (mm)."""

    class Tool(models.TextChoices):
        ELLIPSE = "ellipse", "ellipse"
        RECTANGLE = "rectangle", "rectangle"
        FREEHAND = "freehand", "freehand"
        LENGTH = "length", "length"

    lesion = models.ForeignKey(Lesion, on_delete=models.CASCADE, related_name="rois")
    phase = models.CharField(max_length=8, choices=Phase.choices)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="rois")
    sop_instance_uid = models.CharField(
        max_length=64, help_text="the instance the ROI was drawn on"
    )
    frame_number = models.PositiveIntegerField(default=1)
    tool = models.CharField(max_length=10, choices=Tool.choices)
    points = models.JSONField(help_text="[[x, y, z], ...] in patient coordinates (mm)")
    stats = models.JSONField(
        default=dict, blank=True, help_text="mean/stdDev/min/max HU, area mm², as measured"
    )
    is_reference = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "ROI"
        constraints = [
            models.UniqueConstraint(
                fields=["lesion", "phase"],
                condition=Q(is_reference=True),
                name="one_reference_roi_per_lesion_phase",
            )
        ]

    @property
    def centre(self):
        """Mean of the ROI points (patient coordinates, mm)."""
        n = len(self.points)
        return [sum(p[i] for p in self.points) / n for i in range(3)]


class Pathology(models.Model):
    """Ground truth for a lesion."""

    class Source(models.TextChoices):
        BIOPSY = "biopsy", "biopsy"
        SURGERY = "surgery", "surgery"
        SYNTHETIC = "synthetic", "synthetic cohort (generator truth)"

    lesion = models.OneToOneField(Lesion, on_delete=models.CASCADE, related_name="pathology")
    subtype = models.CharField(max_length=16, choices=Subtype.choices)
    malignant = models.BooleanField()
    source = models.CharField(max_length=10, choices=Source.choices)
    date = models.DateField(null=True, blank=True)
    revision = models.PositiveIntegerField(default=1)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    entered_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "pathology"


# A reading session: without (UNAIDED) or with (AIDED) the model's output.
Session = models.TextChoices(
    "Session", [(session.upper(), (session, SESSION_LABELS[session])) for session in SESSIONS]
)


class ReaderCall(models.Model):
    """One reader's benign/malignant call on one lesion in one reader study and reading session.

    After locking, a change is a new revision: the old row stays (``is_current`` False).
    In a sequential reader study each reader has an ``unaided`` call and, once that one
    is locked, an ``aided`` call on the same lesion.
    """

    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="calls")
    lesion = models.ForeignKey(Lesion, on_delete=models.CASCADE, related_name="calls")
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reader_calls"
    )
    session = models.CharField(max_length=8, choices=Session.choices, default=Session.UNAIDED)
    malignant = models.BooleanField()
    probability = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    subtype_guess = models.CharField(max_length=16, choices=Subtype.choices, blank=True)
    time_spent_s = models.FloatField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    revision = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="superseded_by"
    )
    blinded = models.BooleanField(
        default=True, help_text="False if the reader could see the pathology before calling"
    )
    simulated = models.BooleanField(
        default=False, help_text="made by the cohort generator's simulated reader"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reader_study", "lesion", "reader", "session"],
                condition=Q(is_current=True),
                name="one_current_call_per_session",
            )
        ]

    def __str__(self):
        aided = " aided" if self.session == Session.AIDED else ""
        return f"{self.reader} {self.lesion}{aided} r{self.revision}"

    @property
    def locked(self):
        return self.locked_at is not None


class AuditLogIsAppendOnly(Exception):
    """An audit event was to be changed or deleted: the log only grows."""


class AuditEventQuerySet(models.QuerySet):
    """Audit events are written once: bulk deletes and updates through the ORM are refused."""

    def delete(self):
        raise AuditLogIsAppendOnly("audit events cannot be deleted")

    def update(self, **kwargs):
        raise AuditLogIsAppendOnly("audit events cannot be changed")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogIsAppendOnly("audit events cannot be changed")


class AuditEvent(models.Model):
    """Who did what, when: every change to lesions, ROIs, pathology, calls, reader studies, series
    phases and stored studies; model activation, training start and cancel; logins and failed
    logins; downloads and exports.

    Append-only: :meth:`save` of a stored event, :meth:`delete` and the queryset's
    ``delete``/``update`` raise :class:`AuditLogIsAppendOnly`, and a database trigger
    (:mod:`annotations.audit_guard`) refuses UPDATE and DELETE of the table's rows.
    A user with audit events cannot be deleted (deactivate them instead).
    """

    class Action(models.TextChoices):
        CREATE = "create", "create"
        UPDATE = "update", "update"
        DELETE = "delete", "delete"
        UNBLIND = "unblind", "unblind"
        CLOSE = "close", "close"
        REOPEN = "reopen", "reopen"
        ACTIVATE = "activate", "activate model"
        START = "start", "start training"
        CANCEL = "cancel", "cancel training"
        LOGIN = "login", "login"
        LOGIN_FAILED = "login_failed", "failed login"
        LOGOUT = "logout", "logout"
        EXPORT = "export", "export (table, plot, SR)"
        DOWNLOAD = "download", "download (DICOM)"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    object_type = models.CharField(max_length=32)
    object_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="empty for a failed login"
    )
    changes = models.JSONField(default=dict)
    at = models.DateTimeField(auto_now_add=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="auditevent_object_idx")]

    def __str__(self):
        what = f"{self.object_type} {self.object_id or ''}"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user} {self.action} {what}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogIsAppendOnly("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("audit events cannot be deleted")
