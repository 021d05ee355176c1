"""HTML pages of the archive: upload, phase override."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.roles import SET_SERIES_PHASE, UPLOAD_STUDIES, permission

from .models import Phase, Series, Study, Upload


@login_required
@permission_required(permission(UPLOAD_STUDIES), raise_exception=True)
def upload(request):
    uploads = Upload.objects.filter(user=request.user)[:20]
    return render(request, "archive/upload.html", {"uploads": uploads})


@login_required
@require_POST
@permission_required(permission(SET_SERIES_PHASE), raise_exception=True)
def set_phase(request, series_instance_uid):
    """The coordinator's phase override from the studies page (same rule as the API)."""
    series = get_object_or_404(
        Series.objects.filter(study__in=Study.objects.visible_to(request.user)),
        series_instance_uid=series_instance_uid,
    )
    phase = request.POST.get("phase", "")
    if phase not in Phase.values:
        messages.error(request, f"phase must be one of {', '.join(Phase.values)}, not {phase!r}")
    else:
        series.set_phase_manually(phase, request.user)
        messages.success(request, f"Series {series.series_number} is now {phase} (set by you).")
    return redirect("home")
