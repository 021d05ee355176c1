"""A synthetic cohort on disk: every study's DICOM files, ``cohort.csv`` and a preview PNG.

:func:`write_cohort` samples the latents (:mod:`cohort.latents`), renders each patient
(:mod:`cohort.anatomy`, :mod:`cohort.dicom`) and writes ``<out>/<pseudonym>/<phase>/IM0001.dcm
...`` plus ``cohort.csv``, one row of ground truth per lesion (subtypes spelled as in
:mod:`archive.vocabulary`). It returns what :mod:`cohort.importer` needs to load the cohort.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from archive.vocabulary import PHASES
from cohort.anatomy import RenderedStudy, render_volumes
from cohort.dicom import (
    series_description,
    series_template,
    slice_dataset,
    sop_instance_uid,
    study_uids,
)
from cohort.figures import figure
from cohort.latents import LesionLatents, PatientCase, sample_cohort
from cohort.oracle import OracleAUC, oracle_auc
from cohort.spec import CohortSpec


class RoiTruth(NamedTuple):
    """The lesion's ROI in one phase: a disc of ``radius_mm`` around (x, y) on the slice at z."""

    phase: str
    SeriesInstanceUID: str
    x_mm: float
    y_mm: float
    z_mm: float
    SOPInstanceUID: str
    InstanceNumber: int
    radius_mm: float
    mean_hu: float


class LesionTruth(NamedTuple):
    """Ground truth of one lesion (one row of ``cohort.csv``)."""

    case: PatientCase
    lesion: LesionLatents
    StudyInstanceUID: str
    rois: dict[str, RoiTruth]

    def csv_row(self) -> dict[str, object]:
        lesion, case = self.lesion, self.case
        row: dict[str, object] = {
            "patient_id": case.patient_id,
            "age": case.age,
            "sex": case.sex,
            "study_instance_uid": self.StudyInstanceUID,
            "lesion_id": lesion.lesion_id,
            "side": lesion.side,
            "size_mm": round(lesion.size_mm, 1),
            "subtype": lesion.subtype,
            "malignant": int(lesion.malignant),
            "oracle_llr": round(lesion.oracle_llr, 4),
            "pattern": lesion.pattern,
            "inversion": int(lesion.inversion),
            "exophytic": int(lesion.exophytic),
        }
        for phase, roi in self.rois.items():
            row.update(
                {
                    f"{phase}_series_instance_uid": roi.SeriesInstanceUID,
                    f"{phase}_x_mm": round(roi.x_mm, 2),
                    f"{phase}_y_mm": round(roi.y_mm, 2),
                    f"{phase}_z_mm": round(roi.z_mm, 2),
                    f"{phase}_sop_instance_uid": roi.SOPInstanceUID,
                    f"{phase}_instance_number": roi.InstanceNumber,
                    f"{phase}_radius_mm": round(roi.radius_mm, 2),
                    f"{phase}_mean_hu": round(roi.mean_hu, 1),
                    f"{phase}_oracle_llr": round(lesion.oracle_llr_phase[phase], 4),
                    f"{phase}_heterogeneous": int(lesion.heterogeneous[phase]),
                }
            )
        return row


def lesion_truths(case: PatientCase, spec: CohortSpec) -> list[LesionTruth]:
    """Ground truth of every lesion of ``case``, from latents only (no rendering needed)."""
    uids = study_uids(case, spec)
    truths = []
    for lesion in case.lesions:
        rois = {}
        for phase in PHASES:
            sx, sy, _ = case.shift_mm(phase, spec)
            k = lesion.centre_slice + case.shift_voxels[phase][0]
            rois[phase] = RoiTruth(
                phase,
                uids.SeriesInstanceUID[phase],
                lesion.centre_mm[0] + sx,
                lesion.centre_mm[1] + sy,
                float(spec.slice_z(k)),
                sop_instance_uid(case, spec, phase, k),
                k + 1,
                lesion.roi_radius_mm,
                lesion.mean_hu[phase],
            )
        truths.append(LesionTruth(case, lesion, uids.StudyInstanceUID, rois))
    return truths


def circle_points(x_mm, y_mm, z_mm, radius_mm):
    """The 4 points of an axial circle as Cornerstone's ellipse tool stores them (top, bottom, left, right)."""
    return [
        [x_mm, y_mm - radius_mm, z_mm],
        [x_mm, y_mm + radius_mm, z_mm],
        [x_mm - radius_mm, y_mm, z_mm],
        [x_mm + radius_mm, y_mm, z_mm],
    ]


class SeriesFiles(NamedTuple):
    phase: str
    SeriesInstanceUID: str
    paths: list[Path]


class StudyFiles(NamedTuple):
    patient_id: str
    StudyInstanceUID: str
    directory: Path
    series: dict[str, SeriesFiles]


class CohortFiles(NamedTuple):
    """What :func:`write_cohort` wrote: the CSV, every study's files and every lesion's truth."""

    csv_path: Path
    studies: list[StudyFiles]
    truths: list[LesionTruth]
    oracle: OracleAUC


def write_csv(path: Path | str, truths: Sequence[LesionTruth]) -> Path:
    """``cohort.csv``: one row per lesion (see :meth:`LesionTruth.csv_row`)."""
    path = Path(path)
    rows = [t.csv_row() for t in truths]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["patient_id"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_study(rendered: RenderedStudy, out_dir: Path | str) -> StudyFiles:
    """Write ``<out>/<pseudonym>/<phase>/IM0001.dcm ...`` for one rendered study."""
    case, spec = rendered.case, rendered.spec
    uids = study_uids(case, spec)
    directory = Path(out_dir) / case.patient_id
    series = {}
    for phase in PHASES:
        folder = directory / phase
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        template = series_template(case, spec, phase, uids)
        for k in range(spec.slices):
            path = folder / f"IM{k + 1:04d}.dcm"
            slice_dataset(case, spec, phase, k, rendered.hu[phase][k], template).save_as(
                path, enforce_file_format=True
            )
            paths.append(path)
        series[phase] = SeriesFiles(phase, uids.SeriesInstanceUID[phase], paths)
    return StudyFiles(case.patient_id, uids.StudyInstanceUID, directory, series)


def write_cohort(
    spec: CohortSpec,
    out_dir: Path | str,
    progress: Callable[[Sequence[PatientCase]], Iterable[PatientCase]] | None = None,
    preview: Path | str | None = None,
    preview_patient: int = 0,
) -> CohortFiles:
    """Generate and write the whole cohort: one study per patient, ``cohort.csv``, optionally a preview PNG.

    ``progress`` wraps the sequence of cases (e.g. ``tqdm``); ``preview`` gets the
    first lesion of patient ``preview_patient`` (0-based). Returns the paths
    and ground truth an importer needs. Deterministic for ``spec``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = sample_cohort(spec)
    truths = [t for case in cases for t in lesion_truths(case, spec)]
    studies = []
    for case in progress(cases) if progress else cases:
        rendered = render_volumes(case, spec)
        studies.append(write_study(rendered, out_dir))
        if preview is not None and case.index == preview_patient:
            save_preview(preview, rendered)
    csv_path = write_csv(out_dir / "cohort.csv", truths)
    return CohortFiles(csv_path, studies, truths, oracle_auc([t.lesion for t in truths]))


def save_preview(path: Path | str, rendered: RenderedStudy, lesion_index: int = 0) -> Path:
    """PNG of the four phases through one lesion's centre at W400/L40: whole slices above, lesion close-ups below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    case, spec = rendered.case, rendered.spec
    lesion = case.lesions[lesion_index]
    truth = lesion_truths(case, spec)[lesion_index]
    center, width = figure("window")
    low, high = spec.first_pixel_mm - spec.pixel_mm / 2, -spec.first_pixel_mm + spec.pixel_mm / 2
    fig, axes = plt.subplots(
        2, 4, figsize=(16, 8.6), facecolor="black", gridspec_kw={"height_ratios": [1, 0.9]}
    )
    for column, phase in enumerate(PHASES):
        roi = truth.rois[phase]
        image = rendered.hu[phase][roi.InstanceNumber - 1]
        for row, half in ((0, None), (1, 35.0)):
            ax = axes[row, column]
            ax.imshow(
                image,
                cmap="gray",
                vmin=center - width / 2,
                vmax=center + width / 2,
                extent=(low, high, high, low),
                interpolation="bilinear" if half is None else "nearest",
            )
            if half is None:
                ax.add_patch(
                    Circle(
                        (roi.x_mm, roi.y_mm),
                        lesion.size_mm / 2 + 6,
                        fill=False,
                        color="yellow",
                        lw=1,
                    )
                )
                ax.set_title(
                    series_description(phase, case.delay_s[phase]), color="white", fontsize=13
                )
            else:
                ax.set_xlim(roi.x_mm - half, roi.x_mm + half)
                ax.set_ylim(roi.y_mm + half, roi.y_mm - half)
                ax.add_patch(
                    Circle((roi.x_mm, roi.y_mm), roi.radius_mm, fill=False, color="red", lw=1)
                )
                ax.set_title(f"ROI mean {roi.mean_hu:.0f} HU", color="white", fontsize=11)
            ax.axis("off")
    fig.suptitle(
        f"{lesion.lesion_id}: {lesion.subtype}, {lesion.size_mm:.0f} mm, "
        f"{'malignant' if lesion.malignant else 'benign'} - synthetic, W400/L40",
        color="white",
        fontsize=14,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, facecolor="black")
    plt.close(fig)
    return path
