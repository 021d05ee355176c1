"""The Django admin of the annotations app, and :class:`AuditedAdmin`: every admin change is audited."""

from django.contrib import admin
from django.db import router, transaction
from django.db.models.deletion import Collector

from .models import ROI, AuditEvent, Lesion, Pathology, ReaderCall, ReaderStudy, ReaderStudyCase
from .services import audit, snapshot


def admin_snapshot(obj) -> dict:
    """Every concrete field (foreign keys as ids) and many-to-many field (primary keys) of ``obj``."""
    values = snapshot(obj, [f.attname for f in obj._meta.concrete_fields if not f.primary_key])
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
        audit(user, AuditEvent.Action.CREATE, obj, changes | {"via": "admin"})
        return
    changes = {f: [before.get(f), v] for f, v in after.items() if before.get(f) != v}
    if changes:
        audit(user, AuditEvent.Action.UPDATE, obj, changes | {"via": "admin"})


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
        audit(user, AuditEvent.Action.DELETE, obj, changes | {"via": "admin"})
    cause = (
        [objs[0]._meta.model_name, objs[0].pk]
        if len(objs) == 1
        else [objs[0]._meta.model_name, None]
    )
    for obj in cascaded:
        if (type(obj), obj.pk) not in direct and not isinstance(obj, AuditEvent):
            audit(user, AuditEvent.Action.DELETE, obj, {"deleted_with": cause, "via": "admin"})


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
