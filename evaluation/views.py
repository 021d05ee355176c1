"""The comparison page of a reader study, its status poll and its downloads.

Who may open them: coordinators and admins (``portal.view_comparisons``), and the
reader study's own readers once it is unblinded (``services.may_view_comparison``).
Anyone else gets 404 (or 403 for an assigned reader before unblinding).
"""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from annotations.models import ReaderStudy

from . import exports, plots, presentation, services
from .models import ComparisonResult


def _reader_study_for(request, pk) -> ReaderStudy:
    reader_study = get_object_or_404(ReaderStudy, pk=pk)
    if not services.may_know_reader_study(request.user, reader_study):
        raise Http404("No such reader study.")
    if not services.may_view_comparison(request.user, reader_study):
        raise PermissionDenied("The comparison opens to readers once the coordinator unblinds the reader study.")
    return reader_study


def _inputs(request, pk):
    reader_study = _reader_study_for(request, pk)
    return services.gather_inputs(reader_study, services.ComparisonOptions.from_query(request.GET))


def _fresh_result(inputs) -> ComparisonResult:
    """The result for ``inputs``, computing it now if needed (downloads always get a file)."""
    row = services.cached_result(inputs)
    if row is None or row.state != ComparisonResult.State.DONE:
        row = services.store_result(inputs)
    return row


def _filename(inputs, suffix):
    return f"reader-study-{inputs.reader_study.pk}-comparison{suffix}"


def _download(content, content_type, filename):
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@login_required
def comparison_page(request, pk):
    inputs = _inputs(request, pk)
    row = services.current_result(inputs)
    context = presentation.page_context(inputs, row, request.GET)
    return render(request, "evaluation/comparison.html", context)


@require_GET
@login_required
def comparison_status(request, pk):
    """``{"state": ..., "fresh": bool}`` for the page's poll while a worker computes."""
    inputs = _inputs(request, pk)
    row = services.cached_result(inputs)
    state = row.state if row else "missing"
    return JsonResponse({"state": state, "fresh": state in ("done", "failed"), "revision": inputs.revision})


@require_GET
@login_required
def export_joined_csv(request, pk):
    inputs = _inputs(request, pk)
    return _download(exports.joined_csv(inputs), "text/csv; charset=utf-8", _filename(inputs, ".csv"))


@require_GET
@login_required
def export_long_csv(request, pk):
    inputs = _inputs(request, pk)
    model_key = presentation.selected_model_key(inputs.analysed_models, request.GET)
    return _download(exports.long_csv(inputs, model_key), "text/csv; charset=utf-8", _filename(inputs, "-long.csv"))


@require_GET
@login_required
def export_imrmc(request, pk):
    inputs = _inputs(request, pk)
    return _download(exports.imrmc_text(inputs), "text/plain; charset=utf-8", _filename(inputs, ".imrmc"))


@require_GET
@login_required
def export_json(request, pk):
    inputs = _inputs(request, pk)
    row = _fresh_result(inputs)
    return _download(exports.analysis_json(row, inputs), "application/json", _filename(inputs, ".json"))


def _roc(request, pk, kind):
    inputs = _inputs(request, pk)
    row = _fresh_result(inputs)
    groups = {g["key"]: g for g in row.result.get("subgroups", []) if "error" not in g}
    key = request.GET.get("subgroup", "all")
    if key not in groups:
        raise Http404("No ROC plot for this subgroup (too few lesions of one class, or no ratings).")
    group = groups[key]
    title = f"{inputs.reader_study.name}: {group['label']} (n = {group['n']}, {group['n_malignant']} malignant)"
    readers, models = row.result["readers"], row.result["models"]
    if kind == "png":
        return _download(plots.roc_png(group, readers, models, title), "image/png", _filename(inputs, f"-roc-{key}.png"))
    return _download(plots.roc_svg(group, readers, models, title), "image/svg+xml", _filename(inputs, f"-roc-{key}.svg"))


@require_GET
@login_required
def roc_png(request, pk):
    return _roc(request, pk, "png")


@require_GET
@login_required
def roc_svg(request, pk):
    return _roc(request, pk, "svg")
