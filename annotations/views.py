"""HTML pages of the annotations app: the reader's worklists and the case viewer.

The pages are shells: the viewer, the lesion panel and the forms are JavaScript that
talks to the REST and DICOMweb APIs. Access is checked here as well, so that a page a
user may not open is a 404 rather than an empty viewer.
"""
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static

from portal.models import Phase, Study

from .models import ReaderStudy, Side, Subtype


VIEWER_PHASES = ("NC", "CM", "NG", "EX")


def _preload_urls(study):
    """What the viewer asks for first, fetched by the browser while the bundle loads: the
    study, each phase's instance list, and the middle slice of each phase (viewer.js opens
    every stack at its middle slice, in the instance list's order)."""
    urls = [f"/api/v1/studies/{study.study_instance_uid}/"]
    for series in study.series.filter(phase__in=VIEWER_PHASES):
        urls.append(f"/api/v1/series/{series.series_instance_uid}/instances/")
        uids = list(series.instances.values_list("sop_instance_uid", flat=True))
        if uids:
            urls.append(f"/api/v1/instances/{uids[len(uids) // 2]}/file/")
    return urls


def _viewer_context(study, mode, reader_study=None):
    return {
        "preload_urls": _preload_urls(study),
        "study": study,
        "reader_study": reader_study,
        "mode": mode,
        "phases": [(phase, Phase(phase).label) for phase in VIEWER_PHASES],
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
        Study.objects.visible_to(request.user).select_related("patient"), study_instance_uid=study_instance_uid
    )
    if not reader_study.cases.filter(study=study).exists():
        raise Http404("this study is not a case of this reader study")
    return render(request, "annotations/case.html", _viewer_context(study, "reader", reader_study))


@login_required
@permission_required("portal.enter_pathology", raise_exception=True)
def study_viewer(request, study_instance_uid):
    """The same viewer for coordinators, with the pathology form instead of the call form."""
    study = get_object_or_404(
        Study.objects.visible_to(request.user).select_related("patient"), study_instance_uid=study_instance_uid
    )
    return render(request, "annotations/case.html", _viewer_context(study, "coordinator"))
