"""HTML pages of the annotations app: the reader's worklists and the case viewer.

The pages are shells: the viewer, the lesion panel and the forms are JavaScript that
talks to the REST and DICOMweb APIs. Access is checked here as well, so that a page a
user may not open is a 404 rather than an empty viewer.
"""

import functools
import json

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static

from archive.models import Phase, Study
from archive.vocabulary import PHASES
from portal.roles import ENTER_PATHOLOGY, permission

from . import access
from .models import ROI, ReaderStudy, Side, Subtype
from .opening import Slice, Stack, opening_slices

BUILD = settings.BASE_DIR / "portal" / "static" / "portal" / "build"


def _shown_series(study):
    """The series the viewer shows for each phase: the one with the most instances, the
    first in the study's order on a tie (as ``seriesByPhase`` in study.js)."""
    shown = {}
    for series in study.series.filter(phase__in=PHASES).annotate(n=Count("instances")):
        if series.phase not in shown or series.n > shown[series.phase].n:
            shown[series.phase] = series
    return shown


def _opening(study, user, shown):
    """{phase: SOPInstanceUID} of each phase's opening slice (see annotations.opening),
    for the lesion the lesion panel selects: the first of the study's lesions in the API's order."""
    stacks = {
        phase: Stack(
            series.frame_of_reference_uid,
            tuple(
                Slice(*row)
                for row in series.instances.values_list("sop_instance_uid", "slice_position")
            ),
        )
        for phase, series in shown.items()
    }
    lesion = access.lesions_visible_to(user).filter(study=study).order_by("label", "id").first()
    references = {}
    if lesion is not None:
        rois = ROI.objects.filter(
            lesion=lesion, is_reference=True, series__in=shown.values()
        ).order_by("updated_at", "id")
        references = {roi.phase: roi.sop_instance_uid for roi in rois}
    return opening_slices(stacks, references)


def _preload_urls(study, shown, opening):
    """What the viewer asks for first, fetched by the browser while its modules load: the
    study, each phase's instance list and each phase's opening slice."""
    urls = [f"/api/v1/studies/{study.study_instance_uid}/"]
    for phase, series in shown.items():
        urls.append(f"/api/v1/series/{series.series_instance_uid}/instances/")
        if phase in opening:
            urls.append(f"/api/v1/instances/{opening[phase]}/file/")
    return urls


@functools.lru_cache(maxsize=4)
def _first_step(mtime_ns):
    return json.loads((BUILD / "preload.json").read_text())


def first_step_modules(page):
    """The JS files the page needs before its first image (build/preload.json, written by
    frontend/build.mjs), as static paths for ``<link rel=modulepreload>``; none when the
    bundle is not built."""
    try:
        steps = _first_step((BUILD / "preload.json").stat().st_mtime_ns)
    except FileNotFoundError:
        return []
    return [f"portal/build/{file}" for file in steps.get(page, [])]


def _viewer_context(request, study, mode, reader_study=None):
    shown = _shown_series(study)
    opening = _opening(study, request.user, shown)
    return {
        "modulepreload": first_step_modules("case"),
        "preload_urls": _preload_urls(study, shown, opening),
        "opening_slices": opening,
        "study": study,
        "reader_study": reader_study,
        "mode": mode,
        "phases": [(phase, Phase(phase).label) for phase in PHASES],
        "subtypes": Subtype.choices,
        "sides": Side.choices,
        "worker_url": static("portal/build/decodeImageFrameWorker.js"),
        "wasm_base": static("portal/build/codecs/"),
    }


@login_required
def reading(request):
    """The reader studies assigned to the user."""
    reader_studies = ReaderStudy.objects.filter(readers=request.user).order_by("name")
    return render(request, "annotations/reading.html", {"reader_studies": reader_studies})


@login_required
def worklist(request, reader_study_id):
    """The cases of one reader study assigned to the user, with progress (filled in by worklist.js)."""
    reader_study = get_object_or_404(ReaderStudy, pk=reader_study_id, readers=request.user)
    return render(request, "annotations/worklist.html", {"reader_study": reader_study})


@login_required
def case(request, reader_study_id, study_instance_uid):
    """One case of a reader study: the four-phase viewer with the reader's call form."""
    reader_study = get_object_or_404(ReaderStudy, pk=reader_study_id, readers=request.user)
    study = get_object_or_404(
        Study.objects.visible_to(request.user).select_related("patient"),
        study_instance_uid=study_instance_uid,
    )
    if not reader_study.cases.filter(study=study).exists():
        raise Http404("this study is not a case of this reader study")
    context = _viewer_context(request, study, "reader", reader_study)
    context["first_session"] = reader_study.first_session(
        request.user, study.pk
    )  # lesions the reader adds here
    return render(request, "annotations/case.html", context)


@login_required
@permission_required(permission(ENTER_PATHOLOGY), raise_exception=True)
def study_viewer(request, study_instance_uid):
    """The same viewer for coordinators, with the pathology form instead of the call form."""
    study = get_object_or_404(
        Study.objects.visible_to(request.user).select_related("patient"),
        study_instance_uid=study_instance_uid,
    )
    return render(request, "annotations/case.html", _viewer_context(request, study, "coordinator"))
