"""The home page: the studies a user may open and, for coordinators, the reader studies."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from annotations.access import reader_studies_visible_to
from archive.models import Phase, Study

from .roles import VIEW_COMPARISONS, can


@login_required
def home(request):
    studies = (
        Study.objects.visible_to(request.user)
        .select_related("patient")
        .prefetch_related("series")
        .order_by("-created_at")[:200]
    )
    reader_studies = (
        reader_studies_visible_to(request.user).order_by("name")
        if can(request.user, VIEW_COMPARISONS)
        else []
    )
    return render(
        request,
        "portal/home.html",
        {"studies": studies, "phases": Phase.choices, "reader_studies": reader_studies},
    )
