"""The Django admin of the annotations app (its audited models use the archive's :class:`AuditedAdmin`)."""

from django.contrib import admin

from archive.admin import AuditedAdmin

from .models import ROI, AuditEvent, Lesion, Pathology, ReaderCall, ReaderStudy, ReaderStudyCase


class ReaderStudyCaseInline(admin.TabularInline):
    model = ReaderStudyCase
    extra = 0
    raw_id_fields = ["study"]


@admin.register(ReaderStudy)
class ReaderStudyAdmin(AuditedAdmin):
    list_display = ["name", "state", "case_order", "seed", "created_at"]
    list_filter = ["state"]
    search_fields = ["name"]
    filter_horizontal = ["readers"]
    inlines = [ReaderStudyCaseInline]


@admin.register(ReaderStudyCase)
class ReaderStudyCaseAdmin(AuditedAdmin):
    list_display = ["reader_study", "study", "position"]
    raw_id_fields = ["study"]


class ROIInline(admin.TabularInline):
    model = ROI
    extra = 0
    fields = ["phase", "tool", "is_reference", "sop_instance_uid", "created_by"]
    readonly_fields = fields
    show_change_link = True


@admin.register(Lesion)
class LesionAdmin(AuditedAdmin):
    list_display = ["__str__", "label", "side", "long_axis_mm", "created_by", "created_at"]
    list_filter = ["side"]
    search_fields = ["label", "study__study_instance_uid", "study__patient__patient_id"]
    raw_id_fields = ["study"]
    inlines = [ROIInline]


@admin.register(ROI)
class ROIAdmin(AuditedAdmin):
    list_display = ["lesion", "phase", "tool", "is_reference", "created_by", "created_at"]
    list_filter = ["phase", "tool", "is_reference"]
    raw_id_fields = ["lesion", "series"]


@admin.register(Pathology)
class PathologyAdmin(AuditedAdmin):
    list_display = ["lesion", "subtype", "malignant", "source", "date", "revision", "entered_by"]
    list_filter = ["subtype", "malignant", "source"]
    raw_id_fields = ["lesion"]


@admin.register(ReaderCall)
class ReaderCallAdmin(AuditedAdmin):
    list_display = [
        "reader_study",
        "lesion",
        "reader",
        "malignant",
        "probability",
        "locked_at",
        "revision",
        "is_current",
        "blinded",
        "simulated",
    ]
    list_filter = ["reader_study", "is_current", "blinded", "simulated"]
    raw_id_fields = ["lesion", "supersedes"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: no one adds, changes or deletes an event here (nor anywhere else)."""

    list_display = ["at", "user", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["user__username", "object_type", "=object_id"]
    date_hierarchy = "at"
    readonly_fields = ["at", "user", "action", "object_type", "object_id", "changes"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
