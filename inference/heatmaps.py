"""Heat maps of what drove a CNN's score: pure functions over NumPy arrays (no Django, no TensorFlow).

Two methods, chosen per model by :mod:`inference.gradcam` (worker code):

- **Grad-CAM** (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization", ICCV 2017): the last convolutional block's feature maps
  weighted by the spatial mean of the score's gradient, summed over features, ReLU. The
  score differentiated is the output's logit (the pre-sigmoid class score, as the paper
  uses the pre-softmax one). One spatial map per patch: with stacked phases every phase
  gets the same map.
- **Occlusion sensitivity** (Zeiler & Fergus, "Visualizing and Understanding
  Convolutional Networks", ECCV 2014), for models without a top-level convolutional
  block (``inception_v3``'s backbone is a nested model): a grid of cells, each set in turn
  to the window's low end (0) on one phase's channel; the map is the drop of the score.
  One map per phase.

Maps are averaged over a lesion's samples (the ROI slice and its neighbours, as the
lesion's score is their mean), the positive part kept and scaled to [0, 1] by the map's
maximum (all zeros when nothing raised the score), and kept at most
``max_side`` a side (block means).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PatchWindow:
    """Where a patch lies on its image: the top-left edge and extent in image pixel units.

    The image spans ``[0, Rows] x [0, Columns]`` (pixel ``i`` covers ``i .. i + 1``), so
    a map of any shape is placed by stretching it over the window.
    """

    row: float
    column: float
    rows: float
    columns: float


def patch_window(centre_rc, pixel_spacing, field_of_view_mm: float) -> PatchWindow:
    """The window sampled by :func:`inference.patches.sampling_grid` (no rotation or shift).

    ``centre_rc`` is in pixel indices (pixel centres at integers), ``pixel_spacing`` the
    DICOM (row spacing, column spacing) in mm.
    """
    rows = field_of_view_mm / float(pixel_spacing[0])
    columns = field_of_view_mm / float(pixel_spacing[1])
    return PatchWindow(
        row=float(centre_rc[0]) + 0.5 - rows / 2.0,
        column=float(centre_rc[1]) + 0.5 - columns / 2.0,
        rows=rows,
        columns=columns,
    )


def normalise_map(values: np.ndarray) -> np.ndarray:
    """The positive part of a map scaled to [0, 1] by its maximum (zeros when nothing is positive)."""
    values = np.maximum(np.nan_to_num(np.asarray(values, np.float64)), 0.0)
    top = values.max() if values.size else 0.0
    return (values / top if top > 0 else np.zeros_like(values)).astype(np.float32)


def bound_map(values: np.ndarray, max_side: int) -> np.ndarray:
    """``values`` reduced by block means (an integer factor per axis) until no side exceeds ``max_side``."""
    values = np.asarray(values, np.float32)
    if values.ndim != 2:
        raise ValueError(f"a heat map is 2-D, got shape {values.shape}")
    factors = [int(np.ceil(side / max_side)) for side in values.shape]
    if factors == [1, 1]:
        return values
    padded_shape = [int(np.ceil(side / f)) * f for side, f in zip(values.shape, factors)]
    padded = np.pad(values, [(0, p - s) for p, s in zip(padded_shape, values.shape)], mode="edge")
    blocks = padded.reshape(
        padded_shape[0] // factors[0], factors[0], padded_shape[1] // factors[1], factors[1]
    )
    return blocks.mean(axis=(1, 3)).astype(np.float32)


def occlusion_sensitivity(
    predict, patches: np.ndarray, channel: int, grid: int = 8, baseline: float = 0.0
) -> np.ndarray:
    """Occlusion map ``(grid, grid)`` of one lesion's ``(samples, size, size, channels)`` patches on ``channel``.

    ``predict(batch)`` maps ``(n, samples, size, size, channels)`` to ``n`` scores (as
    :func:`inference.training.predict_lesions`). Cell ``(i, j)`` of the grid (the patch
    cut into ``grid`` by ``grid`` near-equal cells) is set to ``baseline`` on ``channel``
    in every sample; its value is the unoccluded score minus the occluded one (not normalised).
    """
    patches = np.asarray(patches, np.float32)
    if patches.ndim != 4:
        raise ValueError(
            f"patches must be (samples, size, size, channels), got shape {patches.shape}"
        )
    size_r, size_c = patches.shape[1:3]
    grid = max(1, min(grid, size_r, size_c))
    row_edges = np.linspace(0, size_r, grid + 1).round().astype(int)
    column_edges = np.linspace(0, size_c, grid + 1).round().astype(int)
    batch = np.repeat(patches[None], grid * grid + 1, axis=0)
    for i in range(grid):
        for j in range(grid):
            cell = batch[1 + i * grid + j]
            cell[
                :, row_edges[i] : row_edges[i + 1], column_edges[j] : column_edges[j + 1], channel
            ] = baseline
    scores = np.asarray(predict(batch), np.float64).reshape(-1)
    return (scores[0] - scores[1:]).reshape(grid, grid)
