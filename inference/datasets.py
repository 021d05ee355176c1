"""Patch datasets from the archive and the annotations (the thin Django layer over ``patches``).

For each lesion with an ROI on a phase: the ROI's series is read through pydicom
(only the ROI slice and its neighbours, in slice_position order), the ROI centre is
projected onto each slice, and :func:`inference.patches.extract_lesion_patches`
makes the windowed patches. Patches are cached on disk under
``settings.VAR_DIR / "patch-cache"``, keyed by what produced them (the instances'
sha256, the ROI geometry, the patch parameters and :data:`PATCH_CODE_VERSION`), so
a retrain does not re-read every DICOM file and a changed ROI or a new patch size
never reuses a stale patch.

The radiomics family reads each reference ROI's own slice the same way and gets its
IBSI features from :func:`inference.radiomics.compute_features`, cached under
``settings.VAR_DIR / "feature-cache"`` keyed by the slice's sha256, the ROI geometry,
the radiomics settings, :data:`FEATURE_CODE_VERSION` and the mirp version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from annotations.geometry import patient_to_pixel
from annotations.measurements import roi_mask
from annotations.models import ROI, Lesion
from archive.models import Instance

from . import radiomics
from .experiments import PatchSpec
from .heatmaps import PatchWindow, patch_window
from .patches import (
    extract_lesion_patches,
    neighbour_indices,
    roi_mask_channels,
    stack_phases,
)
from .radiomics import RadiomicsSettings

PATCH_CODE_VERSION = 1  # bump when extraction changes, so cached patches are rebuilt


class PatchError(ValueError):
    """A lesion whose patches cannot be made (the message says which ROI and why)."""


@dataclass
class LesionPatches:
    """Patches of a set of lesions: ``patches`` is ``(lesions, samples, size, size, phases)``."""

    lesion_ids: list[int]
    patient_ids: list[int]
    labels: np.ndarray  # 1 malignant, 0 benign, -1 unknown (no pathology)
    pathology_revisions: list[int | None]
    patches: np.ndarray
    roi_extent_mm: (
        np.ndarray
    )  # each lesion's reference-ROI extent on its first phase (auxiliary targets)


def reference_roi(lesion: Lesion, phase: str) -> ROI | None:
    """The lesion's ROI on ``phase``: the reference ROI if there is one, else the latest drawn."""
    rois = [r for r in lesion.rois.all() if r.phase == phase]
    if not rois:
        return None
    rois.sort(key=lambda r: (r.is_reference, r.updated_at or r.created_at, r.pk))
    return rois[-1]


def lesions_with_phases(phases, require_pathology: bool, lesion_ids=None):
    """Lesions having an ROI on every phase of ``phases`` (and pathology, if required), and a count of the rest.

    Returns ``(lesions, excluded)`` where ``excluded`` maps a reason to a number of lesions.
    """
    queryset = (
        Lesion.objects.select_related("study__patient", "pathology")
        .prefetch_related("rois")
        .order_by("pk")
    )
    if lesion_ids is not None:
        queryset = queryset.filter(pk__in=lesion_ids)
    kept, excluded = [], {}
    for lesion in queryset:
        pathology = getattr(lesion, "pathology", None)
        missing = [p for p in phases if reference_roi(lesion, p) is None]
        if require_pathology and pathology is None:
            reason = "no pathology"
        elif missing:
            reason = f"no ROI on {'+'.join(missing)}"
        else:
            kept.append(lesion)
            continue
        excluded[reason] = excluded.get(reason, 0) + 1
    return kept, excluded


def _roi_slices(roi: ROI, neighbours: int) -> tuple[list[Instance], int]:
    instances = list(roi.series.instances.all())  # ordered by slice_position
    if not instances:
        raise PatchError(f"ROI {roi.pk}: series {roi.series.series_instance_uid} has no instances")
    uids = [i.sop_instance_uid for i in instances]
    if roi.sop_instance_uid in uids:
        centre = uids.index(roi.sop_instance_uid)
    else:  # drawn on an instance no longer in the series: the slice nearest the ROI centre
        z = roi.centre[2]
        centre = int(
            np.argmin([abs((i.image_position_patient or [0, 0, 0])[2] - z) for i in instances])
        )
    indices = neighbour_indices(centre, neighbours, len(instances))
    return [instances[i] for i in indices], neighbours


def patch_cache_key(instances: list[Instance], roi: ROI, spec: PatchSpec) -> str:
    """Content key of one ROI's patches: instance checksums, ROI geometry, patch parameters, code version."""
    content = {
        "code": PATCH_CODE_VERSION,
        "instances": [i.sha256 for i in instances],
        "roi": {
            "points": roi.points,
            "sop_instance_uid": roi.sop_instance_uid,
            "frame": roi.frame_number,
        },
        "spec": [
            spec.field_of_view_mm,
            spec.size_px,
            spec.neighbours,
            spec.window_level,
            spec.window_width,
        ]
        + ([spec.roi_scale] if spec.roi_scale else [])
        + ([{"mask_scale": spec.mask_scale}] if spec.mask_scale else []),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def roi_extent_mm(roi: ROI) -> float:
    """Largest distance (mm) of an ROI point from the ROI centre: the radius of a circle,
    half a rectangle's diagonal."""
    centre = np.asarray(roi.centre, float)
    return float(max(np.linalg.norm(np.asarray(p, float) - centre) for p in roi.points))


def cache_dir() -> Path:
    return Path(settings.VAR_DIR) / "patch-cache"


def _read_hu(instance: Instance) -> np.ndarray:
    if instance.number_of_frames and instance.number_of_frames > 1:
        raise PatchError(
            f"instance {instance.sop_instance_uid}: multi-frame images are not supported for patches"
        )
    return instance.pixels_hu()


def roi_patches(roi: ROI, spec: PatchSpec, use_cache: bool = True) -> np.ndarray:
    """Windowed patches ``(2k+1, size, size)`` of one ROI (from the cache when the same content made them)."""
    instances, centre_index = _roi_slices(roi, spec.neighbours)
    key = patch_cache_key(instances, roi, spec)
    path = cache_dir() / key[:2] / f"{key}.npy"
    if use_cache and path.is_file():
        return np.load(path)
    reference = instances[centre_index]
    if not (
        reference.image_position_patient
        and reference.image_orientation_patient
        and reference.pixel_spacing
    ):
        raise PatchError(
            f"ROI {roi.pk}: instance {reference.sop_instance_uid} lacks position, orientation or spacing"
        )
    unique = {i.pk: _read_hu(i) for i in instances}
    volume = np.stack([unique[i.pk] for i in instances])
    centre_rc = patient_to_pixel(
        roi.centre,
        reference.image_position_patient,
        reference.image_orientation_patient,
        reference.pixel_spacing,
    )
    patches = extract_lesion_patches(
        volume,
        reference.pixel_spacing,
        centre_rc,
        centre_index,
        spec.neighbours,
        spec.field_of_view_for(roi_extent_mm(roi)),
        spec.size_px,
        spec.window_level,
        spec.window_width,
        spec.mask_radius_for(roi_extent_mm(roi)),
    )
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            np.save(handle, patches)
        os.replace(handle.name, path)  # atomic: a concurrent reader never sees half a file
    return patches


def roi_patch_window(roi: ROI, spec: PatchSpec) -> tuple[Instance, PatchWindow]:
    """The instance a phase's patch is centred on (the ROI slice) and the patch's window on that image.

    A heat map over the patch is placed on the image with this window
    (:func:`inference.heatmaps.patch_window`).
    """
    instances, centre_index = _roi_slices(roi, spec.neighbours)
    reference = instances[centre_index]
    if not (
        reference.image_position_patient
        and reference.image_orientation_patient
        and reference.pixel_spacing
    ):
        raise PatchError(
            f"ROI {roi.pk}: instance {reference.sop_instance_uid} lacks position, orientation or spacing"
        )
    centre_rc = patient_to_pixel(
        roi.centre,
        reference.image_position_patient,
        reference.image_orientation_patient,
        reference.pixel_spacing,
    )
    return reference, patch_window(
        centre_rc, reference.pixel_spacing, spec.field_of_view_for(roi_extent_mm(roi))
    )


def lesion_patches(lesion: Lesion, phases, spec: PatchSpec, use_cache: bool = True) -> np.ndarray:
    """``(samples, size, size, phases)``: each phase from its own ROI, stacked as channels.

    With ``spec.roi_channels`` two mask channels follow (the first phase's ROI disc and
    its rim: :func:`inference.patches.roi_mask_channels`).
    """
    per_phase = []
    for phase in phases:
        roi = reference_roi(lesion, phase)
        if roi is None:
            raise PatchError(f"lesion {lesion.pk} has no ROI on {phase}")
        per_phase.append(roi_patches(roi, spec, use_cache))
    stacked = stack_phases(per_phase)
    if spec.roi_channels:
        extent = roi_extent_mm(reference_roi(lesion, phases[0]))
        masks = roi_mask_channels(
            len(stacked), spec.size_px, spec.field_of_view_for(extent), extent
        )
        stacked = np.concatenate([stacked, masks], axis=-1)
    return stacked


def _label_and_revision(lesion: Lesion) -> tuple[int, int | None]:
    """1 malignant / 0 benign / -1 without pathology, and the pathology revision the label came from."""
    pathology = getattr(lesion, "pathology", None)
    return (-1, None) if pathology is None else (int(pathology.malignant), pathology.revision)


def build_lesion_patches(
    lesions, phases, spec: PatchSpec, use_cache: bool = True, progress=None
) -> LesionPatches:
    """Patches of ``lesions`` (from :func:`lesions_with_phases`); ``progress(done, total)`` is called as it goes."""
    arrays, labels, revisions, extents = [], [], [], []
    for done, lesion in enumerate(lesions, start=1):
        arrays.append(lesion_patches(lesion, phases, spec, use_cache))
        extents.append(roi_extent_mm(reference_roi(lesion, phases[0])))
        label, revision = _label_and_revision(lesion)
        labels.append(label)
        revisions.append(revision)
        if progress is not None:
            progress(done, len(lesions))
    shape = (
        0,
        2 * spec.neighbours + 1,
        spec.size_px,
        spec.size_px,
        len(phases) + 2 * spec.roi_channels,
    )
    return LesionPatches(
        lesion_ids=[l.pk for l in lesions],
        patient_ids=[l.study.patient_id for l in lesions],
        labels=np.asarray(labels, dtype=np.int64),
        pathology_revisions=revisions,
        patches=np.stack(arrays).astype(np.float32) if arrays else np.zeros(shape, np.float32),
        roi_extent_mm=np.asarray(extents, float),
    )


# --- radiomics features (the thin Django layer over ``radiomics``) --------------------------

FEATURE_CODE_VERSION = 1  # bump when feature computation changes, so cached features are recomputed


class FeatureError(ValueError):
    """A lesion whose radiomics features cannot be computed (the message names the ROI and why)."""


@dataclass
class LesionFeatures:
    """Features of a set of lesions: ``features`` is ``(lesions, len(feature_names))``, NaN where undefined."""

    lesion_ids: list[int]
    patient_ids: list[int]
    labels: np.ndarray  # 1 malignant, 0 benign, -1 unknown (no pathology)
    pathology_revisions: list[int | None]
    feature_names: list[str]  # "<phase>:<mirp feature name>"
    features: np.ndarray


def feature_cache_dir() -> Path:
    return Path(settings.VAR_DIR) / "feature-cache"


def feature_cache_key(instance: Instance, roi: ROI, radiomics_settings: RadiomicsSettings) -> str:
    """Content key of one ROI's features: the slice's checksum, ROI geometry, settings, code and mirp versions."""
    content = {
        "code": FEATURE_CODE_VERSION,
        "mirp": importlib.metadata.version("mirp"),
        "instance": instance.sha256,
        "roi": {
            "tool": roi.tool,
            "points": roi.points,
            "sop_instance_uid": roi.sop_instance_uid,
            "frame": roi.frame_number,
        },
        "settings": dataclasses.asdict(radiomics_settings),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=list).encode()).hexdigest()


def roi_features(
    roi: ROI, radiomics_settings: RadiomicsSettings, use_cache: bool = True
) -> dict[str, float]:
    """IBSI features of one ROI on the slice it was drawn on (from the cache when the same content made them).

    Raises :class:`FeatureError` naming the ROI when its slice lacks geometry, is
    multi-frame, or the ROI encloses no pixel of it.
    """
    where = f"ROI {roi.pk} ({roi.phase}, lesion {roi.lesion_id})"
    instances, _ = _roi_slices(roi, 0)
    instance = instances[0]
    key = feature_cache_key(instance, roi, radiomics_settings)
    path = feature_cache_dir() / key[:2] / f"{key}.json"
    if use_cache and path.is_file():
        return json.loads(path.read_text())
    if not (
        instance.image_position_patient
        and instance.image_orientation_patient
        and instance.pixel_spacing
    ):
        raise FeatureError(
            f"{where}: instance {instance.sop_instance_uid} lacks position, orientation or spacing"
        )
    try:
        image = _read_hu(instance)
        mask = roi_mask(
            roi.tool,
            roi.points,
            instance.image_position_patient,
            instance.image_orientation_patient,
            instance.pixel_spacing,
            image.shape,
        )
    except (PatchError, radiomics.RoiMaskError) as exc:
        raise FeatureError(f"{where}: {exc}") from None
    features = radiomics.compute_features(image, instance.pixel_spacing, mask, radiomics_settings)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, suffix=".tmp", delete=False
        ) as handle:
            json.dump(features, handle)
        os.replace(handle.name, path)  # atomic: a concurrent reader never sees half a file
    return features


def lesion_features(
    lesion: Lesion, phases, radiomics_settings: RadiomicsSettings, use_cache: bool = True
) -> dict[str, float]:
    """Every phase's reference-ROI features, named ``<phase>:<feature>``."""
    features = {}
    for phase in phases:
        roi = reference_roi(lesion, phase)
        if roi is None:
            raise FeatureError(f"lesion {lesion.pk} has no ROI on {phase}")
        features.update(
            {
                f"{phase}:{name}": value
                for name, value in roi_features(roi, radiomics_settings, use_cache).items()
            }
        )
    return features


def build_lesion_features(
    lesions, phases, radiomics_settings: RadiomicsSettings, use_cache: bool = True, progress=None
) -> LesionFeatures:
    """Features of ``lesions`` (from :func:`lesions_with_phases`); ``progress(done, total)`` is called as it goes."""
    rows, labels, revisions = [], [], []
    for done, lesion in enumerate(lesions, start=1):
        rows.append(lesion_features(lesion, phases, radiomics_settings, use_cache))
        label, revision = _label_and_revision(lesion)
        labels.append(label)
        revisions.append(revision)
        if progress is not None:
            progress(done, len(lesions))
    matrix, names = radiomics.feature_matrix(rows)
    return LesionFeatures(
        lesion_ids=[l.pk for l in lesions],
        patient_ids=[l.study.patient_id for l in lesions],
        labels=np.asarray(labels, dtype=np.int64),
        pathology_revisions=revisions,
        feature_names=names,
        features=matrix,
    )
