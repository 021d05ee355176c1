"""The comparison page of a reader study, its status poll and its downloads.

Who may open them: coordinators and admins (``portal.view_comparisons``), and the
reader study's own readers once it is unblinded (``annotations.access.may_see_comparison``).
Anyone else gets 404 (or 403 for an assigned reader before unblinding).

The downloads of the analysis (JSON, ROC PNG/SVG) take the page's path to the result
(``services.current_result``): cached, else computed here for a small study, else
requested from a worker, and then the answer is 202 with the state and the status
URL, never a computation of a large study in the web process. Every download is
audited (``AuditEvent`` action ``export``). An option in the query that cannot be used
(``?effect=`` outside (0, 0.5]) is answered 400 naming it.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from annotations.access import may_know_reader_study, may_see_comparison
from annotations.audit import audit_export
from annotations.models import ReaderStudy

from . import exports, plots, presentation, services
from .inputs import ComparisonOptions, OptionError, gather_inputs
from .models import ComparisonResult


def _reader_study_for(request, pk) -> ReaderStudy:
    reader_study = get_object_or_404(ReaderStudy, pk=pk)
    if not may_know_reader_study(request.user, reader_study):
        raise Http404("No such reader study.")
    if not may_see_comparison(request.user, reader_study):
        raise PermissionDenied(
            "The comparison opens to readers once the coordinator unblinds the reader study."
        )
    return reader_study


def answers_bad_options(view):
    """400 ``{"field": ..., "error": ...}`` when ``view``'s query has an option that cannot be used."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except OptionError as error:
            return JsonResponse({"field": error.field, "error": str(error)}, status=400)

    return wrapper


def _inputs(request, pk):
    reader_study = _reader_study_for(request, pk)
    return gather_inputs(reader_study, ComparisonOptions.from_query(request.GET))


# Seconds a client is asked to wait before it asks again for a download being computed.
RETRY_AFTER_S = 5


def _result_or_answer(inputs) -> tuple[ComparisonResult | None, JsonResponse | None]:
    """The done result for ``inputs`` as the page gets it, or the answer to give instead.

    202 while a worker computes it (with ``Retry-After`` and the status URL the page
    polls), 409 when the analysis failed (its error, as the page shows it).
    """
    row = services.current_result(inputs)
    if row.state == ComparisonResult.State.DONE:
        return row, None
    status_url = reverse("evaluation:comparison-status", args=[inputs.reader_study.pk])
    if row.state == ComparisonResult.State.FAILED:
        body = {"state": row.state, "detail": f"the comparison failed: {row.error}"}
        return None, JsonResponse(body, status=409)
    body = {
        "state": row.state,
        "status_url": status_url,
        "detail": "the comparison is being computed by a worker; ask again when status.json says fresh",
    }
    answer = JsonResponse(body, status=202)
    answer["Retry-After"] = str(RETRY_AFTER_S)
    return None, answer


def _filename(inputs, suffix):
    return f"reader-study-{inputs.reader_study.pk}-comparison{suffix}"


def _download(request, inputs, content, content_type, filename):
    """The file as an attachment; the download is audited."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    audit_export(
        request.user,
        inputs.reader_study,
        filename,
        options=inputs.options.as_dict(),
        revision=inputs.revision,
    )
    return response


@require_GET
@login_required
@answers_bad_options
def comparison_page(request, pk):
    inputs = _inputs(request, pk)
    row = services.current_result(inputs)
    context = presentation.page_context(inputs, row, request.GET)
    return render(request, "evaluation/comparison.html", context)


@require_GET
@login_required
@answers_bad_options
def comparison_status(request, pk):
    """``{"state": ..., "fresh": bool}`` for the page's poll while a worker computes."""
    inputs = _inputs(request, pk)
    row = services.cached_result(inputs)
    state = row.state if row else "missing"
    return JsonResponse(
        {"state": state, "fresh": state in ("done", "failed"), "revision": inputs.revision}
    )


@require_GET
@login_required
@answers_bad_options
def export_joined_csv(request, pk):
    inputs = _inputs(request, pk)
    content = exports.joined_csv(inputs)
    return _download(request, inputs, content, "text/csv; charset=utf-8", _filename(inputs, ".csv"))


@require_GET
@login_required
@answers_bad_options
def export_long_csv(request, pk):
    inputs = _inputs(request, pk)
    model_key = presentation.selected_model_key(inputs.analysed_models, request.GET)
    content = exports.long_csv(inputs, model_key)
    return _download(
        request, inputs, content, "text/csv; charset=utf-8", _filename(inputs, "-long.csv")
    )


@require_GET
@login_required
@answers_bad_options
def export_imrmc(request, pk):
    """iMRMC input: unaided and aided modalities for a reader study with an aided session (readers with both
    calls on every lesion), else (or with ``?modalities=models``) the readers and each model."""
    inputs = _inputs(request, pk)
    if inputs.aided_readers and request.GET.get("modalities") != "models":
        content = exports.imrmc_aided_text(inputs)
    else:
        content = exports.imrmc_text(inputs)
    return _download(
        request, inputs, content, "text/plain; charset=utf-8", _filename(inputs, ".imrmc")
    )


@require_GET
@login_required
@answers_bad_options
def export_json(request, pk):
    inputs = _inputs(request, pk)
    row, answer = _result_or_answer(inputs)
    if answer is not None:
        return answer
    content = exports.analysis_json(row, inputs)
    return _download(request, inputs, content, "application/json", _filename(inputs, ".json"))


@answers_bad_options
def _roc(request, pk, kind):
    inputs = _inputs(request, pk)
    row, answer = _result_or_answer(inputs)
    if answer is not None:
        return answer
    groups = {g["key"]: g for g in row.result.get("subgroups", []) if "error" not in g}
    key = request.GET.get("subgroup", "all")
    if key not in groups:
        raise Http404(
            "No ROC plot for this subgroup (too few lesions of one class, or no ratings)."
        )
    group = groups[key]
    title = f"{inputs.reader_study.name}: {group['label']} (n = {group['n']}, {group['n_malignant']} malignant)"
    readers, models = row.result["readers"], row.result["models"]
    if kind == "png":
        content, content_type = plots.roc_png(group, readers, models, title), "image/png"
    else:
        content, content_type = plots.roc_svg(group, readers, models, title), "image/svg+xml"
    return _download(
        request, inputs, content, content_type, _filename(inputs, f"-roc-{key}.{kind}")
    )


@require_GET
@login_required
@answers_bad_options
def roc_png(request, pk):
    return _roc(request, pk, "png")


@require_GET
@login_required
@answers_bad_options
def roc_svg(request, pk):
    return _roc(request, pk, "svg")
