"""Radiomics: IBSI features of a lesion's reference ROI (mirp), and their settings as data.

Pure module: NumPy arrays and plain values in, plain values out; no Django, no Keras.

**Library.** Features are computed by mirp 2.7.0 (Zwanenburg et al., *J Open Source
Softw* 2024), whose feature definitions follow the Image Biomarker Standardisation
Initiative (Zwanenburg et al., *Radiology* 2020;295:328-338) and are checked against the
IBSI reference values; ``ibsi_compliant=True`` leaves out every feature without one.
pyradiomics does not build on this platform (source distribution only) and its
fixed-bin-size discretisation is not the IBSI one. mirp reads NumPy arrays; it is given
the image with its pixel spacing through the same file object mirp builds for a NumPy
input (:class:`mirp._data_import.numpy_file.ImageNumpyFile`, pinned with mirp in
requirements.txt), since its public NumPy path assumes 1 mm pixels.

**2-D, not 2.5-D.** The portal stores one ROI per phase, drawn on one slice. Features
are computed on that slice only (mirp ``by_slice=True``; texture matrices of the slice's
directions merged, IBSI "2D, slice-merged"). 2.5-D or 3-D features need the lesion
outlined on its neighbouring slices, which the ROI tools do not record; copying one
outline to other slices would invent the lesion's craniocaudal extent.

**Only the ROI's pixels.** Before interpolation every pixel outside the ROI takes the
value of its nearest ROI pixel (edge padding) and the image is cropped to the ROI's
bounding box plus a margin, so interpolation near the border reads ROI pixels only and
every feature is a function of the ROI's pixel values and its outline alone.
Morphological features (mirp computes the IBSI ones in 3-D) see the single slice with a
thickness equal to the resampled in-plane spacing, so they describe the outline and do
not depend on the scanner's slice thickness.

The classifier on these features (fitted inside the training folds) is in
:mod:`inference.radiomics_training`, which imports scikit-learn; this module does not,
so the web process reads radiomics settings without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from annotations.measurements import RoiMaskError

# Our family name -> (mirp's family tag, prefix of its feature names).
FEATURE_FAMILIES = {
    "morphology": ("morphology", "morph_"),
    "statistics": ("statistics", "stat_"),
    "intensity_histogram": ("intensity_histogram", "ih_"),
    "glcm": ("glcm", "cm_"),
    "glrlm": ("glrlm", "rlm_"),
    "glszm": ("glszm", "szm_"),
    "gldzm": ("gldzm", "dzm_"),
    "ngtdm": ("ngtdm", "ngt_"),
    "ngldm": ("ngldm", "ngl_"),
}
INTERPOLATIONS = {"nearest": 0, "linear": 1, "cubic": 3}  # B-spline order
DISCRETISATIONS = ("fixed_bin_size", "fixed_bin_number")
CLASSIFIERS = ("logistic", "gradient_boosting")


class SettingsError(ValueError):
    """Radiomics settings or classifier options that cannot be used (the message names the field)."""


def _from_dict(cls, data, what):
    """``cls(**data)`` with lists made tuples; unknown keys are a SettingsError naming them and the choices."""
    if not isinstance(data, dict):
        raise SettingsError(f"{what} must be an object of options, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SettingsError(f"unknown {what} option(s) {unknown}; the options are {names}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class RadiomicsSettings:
    """The IBSI image processing and feature settings, as data (IBSI 2020, chapter 2 and table 5).

    ``spacing_mm``: in-plane pixel spacing after resampling (isotropic in-plane; the slice
    is not resampled, features are 2-D). ``interpolation``: image interpolation
    (``nearest``, ``linear`` or ``cubic`` B-spline); the ROI mask is interpolated linearly
    and kept where it is at least ``mask_threshold``. ``intensity_range_hu``: the
    re-segmentation range; its lower bound is also the first bin edge of the fixed bin
    size discretisation. ``discretisation``: ``fixed_bin_size`` (``bin_width_hu`` HU
    bins; IBSI's recommendation for calibrated CT) or ``fixed_bin_number``
    (``bin_count`` bins over the ROI's range). ``families``: feature families (keys
    of :data:`FEATURE_FAMILIES`); texture matrices at distance 1, merged over
    directions within the slice.
    """

    spacing_mm: float = 1.0
    interpolation: str = "linear"
    mask_threshold: float = 0.5
    intensity_range_hu: tuple[float, float] = (-1000.0, 3071.0)
    discretisation: str = "fixed_bin_size"
    bin_width_hu: float = 25.0
    bin_count: int = 32
    families: tuple[str, ...] = (
        "morphology",
        "statistics",
        "intensity_histogram",
        "glcm",
        "glrlm",
        "glszm",
    )

    @classmethod
    def from_dict(cls, data) -> RadiomicsSettings:
        return _from_dict(cls, data, "radiomics").validate()

    def validate(self) -> RadiomicsSettings:
        if not (isinstance(self.spacing_mm, (int, float)) and self.spacing_mm > 0):
            raise SettingsError(
                f"radiomics.spacing_mm must be a positive number of mm (got {self.spacing_mm!r})"
            )
        if self.interpolation not in INTERPOLATIONS:
            raise SettingsError(
                f"radiomics.interpolation {self.interpolation!r} is unknown; choose one of {list(INTERPOLATIONS)}"
            )
        if not (isinstance(self.mask_threshold, (int, float)) and 0 < self.mask_threshold <= 1):
            raise SettingsError(
                f"radiomics.mask_threshold must lie in (0, 1] (got {self.mask_threshold!r})"
            )
        low_high = self.intensity_range_hu
        if (
            not isinstance(low_high, (tuple, list))
            or len(low_high) != 2
            or not all(isinstance(v, (int, float)) for v in low_high)
            or low_high[0] >= low_high[1]
        ):
            raise SettingsError(
                f"radiomics.intensity_range_hu must be [low, high] HU with low < high (got {low_high!r})"
            )
        if self.discretisation not in DISCRETISATIONS:
            raise SettingsError(
                f"radiomics.discretisation {self.discretisation!r} is unknown; choose one of {list(DISCRETISATIONS)}"
            )
        if not (isinstance(self.bin_width_hu, (int, float)) and self.bin_width_hu > 0):
            raise SettingsError(
                f"radiomics.bin_width_hu must be positive (got {self.bin_width_hu!r})"
            )
        if not (isinstance(self.bin_count, int) and self.bin_count >= 2):
            raise SettingsError(
                f"radiomics.bin_count must be an integer >= 2 (got {self.bin_count!r})"
            )
        if not isinstance(self.families, (tuple, list)) or not self.families:
            raise SettingsError(
                f"radiomics.families must be a non-empty list; choose from {list(FEATURE_FAMILIES)}"
            )
        unknown = [f for f in self.families if f not in FEATURE_FAMILIES]
        if unknown:
            raise SettingsError(
                f"radiomics.families: unknown family {unknown}; choose from {list(FEATURE_FAMILIES)}"
            )
        return self


@dataclass(frozen=True)
class ClassifierSpec:
    """The classifier on the features, as data; every step is fitted inside the training folds.

    ``kind``: ``logistic``: an L2-regularised logistic regression (inverse strength
    ``C``) on the selected features, each expanded into a cubic B-spline basis with
    ``spline_knots`` knots (0: the standardised feature itself), so that a feature both
    of whose extremes mean malignancy (attenuation: ccRCC bright, papillary RCC dark)
    counts; or ``gradient_boosting`` (scikit-learn's histogram gradient boosting:
    ``boosting_iterations`` trees of depth ``boosting_max_depth``, learning rate
    ``boosting_learning_rate``). ``max_features`` and ``max_correlation`` drive the
    feature selection (``inference.radiomics_training.RankedDecorrelatedSelector``);
    features whose most frequent value covers at least ``near_constant_share`` of the
    training lesions are dropped first. ``balanced``: weight classes inversely to their
    frequency.
    """

    kind: str = "logistic"
    max_features: int = 5
    max_correlation: float = 0.8
    near_constant_share: float = 0.95
    C: float = 1.0
    spline_knots: int = 4
    balanced: bool = True
    boosting_iterations: int = 100
    boosting_learning_rate: float = 0.05
    boosting_max_depth: int = 2

    @classmethod
    def from_dict(cls, data) -> ClassifierSpec:
        return _from_dict(cls, data, "classifier").validate()

    @property
    def builder_name(self) -> str:
        """The name recorded as a model version's builder, e.g. ``radiomics-logistic``."""
        return "radiomics-" + self.kind.replace("_", "-")

    def validate(self) -> ClassifierSpec:
        if self.kind not in CLASSIFIERS:
            raise SettingsError(
                f"classifier.kind {self.kind!r} is unknown; choose one of {list(CLASSIFIERS)}"
            )
        if not (isinstance(self.max_features, int) and self.max_features >= 1):
            raise SettingsError(
                f"classifier.max_features must be an integer >= 1 (got {self.max_features!r})"
            )
        if not (isinstance(self.max_correlation, (int, float)) and 0 < self.max_correlation <= 1):
            raise SettingsError(
                f"classifier.max_correlation must lie in (0, 1] (got {self.max_correlation!r})"
            )
        if not (
            isinstance(self.near_constant_share, (int, float))
            and 0.5 < self.near_constant_share <= 1
        ):
            raise SettingsError(
                f"classifier.near_constant_share must lie in (0.5, 1] (got {self.near_constant_share!r})"
            )
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise SettingsError(f"classifier.C must be positive (got {self.C!r})")
        if not (
            isinstance(self.spline_knots, int)
            and (self.spline_knots == 0 or self.spline_knots >= 2)
        ):
            raise SettingsError(
                f"classifier.spline_knots must be 0 (linear terms) or an integer >= 2 (got {self.spline_knots!r})"
            )
        if not (isinstance(self.boosting_iterations, int) and self.boosting_iterations >= 1):
            raise SettingsError("classifier.boosting_iterations must be an integer >= 1")
        if not (isinstance(self.boosting_max_depth, int) and self.boosting_max_depth >= 1):
            raise SettingsError("classifier.boosting_max_depth must be an integer >= 1")
        if not (
            isinstance(self.boosting_learning_rate, (int, float))
            and self.boosting_learning_rate > 0
        ):
            raise SettingsError("classifier.boosting_learning_rate must be positive")
        return self


# --- the ROI mask ------------------------------------------------------------------


# --- features ------------------------------------------------------------------------


def pad_outside(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with every pixel outside ``mask`` replaced by the value of its nearest pixel inside."""
    nearest = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    return image[tuple(nearest)]


def _crop_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask)
    return (
        slice(max(rows.min() - margin, 0), min(rows.max() + margin + 1, mask.shape[0])),
        slice(max(cols.min() - margin, 0), min(cols.max() + margin + 1, mask.shape[1])),
    )


@contextlib.contextmanager
def _quiet_mirp():
    """mirp configures the root logger and logs every image at INFO: keep that out of the caller's logs."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    previous_disable = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous_disable)
        root.handlers[:] = handlers
        root.setLevel(level)


def _mirp_arrays(image: np.ndarray, mask: np.ndarray, spacing_zyx):
    from mirp._data_import.numpy_file import ImageNumpyFile, MaskNumpyFile

    common = {
        "image_spacing": tuple(spacing_zyx),
        "image_origin": (0.0, 0.0, 0.0),
        "image_orientation": np.identity(3),
        "sample_name": "roi",
        "image_modality": "ct",
    }
    return (
        ImageNumpyFile(
            image_data=image[None].astype(np.float32), image_dimensions=(1, *image.shape), **common
        ),
        MaskNumpyFile(
            image_data=mask[None].astype(bool), image_dimensions=(1, *mask.shape), **common
        ),
    )


def compute_features(
    image_hu: np.ndarray, pixel_spacing, mask: np.ndarray, settings: RadiomicsSettings
) -> dict[str, float]:
    """IBSI features (mirp names, e.g. ``stat_mean``, ``cm_contrast_d1_2d_s_mrg_fbs_w25.0``) of one ROI on one slice.

    ``image_hu``: the slice in Hounsfield units ``(rows, columns)``; ``pixel_spacing``:
    DICOM PixelSpacing (row spacing, column spacing) in mm; ``mask``: the ROI's pixels
    (:func:`roi_mask`). Values depend only on the pixels inside ``mask`` and on its
    outline (see the module docstring). NaN where IBSI leaves a feature undefined.
    """
    import mirp

    image = np.asarray(image_hu, np.float32)
    mask = np.asarray(mask, bool)
    if image.ndim != 2 or mask.shape != image.shape:
        raise ValueError(f"image {image.shape} and mask {mask.shape} must be the same 2-D shape")
    if not mask.any():
        raise RoiMaskError("the ROI mask holds no pixels")
    row_mm, col_mm = (float(s) for s in pixel_spacing)
    margin = 3 + math.ceil(settings.spacing_mm / min(row_mm, col_mm))
    box = _crop_box(mask, margin)
    padded = pad_outside(image[box], mask[box])
    families = [FEATURE_FAMILIES[f][0] for f in settings.families]
    prefixes = tuple(FEATURE_FAMILIES[f][1] for f in settings.families)
    image_file, mask_file = _mirp_arrays(padded, mask[box], (settings.spacing_mm, row_mm, col_mm))
    with _quiet_mirp():
        tables = mirp.extract_features(
            image=image_file,
            mask=mask_file,
            by_slice=True,
            ibsi_compliant=True,
            new_spacing=settings.spacing_mm,
            spline_order=INTERPOLATIONS[settings.interpolation],
            anti_aliasing=True,
            roi_spline_order=1,
            roi_interpolation_mask_inclusion_threshold=settings.mask_threshold,
            resegmentation_intensity_range=[float(v) for v in settings.intensity_range_hu],
            base_feature_families=families,
            base_discretisation_method=settings.discretisation,
            base_discretisation_bin_width=settings.bin_width_hu
            if settings.discretisation == "fixed_bin_size"
            else None,
            base_discretisation_n_bins=settings.bin_count
            if settings.discretisation == "fixed_bin_number"
            else None,
        )
    row = tables[0].iloc[0]
    return {name: float(value) for name, value in row.items() if name.startswith(prefixes)}


def feature_matrix(
    rows: list[dict], names: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """``(lesions, features)`` float array from per-lesion feature dicts (missing or infinite values: NaN)."""
    if names is None:
        names = sorted({name for row in rows for name in row})
    x = np.array([[row.get(name, np.nan) for name in names] for row in rows], float).reshape(
        len(rows), len(names)
    )
    x[~np.isfinite(x)] = np.nan
    return x, names
