"""Readers versus models for one reader study: the result computed and cached.

The page, the exports, the Celery task and the management command share these
functions. What enters a comparison, and its revision key, come from
:mod:`evaluation.inputs`; the statistics live in :mod:`evaluation.stats.comparison`
(pure); this module computes the result of those inputs and stores it in
:class:`evaluation.models.ComparisonResult`.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import plots
from .inputs import ComparisonInputs, ComparisonOptions
from .models import ComparisonResult
from .stats import comparison


def _patient_level(options: ComparisonOptions):
    return {"auto": None, "on": True, "off": False}[options.patient_level]


def compute_result(inputs: ComparisonInputs) -> tuple[dict, dict]:
    """(result JSON, {"all": inline SVG}) for ``inputs``; pure computation, no saving.

    Other subgroups' plots are rendered when first shown (``inline_roc_svg``).
    """
    data = inputs.analysis_data()
    if not inputs.analysed_lesions:
        result = {
            "confidence": 0.95,
            "patient_level": False,
            "readers": [],
            "models": [],
            "subgroups": [],
        }
    else:
        result = comparison.compare(data, patient_level=_patient_level(inputs.options))
    result.update(
        {
            "revision": inputs.revision,
            "options": inputs.options.as_dict(),
            "reader_study": {
                "id": inputs.reader_study.pk,
                "name": inputs.reader_study.name,
                "state": inputs.reader_study.state,
            },
            "n_lesions_in_study": len(inputs.lesions),
            "exclusions": list(inputs.exclusions),
            "model_versions": {
                m.key: {
                    "id": m.pk,
                    "family": m.family,
                    "variant": m.variant,
                    "version": m.version,
                    "experiment": m.experiment_name,
                    "phases": m.phases,
                    "scores": m.scores_source,
                    "trained_on": m.trained_on,
                }
                for m in inputs.analysed_models
            },
        }
    )
    if inputs.frozen_model is not None:
        result["frozen_model"] = inputs.frozen_model
    if inputs.has_aided_session and inputs.analysed_lesions:
        ratings, calls = inputs.aided_arrays()
        aided = comparison.aided_vs_unaided(
            [r.label for r in inputs.aided_readers],
            [l.pk for l in inputs.analysed_lesions],
            data.truth,
            data.patients,
            ratings,
            calls,
            result["patient_level"],
            result.get("confidence", 0.95),
        )
        result["aided_vs_unaided"] = {
            **aided,
            "readers": [r.label for r in inputs.aided_readers],
            "frozen_model": inputs.frozen_model,
        }
        result["study_plan"] = comparison.plan_next_study(
            [r.label for r in inputs.aided_readers],
            data.truth,
            data.patients,
            ratings,
            result["patient_level"],
            inputs.options.effect,
        )
    elif not inputs.has_aided_session:
        result["study_plan"] = {"error": comparison.PLAN_NEEDS_A_PILOT}
    svgs = {
        group["key"]: plots.roc_svg(group, result["readers"], result["models"], inline=True)
        for group in result["subgroups"][:1]
        if "error" not in group
    }
    return result, svgs


def inline_roc_svg(row: ComparisonResult, subgroup_key: str) -> str:
    """The page's inline ROC plot of one subgroup, rendered once and kept with the result."""
    if subgroup_key in row.plots:
        return row.plots[subgroup_key]
    group = next(
        (
            g
            for g in row.result.get("subgroups", [])
            if g["key"] == subgroup_key and "error" not in g
        ),
        None,
    )
    if group is None:
        return ""
    svg = plots.roc_svg(group, row.result["readers"], row.result["models"], inline=True)
    row.plots[subgroup_key] = svg
    ComparisonResult.objects.filter(pk=row.pk).update(plots=row.plots)
    return svg


def store_result(inputs: ComparisonInputs) -> ComparisonResult:
    """Compute and save the result of ``inputs``; older results of the same options are deleted."""
    started = time.perf_counter()
    try:
        result, svgs = compute_result(inputs)
        values = {
            "state": ComparisonResult.State.DONE,
            "result": result,
            "plots": svgs,
            "error": "",
        }
    except Exception as error:  # noqa: BLE001 - a failed analysis is shown on the page, not as a 500
        values = {
            "state": ComparisonResult.State.FAILED,
            "result": {},
            "plots": {},
            "error": f"{type(error).__name__}: {error}",
        }
    values.update(
        compute_seconds=time.perf_counter() - started,
        finished_at=timezone.now(),
        options=inputs.options.as_dict(),
    )
    try:
        row, _ = ComparisonResult.objects.update_or_create(
            reader_study=inputs.reader_study, revision=inputs.revision, defaults=values
        )
    except IntegrityError:
        row = ComparisonResult.objects.get(
            reader_study=inputs.reader_study, revision=inputs.revision
        )
    (
        ComparisonResult.objects.filter(
            reader_study=inputs.reader_study, options=inputs.options.as_dict()
        )
        .exclude(pk=row.pk)
        .delete()
    )
    return row


def sync_limit() -> int:
    return int(getattr(settings, "EVALUATION_SYNC_MAX_RATINGS", 2500))


def cached_result(inputs: ComparisonInputs) -> ComparisonResult | None:
    """The stored result for exactly these inputs, if any (any state)."""
    return ComparisonResult.objects.filter(
        reader_study=inputs.reader_study, revision=inputs.revision
    ).first()


def request_comparison(inputs: ComparisonInputs) -> ComparisonResult:
    """A pending result row for ``inputs``, with the Celery task enqueued after commit."""
    from .tasks import compute_comparison

    row, created = ComparisonResult.objects.get_or_create(
        reader_study=inputs.reader_study,
        revision=inputs.revision,
        defaults={"options": inputs.options.as_dict(), "state": ComparisonResult.State.PENDING},
    )
    stale = (
        row.state == ComparisonResult.State.PENDING
        and (timezone.now() - row.created_at).total_seconds() > 600
    )
    if created or stale or row.state == ComparisonResult.State.FAILED and row.finished_at is None:
        kwargs = {"reader_study_pk": inputs.reader_study.pk, **inputs.options.as_dict()}
        transaction.on_commit(lambda: compute_comparison.delay(**kwargs))
    return row


def current_result(inputs: ComparisonInputs, compute_small: bool = True) -> ComparisonResult:
    """The fresh result: cached, else computed now (small studies) or requested from a worker."""
    row = cached_result(inputs)
    if (
        row is not None
        and row.state in (ComparisonResult.State.DONE, ComparisonResult.State.FAILED)
        and row.finished_at
    ):
        return row
    if compute_small and inputs.size <= sync_limit():
        return store_result(inputs)
    return request_comparison(inputs)
