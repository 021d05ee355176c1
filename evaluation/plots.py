"""ROC plot of one subgroup: every model and reader as a curve, readers' calls as points.

Framework-free: takes one subgroup of ``evaluation.stats.comparison.compare``'s result
and returns SVG text or PNG bytes. Matplotlib's object API with the Agg canvas
(no pyplot, so it is safe in threaded web servers and Celery workers).
"""

import io
import re

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

MODEL_COLOURS = [
    "#0b4f9c",
    "#c0392b",
    "#1e8449",
    "#7d3c98",
    "#b9770e",
    "#117a8b",
    "#34495e",
    "#a04000",
]
INSIDE_LEGEND_MAX = 8  # more curves than this: the legend goes beside the plot
READER_COLOURS = [
    "#5d6d7e",
    "#a6761d",
    "#e7298a",
    "#66a61e",
    "#7570b3",
    "#d95f02",
    "#1b9e77",
    "#666666",
    "#8c564b",
    "#17becf",
    "#bcbd22",
    "#9467bd",
]


def _label(entry, auc_by_key):
    auc = auc_by_key.get(entry["key"])
    text = entry["label"] + (" (simulated)" if entry.get("simulated") else "")
    return f"{text}  AUC {auc:.2f}" if auc is not None else text


def roc_figure(
    subgroup: dict, readers: list[dict], models: list[dict], title: str | None = None
) -> Figure:
    """A square ROC plot: models solid, readers dashed, each reader's call a filled marker."""
    inside = len(readers) + len(models) <= INSIDE_LEGEND_MAX
    width, height = (6.2, 5.9) if inside else (9.2, 5.9)
    figure = Figure(figsize=(width, height), dpi=100, facecolor="white")
    FigureCanvasAgg(figure)
    side = 4.9  # inches: the square plotting area
    axes = figure.add_axes((0.95 / width, 0.7 / height, side / width, side / height))
    axes.plot([0, 1], [0, 1], color="#9a9a9a", linestyle=":", linewidth=1.0, zorder=1)
    auc_by_key = {row["key"]: row["auc"] for row in subgroup.get("auc", [])}
    curves = subgroup.get("curves", {})
    handles = []
    for i, model in enumerate(models):
        curve = curves.get(model["key"])
        if curve is None:
            continue
        colour = MODEL_COLOURS[i % len(MODEL_COLOURS)]
        axes.plot(curve["fpr"], curve["tpr"], color=colour, linewidth=2.0, zorder=3)
        handles.append(Line2D([], [], color=colour, linewidth=2.0, label=_label(model, auc_by_key)))
    points = subgroup.get("reader_points", {})
    for i, reader in enumerate(readers):
        curve = curves.get(reader["key"])
        if curve is None:
            continue
        colour = READER_COLOURS[i % len(READER_COLOURS)]
        axes.plot(curve["fpr"], curve["tpr"], color=colour, linewidth=1.1, linestyle="--", zorder=2)
        point = points.get(reader["key"])
        marker = "s" if reader.get("simulated") else "o"
        if point and point["fpr"] is not None:
            axes.plot(
                [point["fpr"]],
                [point["tpr"]],
                marker=marker,
                markersize=6.5,
                color=colour,
                markeredgecolor="black",
                markeredgewidth=0.6,
                linestyle="none",
                zorder=4,
            )
        handles.append(
            Line2D(
                [],
                [],
                color=colour,
                linewidth=1.1,
                linestyle="--",
                marker=marker,
                markersize=5.5,
                markeredgecolor="black",
                markeredgewidth=0.6,
                label=_label(reader, auc_by_key),
            )
        )
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_aspect("equal")
    axes.set_xlabel("1 − specificity (false-positive rate)", fontsize=11)
    axes.set_ylabel("Sensitivity (true-positive rate)", fontsize=11)
    axes.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.tick_params(labelsize=10)
    axes.grid(True, color="#e5e5e5", linewidth=0.6, zorder=0)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    if title:
        axes.set_title(title, fontsize=11, loc="left")
    handles.append(Line2D([], [], color="#9a9a9a", linestyle=":", label="Chance"))
    if inside:
        legend = axes.legend(
            handles=handles,
            loc="lower right",
            fontsize=8.5,
            frameon=True,
            framealpha=0.95,
            edgecolor="#cccccc",
            handlelength=2.6,
            labelspacing=0.4,
        )
    else:
        legend = figure.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=((0.95 + side + 0.25) / width, 0.97),
            fontsize=8.5,
            frameon=False,
            handlelength=2.6,
            labelspacing=0.5,
        )
    legend.get_frame().set_linewidth(0.6)
    return figure


def roc_svg(subgroup, readers, models, title=None, inline: bool = False) -> str:
    """The ROC plot as SVG text (text kept as text); ``inline`` drops the XML prolog."""
    figure = roc_figure(subgroup, readers, models, title)
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "roc"}):
        figure.savefig(buffer, format="svg", facecolor="white", metadata={"Date": None})
    svg = buffer.getvalue()
    if inline:
        svg = svg[svg.index("<svg") :]
        # No height attribute: "auto" is not an SVG length (a console error); the viewBox keeps the aspect.
        svg = re.sub(r'width="[0-9.]+pt" height="[0-9.]+pt"', 'width="100%"', svg, count=1)
    return svg


def roc_png(subgroup, readers, models, title=None, dpi: int = 200) -> bytes:
    """The ROC plot as a PNG (``dpi`` 200 by default, for manuscripts)."""
    figure = roc_figure(subgroup, readers, models, title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    return buffer.getvalue()
