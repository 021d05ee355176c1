"""Lesion crops of a synthetic cohort rendered in memory: model inputs without an archive.

The portal's training path reads lesions from the archive (``inference.datasets``).
Benchmarks over many cohort seeds and the demo's model, which must never see the
demo reader study's patients, need the same inputs for cohorts that are not
imported. :func:`lesion_crops` renders each patient (``cohort.anatomy.render_volumes``,
the same pixels ``make_cohort`` writes as DICOM: int16 HU) and keeps, per lesion and
phase, a native-resolution crop around the reference ROI's centre on the slices
around it, with the ROI as ``make_cohort --import`` creates it (a disc of the
lesion's ``roi_radius_mm`` on the slice through its centre). Patches are then cut
from the crops with the very functions the archive path uses
(:func:`inference.patches.extract_lesion_patches`), so a model trained here scores
archive lesions the same way.

No Keras; radiomics features through :mod:`inference.radiomics` (mirp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archive.vocabulary import PHASES
from cohort.anatomy import render_volumes
from cohort.files import circle_points, lesion_truths
from cohort.latents import LesionLatents, sample_cohort
from cohort.spec import CohortSpec
from inference.experiments import PatchSpec
from inference.patches import extract_lesion_patches, roi_mask_channels, stack_phases

CROP_HALF_MM = 48.0  # largest field of view a crop serves (96 mm square)
CROP_HALF_SLICES = 8


@dataclass
class LesionCrops:
    """Per lesion: ``crops[phase]`` is ``(lesions, 2 * half_slices + 1, n, n)`` int16 HU around the ROI centre.

    Slices run in the archive's order (slice position ascending, inferior first).
    """

    spec: CohortSpec
    lesions: list[LesionLatents]
    patient_index: np.ndarray
    labels: np.ndarray
    crops: dict[str, np.ndarray]
    centre_rc: dict[str, np.ndarray]  # (lesions, 2): the ROI centre in crop pixels (row, column)
    roi_radius_mm: np.ndarray

    @property
    def pixel_mm(self) -> float:
        return self.spec.pixel_mm

    def patches(self, phases, patch: PatchSpec) -> np.ndarray:
        """``(lesions, samples, size, size, phases)`` windowed patches, as ``inference.datasets`` makes them."""
        centre = self.crops[phases[0]].shape[1] // 2
        out = []
        for i in range(len(self.lesions)):
            per_phase = [
                extract_lesion_patches(
                    self.crops[phase][i].astype(np.float32),
                    (self.pixel_mm, self.pixel_mm),
                    self.centre_rc[phase][i],
                    centre,
                    patch.neighbours,
                    patch.field_of_view_for(float(self.roi_radius_mm[i])),
                    patch.size_px,
                    patch.window_level,
                    patch.window_width,
                    patch.mask_radius_for(float(self.roi_radius_mm[i])),
                )
                for phase in phases
            ]
            stacked = stack_phases(per_phase)
            if patch.roi_channels:
                extent = float(self.roi_radius_mm[i])
                masks = roi_mask_channels(
                    len(stacked), patch.size_px, patch.field_of_view_for(extent), extent
                )
                stacked = np.concatenate([stacked, masks], axis=-1)
            out.append(stacked)
        return np.stack(out)

    def roi_features(self, index: int, phase: str, settings) -> dict[str, float]:
        """IBSI features (:func:`inference.radiomics.compute_features`) of lesion ``index``'s
        reference ROI on ``phase``.

        The ROI is the imported one (a circle through four points, as the ellipse tool
        stores it) on the crop's centre slice, in crop coordinates: its pixels and
        outline are those of the whole slice, so the features equal the archive's.
        """
        from annotations.measurements import roi_mask
        from inference.radiomics import compute_features

        row, column = self.centre_rc[phase][index]
        x_mm, y_mm = column * self.pixel_mm, row * self.pixel_mm
        image = self.crops[phase][index][CROP_HALF_SLICES]
        points = circle_points(x_mm, y_mm, 0.0, float(self.roi_radius_mm[index]))
        mask = roi_mask(
            "ellipse", points, (0.0, 0.0, 0.0), AXIAL, (self.pixel_mm, self.pixel_mm), image.shape
        )
        return compute_features(image, (self.pixel_mm, self.pixel_mm), mask, settings)

    def feature_rows(self, phases, settings) -> list[dict[str, float]]:
        """Per lesion the ``<phase>:<feature>`` dict a radiomics model reads (:func:`roi_features` of each phase)."""
        return [
            {
                f"{phase}:{name}": value
                for phase in phases
                for name, value in self.roi_features(i, phase, settings).items()
            }
            for i in range(len(self.lesions))
        ]


AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def lesion_crops(spec: CohortSpec) -> LesionCrops:
    """Render every patient of ``spec`` and keep the crops of each lesion (about 0.4 s per patient at 256 px)."""
    half_px = int(np.ceil(CROP_HALF_MM / spec.pixel_mm)) + 2
    lesions, patients, crops, centres, radii = (
        [],
        [],
        {p: [] for p in PHASES},
        {p: [] for p in PHASES},
        [],
    )
    for case in sample_cohort(spec):
        rendered = render_volumes(case, spec)
        padded = {
            phase: np.pad(
                rendered.hu[phase],
                ((CROP_HALF_SLICES,) * 2, (half_px,) * 2, (half_px,) * 2),
                mode="edge",
            )
            for phase in PHASES
        }
        for truth in lesion_truths(case, spec):
            lesions.append(truth.lesion)
            patients.append(case.index)
            radii.append(truth.lesion.roi_radius_mm)
            for phase in PHASES:
                roi = truth.rois[phase]
                row = (roi.y_mm - spec.first_pixel_mm) / spec.pixel_mm
                column = (roi.x_mm - spec.first_pixel_mm) / spec.pixel_mm
                r0, c0 = int(round(row)) - half_px, int(round(column)) - half_px
                k = roi.InstanceNumber - 1
                crop = padded[phase][
                    k : k + 2 * CROP_HALF_SLICES + 1,
                    r0 + half_px : r0 + 3 * half_px + 1,
                    c0 + half_px : c0 + 3 * half_px + 1,
                ]
                # The archive orders a series by slice position (z ascending); the generator's index runs downwards.
                crops[phase].append(crop[::-1].copy())
                centres[phase].append((row - r0, column - c0))
    return LesionCrops(
        spec=spec,
        lesions=lesions,
        patient_index=np.asarray(patients),
        labels=np.asarray([int(lesion.malignant) for lesion in lesions]),
        crops={p: np.stack(v) for p, v in crops.items()},
        centre_rc={p: np.asarray(v, float) for p, v in centres.items()},
        roi_radius_mm=np.asarray(radii, float),
    )
