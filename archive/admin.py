"""The Django admin of the archive, and :class:`AuditedAdmin`: every admin change is audited.

The events go through :func:`archive.hooks.record` to the audit log of annotations; series
phases and studies changed here are audited, and so are the annotations' own models.
"""

from django.contrib import admin
from django.db import router, transaction
from django.db.models.deletion import Collector

from . import hooks
from .models import Instance, Patient, Series, Study, Upload


def admin_snapshot(obj) -> dict:
    """Every concrete field (foreign keys as ids) and many-to-many field (primary keys) of ``obj``."""
    values = hooks.snapshot(
        obj, [f.attname for f in obj._meta.concrete_fields if not f.primary_key]
    )
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            values[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return values


def _stored_snapshot(obj) -> dict | None:
    stored = type(obj)._base_manager.filter(pk=obj.pk).first() if obj.pk is not None else None
    return admin_snapshot(stored) if stored is not None else None


def _audit_saved(user, obj, before):
    after = admin_snapshot(obj)
    if before is None:
        changes = {f: [None, v] for f, v in after.items()}
        hooks.record(user, "create", obj, changes | {"via": "admin"})
        return
    changes = {f: [before.get(f), v] for f, v in after.items() if before.get(f) != v}
    if changes:
        hooks.record(user, "update", obj, changes | {"via": "admin"})


def _audit_deleted(user, objs):
    """One delete event per object, with its values; one per row deleted with it (cascade), naming it."""
    objs = list(objs)
    if not objs:
        return
    collector = Collector(using=router.db_for_write(type(objs[0])))
    collector.collect(objs)
    direct = {(type(o), o.pk) for o in objs}
    cascaded = [o for instances in collector.data.values() for o in instances]
    cascaded += [o for queryset in collector.fast_deletes for o in queryset]
    for obj in objs:
        changes = {f: [v, None] for f, v in admin_snapshot(obj).items()}
        hooks.record(user, "delete", obj, changes | {"via": "admin"})
    cause = (
        [objs[0]._meta.model_name, objs[0].pk]
        if len(objs) == 1
        else [objs[0]._meta.model_name, None]
    )
    for obj in cascaded:
        if (type(obj), obj.pk) not in direct:
            hooks.record(user, "delete", obj, {"deleted_with": cause, "via": "admin"})


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose every add, change and delete (inline rows and cascades too) writes AuditEvents.

    The admin's change and delete views run in a transaction; the events are written in
    it, so an admin change is stored with its audit events or not at all.
    """

    def save_model(self, request, obj, form, change):
        request._audit_before = getattr(request, "_audit_before", {})
        request._audit_before[id(obj)] = _stored_snapshot(obj) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(
            request, form, formsets, change
        )  # many-to-many, and inlines (save_formset)
        before = getattr(request, "_audit_before", {}).pop(id(form.instance), None)
        _audit_saved(request.user, form.instance, before)

    def save_formset(self, request, form, formset, change):
        stored = [f.instance for f in formset.forms if f.instance.pk is not None]
        before = {id(obj): _stored_snapshot(obj) for obj in stored}
        deleted = [f.instance for f in formset.deleted_forms if f.instance.pk is not None]
        with transaction.atomic(using=router.db_for_write(formset.model)):
            _audit_deleted(request.user, deleted)
            super().save_formset(request, form, formset, change)
            for obj in formset.new_objects:
                _audit_saved(request.user, obj, None)
            for obj, _ in formset.changed_objects:
                _audit_saved(request.user, obj, before.get(id(obj)))

    def delete_model(self, request, obj):
        with transaction.atomic(using=router.db_for_write(type(obj))):
            _audit_deleted(request.user, [obj])
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic(using=router.db_for_write(queryset.model)):
            _audit_deleted(request.user, queryset)
            super().delete_queryset(request, queryset)


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
