from django.contrib import admin

from .models import ComparisonResult


@admin.register(ComparisonResult)
class ComparisonResultAdmin(admin.ModelAdmin):
    """Cached comparisons: read-only; delete one to force a recomputation."""

    list_display = [
        "reader_study",
        "state",
        "short_revision",
        "options",
        "compute_seconds",
        "finished_at",
    ]
    list_filter = ["state"]
    readonly_fields = [
        "reader_study",
        "options",
        "revision",
        "state",
        "error",
        "compute_seconds",
        "created_at",
        "finished_at",
    ]
    exclude = ["result", "plots"]

    @admin.display(description="revision")
    def short_revision(self, obj):
        return obj.revision[:12]

    def has_add_permission(self, request):
        return False
