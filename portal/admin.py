from django.contrib import admin
from knox.models import AuthToken

from annotations.admin import (
    AuditedAdmin,
)  # the audit log: series phases and studies changed here are audited

from .models import Instance, Patient, Series, Study, Upload


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ("patient_id", "sex", "age_years", "created_at")
    search_fields = ("patient_id",)


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ("series_number", "description", "phase", "phase_source", "modality")
    readonly_fields = ("series_number", "description", "modality")
    extra = 0


@admin.register(Study)
class StudyAdmin(AuditedAdmin):
    list_display = ("study_instance_uid", "patient", "study_date", "description")
    search_fields = ("study_instance_uid", "patient__patient_id")
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(AuditedAdmin):
    list_display = (
        "series_instance_uid",
        "study",
        "series_number",
        "phase",
        "phase_source",
        "phase_reason",
    )
    list_filter = ("phase", "phase_source", "modality")
    search_fields = ("series_instance_uid", "study__study_instance_uid")


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = (
        "sop_instance_uid",
        "series",
        "instance_number",
        "slice_position",
        "transfer_syntax_uid",
    )
    search_fields = ("sop_instance_uid", "sha256")
    exclude = ("metadata",)


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "channel",
        "status",
        "n_stored",
        "n_duplicate",
        "n_rejected",
        "created_at",
    )
    list_filter = ("channel", "status")


# API tokens: knox's own admin lists the digest and puts the key's first 15 characters in
# an editable form field; here the admin sees whose token it is and when it expires, may
# shorten the expiry or delete (revoke) it, and never sees any part of the key. Tokens
# are issued with `manage.py drf_create_token` (the key is printed once).
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "created", "expiry")
    list_filter = ("expiry",)
    search_fields = ("user__username",)
    fields = ("user", "created", "expiry")
    readonly_fields = ("user", "created")
    ordering = ("-created",)

    def has_add_permission(self, request):
        return False
