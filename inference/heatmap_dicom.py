"""A heat map as a DICOM Parametric Map (highdicom) that a PACS overlays on the CT image it was computed on.

Why a Parametric Map and not a Segmentation with a FRACTIONAL segment: the map is a
continuous quantity (how much a region raised the model's score, 0 to 1), not the
probability or occupancy of a structure that a fractional segment means; the Parametric
Map stores it as 32-bit floats with a Real World Value Mapping that names what the
values are, where a fractional segment would quantise it to 8 bits and call it a
segment. The map is resampled (bilinear) onto the source image's pixel grid, zero
outside the patch the model saw, so it shares the image's plane position and
orientation and references it in each frame's Derivation Image Sequence.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from scipy import ndimage

from .heatmaps import PatchWindow


def map_on_image(values, window: PatchWindow, rows: int, columns: int) -> np.ndarray:
    """``values`` (rows x columns of the map) stretched over ``window`` of a ``rows`` x ``columns`` image.

    Bilinear between map cell centres (edge cells repeat to the window's edge); zero outside the window.
    """
    values = np.asarray(values, np.float32)
    centres_r = np.arange(rows) + 0.5
    centres_c = np.arange(columns) + 0.5
    u = (centres_r - window.row) / window.rows * values.shape[0] - 0.5
    v = (centres_c - window.column) / window.columns * values.shape[1] - 0.5
    grid = np.stack(np.meshgrid(u, v, indexing="ij"))
    out = ndimage.map_coordinates(values, grid, order=1, mode="nearest").astype(np.float32)
    inside_r = (centres_r >= window.row) & (centres_r <= window.row + window.rows)
    inside_c = (centres_c >= window.column) & (centres_c <= window.column + window.columns)
    out[~(inside_r[:, None] & inside_c[None, :])] = 0.0
    return out


def heat_map_parametric_map(
    source: Dataset,
    values,
    window: PatchWindow,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    method: str,
    model_name: str,
    software_version: str,
) -> hd.pm.ParametricMap:
    """A Parametric Map of one heat map over the single-frame CT image ``source`` (the patch's ROI slice).

    ``method`` and ``model_name`` go into the content description and the value mapping's explanation.
    """
    pixels = map_on_image(values, window, int(source.Rows), int(source.Columns))
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="HEATMAP",
        lut_explanation=f"{method} of {model_name}"[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(0.0, 1.0),
        slope=1.0,
        intercept=0.0,
    )
    return hd.pm.ParametricMap(
        source_images=[source],
        pixel_array=pixels,
        series_instance_uid=series_instance_uid,
        series_number=9901,
        sop_instance_uid=sop_instance_uid,
        instance_number=1,
        manufacturer="renal reader-study portal",
        manufacturer_model_name=model_name[:64],
        software_versions=software_version[:64],
        device_serial_number="1",
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=0.5, window_width=1.0)],
        content_description=f"model heat map ({method})"[:64],
        content_label="HEATMAP",
    )
