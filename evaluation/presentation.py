"""Turn a cached comparison result into the rows the page template prints.

Numbers are formatted the way a radiology journal prints them: AUC 0.87
(0.80–0.93), p = 0.021 or p < 0.001, a true minus sign for negative values.
"""

import math
from html import escape

from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from annotations.models import Subtype

from .services import inline_roc_svg

DEFAULT_MODEL = "model:CM"


def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    text = f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:  # -0.001 prints as 0.00, not −0.00
        text = text[1:]
    return text.replace("-", "−")


def fmt_ci(low, high, digits=2):
    if low is None or high is None:
        return "n/a"
    return (
        f"{fmt(low, digits)} to {fmt(high, digits)}"
        if (low < 0 or high < 0)
        else f"{fmt(low, digits)}–{fmt(high, digits)}"
    )


def fmt_p(value):
    if value is None:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def fmt_percent(proportion):
    if not proportion or proportion.get("estimate") is None:
        return "n/a"
    return (
        f"{100 * proportion['estimate']:.0f} % ({proportion['successes']}/{proportion['total']}; "
        f"{100 * proportion['ci_low']:.0f}–{100 * proportion['ci_high']:.0f})"
    )


def selected_model_key(models, query) -> str | None:
    """The model chosen with ``?model=CM`` (a CNN's variant; ``radiomics-CM`` for radiomics),
    else CM, else the first."""
    keys = [m.key for m in models]
    wanted = query.get("model")
    if wanted and f"model:{wanted}" in keys:
        return f"model:{wanted}"
    if DEFAULT_MODEL in keys:
        return DEFAULT_MODEL
    return keys[0] if keys else None


def lesion_table_body(inputs) -> str:
    """The per-lesion table's rows as HTML (built here: 500 rows x 20 cells in a template loop is slow)."""
    analysed = {l.pk for l in inputs.analysed_lesions}
    subtype_names = dict(Subtype.choices)
    parts = []
    for lesion in inputs.lesions:
        if lesion.malignant is None:
            truth, truth_css = "no pathology", "missing"
        else:
            truth, truth_css = ("malignant", "mal") if lesion.malignant else ("benign", "ben")
        size = "" if lesion.long_axis_mm is None else f"{lesion.long_axis_mm:.0f}"
        subtype = subtype_names.get(lesion.subtype, lesion.subtype or "")
        row_class = "" if lesion.pk in analysed else ' class="out"'
        parts.append(
            f'<tr{row_class}><td class="l">{escape(lesion.name)}</td>'
            f'<td>{size}</td><td class="l">{escape(subtype)}</td><td class="l {truth_css}">{truth}</td>'
        )
        for reader in inputs.readers:
            call = inputs.calls.get((reader.pk, lesion.pk))
            if call is None:
                parts.append('<td class="missing">–</td>')
                continue
            css = (
                ("mal" if call.malignant else "ben")
                + (" sim" if call.simulated else "")
                + ("" if call.blinded else " unbl")
            )
            parts.append(
                f'<td class="{css}">{"M" if call.malignant else "B"} {call.probability}</td>'
            )
        for model in inputs.models:
            score = inputs.scores.get((model.pk, lesion.pk))
            parts.append(
                '<td class="missing">–</td>'
                if score is None
                else f'<td class="score">{score[0]:.2f}</td>'
            )
        parts.append("</tr>\n")
    return mark_safe("".join(parts))


def _labels(result):
    return {r["key"]: r for r in result.get("readers", []) + result.get("models", [])}


def _auc_rows(group, labels):
    return [
        {
            "label": row["label"],
            "kind": row["kind"],
            "simulated": row["simulated"],
            "auc": fmt(row["auc"]),
            "ci": fmt_ci(row["ci_low"], row["ci_high"]),
            "se": fmt(row["se"], 3),
        }
        for row in group.get("auc", [])
    ]


def _comparison_row(label, test, simulated=False, **extra):
    return {
        "label": label,
        "simulated": simulated,
        "difference": fmt(test.get("difference")),
        "ci": fmt_ci(test.get("ci_low"), test.get("ci_high")),
        "p": fmt_p(test.get("p")),
        **extra,
    }


def _operating_rows(group, result):
    points = group.get("operating_points", {})
    rows = []
    for model in result.get("models", []):
        point = points.get("models", {}).get(model["key"], {})
        rows.append(
            _point_row(
                model["label"], point, "Youden cut-off " + fmt(point.get("cutoff"), 3), False
            )
        )
    for reader in result.get("readers", []):
        point = points.get("readers", {}).get(reader["key"], {})
        rows.append(_point_row(reader["label"], point, "own call", reader.get("simulated")))
    return rows


def _point_row(label, point, basis, simulated):
    if "error" in point or not point:
        return {
            "label": label,
            "basis": basis,
            "error": point.get("error", "not estimable"),
            "simulated": simulated,
        }
    return {
        "label": label,
        "basis": basis,
        "simulated": simulated,
        **{
            name: fmt_percent(point.get(name))
            for name in ("sensitivity", "specificity", "accuracy", "ppv", "npv")
        },
    }


REGRESSION_NAMES = {
    "model_score": "CNN score (per 0.1)",
    "age": "Age (per 10 years)",
    "male_sex": "Male sex",
    "long_axis": "Long axis (per 10 mm)",
}


def _regression(group, model_key):
    fit = group.get("regression", {}).get(model_key)
    if not fit:
        return None
    if "error" in fit:
        return {"error": fit["error"]}
    names = dict(REGRESSION_NAMES)
    if model_key.startswith("model:radiomics-"):
        names["model_score"] = "Radiomics score (per 0.1)"
    return {
        "n": fit["n"],
        "left_out": fit["n_left_out"],
        "converged": fit["converged"],
        "separation": fit["separation"],
        "rows": [
            {
                "name": names.get(c["name"], c["name"]),
                "or": fmt(c["odds_ratio"]),
                "ci": fmt_ci(c["ci_low"], c["ci_high"]),
                "p": fmt_p(c["p"]),
            }
            for c in fit["coefficients"]
        ],
    }


def _mrmc(group, model_key):
    block = group.get("mrmc", {})
    if "error" in block:
        return {"error": block["error"]}
    if model_key is None:
        readers = block.get("readers")
        if not readers or "error" in readers:
            return {"error": (readers or {}).get("error", "no readers to analyse")}
        return {
            "sentence": f"Readers' mean AUC {fmt(readers['estimate'])}, 95 % CI "
            f"{fmt_ci(readers['ci_low'], readers['ci_high'])} (random readers and cases)."
        }
    result = block.get("models", {}).get(model_key)
    if not result:
        return None
    if "error" in result:
        return {"error": result["error"]}
    names = {
        "rrrc": "Random readers, random cases",
        "frrc": "Fixed readers, random cases",
        "rrfc": "Random readers, fixed cases",
    }
    return {
        "sentence": result["sentence"],
        "rows": [
            {
                "name": name,
                "difference": fmt(result[key]["mean_difference"]),
                "ci": fmt_ci(result[key]["ci_low"], result[key]["ci_high"]),
                "df": fmt(result[key]["df"], 1) if result[key]["df"] is not None else "∞ (z)",
                "p": fmt_p(result[key]["p"]),
            }
            for key, name in names.items()
        ],
    }


AIDED_METRICS = (
    ("auc", "AUC"),
    ("sensitivity", "Sensitivity at the readers' own calls"),
    ("specificity", "Specificity at the readers' own calls"),
)
CHANGE_COLUMNS = (
    ("unchanged", "unchanged"),
    ("benign_to_malignant", "benign → malignant"),
    ("malignant_to_benign", "malignant → benign"),
    ("corrected", "corrected"),
    ("newly_wrong", "newly wrong"),
)


def _aided(result) -> dict | None:
    """The aided − unaided block of a sequential reader study: sentences, OR tests, per reader, call changes."""
    block = result.get("aided_vs_unaided")
    if block is None:
        return None
    model = (block.get("frozen_model") or {}).get("name") or "no model version frozen"
    if "error" in block:
        return {"error": block["error"], "model": model}
    names = {
        "rrrc": "Random readers, random cases",
        "frrc": "Fixed readers, random cases",
        "rrfc": "Random readers, fixed cases",
    }
    metrics = []
    for key, label in AIDED_METRICS:
        metric = block.get(key)
        if not metric:
            continue
        metrics.append(
            {
                "key": key,
                "label": label,
                "sentence": metric.get("sentence", ""),
                "unaided": fmt(metric["unaided"]),
                "aided": fmt(metric["aided"]),
                "rows": [
                    {
                        "name": name,
                        "difference": fmt(metric[k]["difference"]),
                        "ci": fmt_ci(metric[k]["ci_low"], metric[k]["ci_high"]),
                        "p": fmt_p(metric[k]["p"]),
                    }
                    for k, name in names.items()
                ],
                "readers": [
                    {
                        "name": reader,
                        "unaided": fmt(d["unaided"]),
                        "aided": fmt(d["aided"]),
                        "difference": fmt(d["difference"]),
                        "ci": fmt_ci(d["ci_low"], d["ci_high"]),
                        "p": fmt_p(d["p"]),
                    }
                    for reader, d in metric["per_reader"].items()
                ],
            }
        )
    changes = block.get("call_changes")
    change_rows = []
    if changes:
        rows = [*changes.get("per_reader", {}).items(), ("all readers", changes.get("pooled"))]
        change_rows = [
            {"name": name, "cells": [f"{counts[k]} / {counts['reads']}" for k, _ in CHANGE_COLUMNS]}
            for name, counts in rows
            if counts
        ]
    return {
        "model": model,
        "metrics": metrics,
        "n_readers": len(block.get("readers", [])),
        "change_columns": [label for _, label in CHANGE_COLUMNS],
        "change_rows": change_rows,
    }


PLAN_ANALYSES = (
    ("rrrc", "Random readers, random cases"),
    ("frrc", "Fixed readers, random cases"),
    ("rrfc", "Random readers, fixed cases"),
)


def _cases_needed(needed, plan) -> str:
    unit = plan["unit"]
    if needed["cases"] is not None:
        return f"{needed['cases']} {unit} (power {fmt(needed['power'])})"
    limit = needed.get("power_limit")
    if limit is not None and limit < plan["power"]:
        return f"not reachable (power at most {fmt(limit)} with unlimited {unit})"
    return f"more than {plan['max_cases']} {unit}"


def _plan(result) -> dict | None:
    """The power tables of the next aided-versus-unaided study (RRRC first), or the line saying what is needed."""
    plan = result.get("study_plan")
    if plan is None:
        return None
    if "error" in plan:
        return {"error": plan["error"]}
    analyses = []
    for key, name in PLAN_ANALYSES:
        block = plan["analyses"][key]
        rows = [
            {
                "readers": readers,
                "needed": _cases_needed(needed, plan),
                "cells": [
                    {"power": fmt(p), "reached": p is not None and p >= plan["power"]}
                    for p in powers
                ],
            }
            for readers, powers, needed in zip(
                block["readers"], block["power"], block["cases_needed"]
            )
        ]
        analyses.append({"key": key, "name": name, "cases": block["cases"], "rows": rows})
    return {
        "effect": fmt(plan["effect"], 3).rstrip("0").rstrip("."),
        "power": f"{plan['power']:g}",
        "alpha": f"{plan['alpha']:g}",
        "unit": plan["unit"],
        "method": plan["method"],
        "source": plan["source"],
        "observed": fmt(plan.get("observed_difference"), 3),
        "analyses": analyses,
    }


def _is_cm_versus_ex(first_key, second_key) -> bool:
    """The source study's test: CM against EX within one model family (``model:CM``/``model:EX``,
    ``model:radiomics-CM``/...)."""
    first, second = first_key.removeprefix("model:"), second_key.removeprefix("model:")
    family_first, _, variant_first = first.rpartition("-")
    family_second, _, variant_second = second.rpartition("-")
    return family_first == family_second and {variant_first, variant_second} == {"CM", "EX"}


def _phases(group):
    block = group.get("phase_comparison")
    if not block:
        return None
    if "error" in block:
        return {"error": block["error"]}
    rows = []
    for pair in block["pairwise"]:
        highlighted = _is_cm_versus_ex(pair["first"], pair["second"])
        rows.append(
            {
                **_comparison_row(f"{pair['first_label']} − {pair['second_label']}", pair),
                "p_holm": fmt_p(pair["p_holm"]),
                "highlight": highlighted,
            }
        )
    return {
        "chi_square": fmt(block["chi_square"]),
        "df": block["df"],
        "p": fmt_p(block["p"]),
        "rows": rows,
    }


def _kappa(group, labels):
    block = group.get("kappa", {})
    rows = []
    for pair in block.get("cohen", []):
        rows.append(
            {
                "label": f"{pair['first_label']} / {pair['second_label']}",
                "simulated": labels.get(pair["first"], {}).get("simulated")
                or labels.get(pair["second"], {}).get("simulated"),
                "kappa": fmt(pair.get("kappa")),
                "ci": fmt_ci(pair.get("ci_low"), pair.get("ci_high")),
                "agreement": "n/a"
                if pair.get("observed_agreement") is None
                else f"{100 * pair['observed_agreement']:.0f} %",
                "error": pair.get("error"),
            }
        )
    fleiss = block.get("fleiss")
    return {"rows": rows, "fleiss": fleiss, "fleiss_kappa": fmt((fleiss or {}).get("kappa"))}


def page_context(inputs, row, query) -> dict:
    """Everything the template prints, as strings and small dicts."""
    result = row.result if row is not None and row.state == "done" else {}
    groups = result.get("subgroups", [])
    group_key = query.get("subgroup", "all")
    group = next((g for g in groups if g["key"] == group_key), groups[0] if groups else {})
    model_key = selected_model_key(inputs.analysed_models, query)
    labels = _labels(result)
    options_query = inputs.options.as_query()
    keep = {
        k: v
        for k, v in query.items()
        if k in ("subgroup", "model", "include_unblinded", "patient_level", "effect")
    }
    context = {
        "reader_study": inputs.reader_study,
        "inputs": inputs,
        "row": row,
        "state": row.state if row is not None else "missing",
        "computing": row is not None and row.state in ("pending", "running"),
        "result": result,
        "group": group,
        "subgroups": [
            {"key": g["key"], "label": g["label"], "n": g["n"], "selected": g is group}
            for g in groups
        ],
        "models": [
            {
                "key": m.key,
                "choice": m.choice,
                "variant": m.variant,
                "label": m.label,
                "selected": m.key == model_key,
            }
            for m in inputs.analysed_models
        ],
        "model_key": model_key,
        "model_label": labels.get(model_key, {}).get("label", ""),
        "options": inputs.options,
        "query": urlencode(keep),
        "options_query": options_query,
        "exclusions": result.get("exclusions", inputs.exclusions),
        "readers": inputs.readers,
        "model_columns": inputs.models,
        "lesion_rows": lesion_table_body(inputs),
        "svg": mark_safe(inline_roc_svg(row, group["key"]))
        if result and group and "error" not in group
        else "",
        "has_simulated": any(r.simulated for r in inputs.readers),
        "aided": _aided(result),
        "plan": _plan(result),
        "frozen_model": result.get("frozen_model") or inputs.frozen_model,
    }
    if group and "error" not in group:
        delong = group.get("model_vs_reader_delong", {}).get(model_key, [])
        context.update(
            {
                "auc_rows": _auc_rows(group, labels),
                "model_vs_readers": [
                    _comparison_row(d["label"], d, d["simulated"]) for d in delong
                ],
                "phases": _phases(group),
                "operating_rows": _operating_rows(group, result),
                "regression": _regression(group, model_key),
                "kappa": _kappa(group, labels),
                "mrmc": _mrmc(group, model_key),
            }
        )
    return context
