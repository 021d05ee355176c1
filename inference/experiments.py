"""Experiments as data: which model family, which phases, which inputs, how to train.

An :class:`Experiment` is a frozen dataclass that round-trips through JSON
(``Experiment.from_dict(e.as_dict()) == e``); a TrainingRun stores the resolved
dictionary, so a run can be repeated from its row alone. The six variants of the
source study are entries of one experiment, not code copies. Two model families:
``cnn`` (a Keras builder on patches) and ``radiomics`` (IBSI features of each phase's
reference ROI and a scikit-learn classifier; :mod:`inference.radiomics`).

No TensorFlow or Keras here: the web process reads experiments too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from archive.vocabulary import PHASES, VARIANTS

from .radiomics import ClassifierSpec, RadiomicsSettings, SettingsError

# The builders of inference.networks and their smallest input (px); kept here so the web
# process validates experiments without importing Keras (a test checks both lists agree).
BUILDER_MIN_INPUT_SIZE = {"small_cnn": 8, "roi_cnn": 8, "inception_v3": 75}
FAMILIES = ("cnn", "radiomics")


class ExperimentError(ValueError):
    """An experiment description that cannot be trained (the message says which field and why)."""


class OverrideError(ExperimentError):
    """An override out of its bounds or of the wrong type; ``field`` names it (``patch.size_px``)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


# Bounds of the overrides a run may ask for (the API, the models page, ``train --set``): the
# queue is shared, and a single request must not hold a worker for days or exhaust its
# memory. A field not listed here is checked only for its type and by Experiment.validate.
# Registered experiments and experiment files are trusted as written.
OVERRIDE_LIMITS = {
    "epochs": (1, 500),
    "batch_size": (1, 1024),
    "folds": (2, 20),
    "weight_averaging_from": (0, 500),
    "patch.size_px": (4, 512),
    "patch.neighbours": (0, 10),
    "builder_options.dense_units": (1, 4096),
    "classifier.max_features": (1, 200),
    "classifier.spline_knots": (0, 50),
    "classifier.boosting_iterations": (1, 5000),
    "classifier.boosting_max_depth": (1, 16),
    "radiomics.spacing_mm": (0.25, 10.0),
    "radiomics.bin_count": (2, 1024),
    "radiomics.bin_width_hu": (1.0, 1000.0),
}
# builder_options.filters: convolution widths, at most this many layers of at most this many filters.
MAX_FILTER_LAYERS, MAX_FILTERS = 8, 1024
NESTED_FIELDS = ("patch", "augmentation", "builder_options", "radiomics", "classifier")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_override_value(name: str, default, value):
    """The override ``name`` has the type of its default and lies within :data:`OVERRIDE_LIMITS`."""
    if isinstance(default, bool) and not isinstance(value, bool):
        raise OverrideError(name, f"must be true or false (got {value!r})")
    whole = _is_number(value) and isinstance(value, int)
    if isinstance(default, int) and not isinstance(default, bool) and not whole:
        raise OverrideError(name, f"must be a whole number (got {value!r})")
    if isinstance(default, float) and not (_is_number(value) and math.isfinite(value)):
        raise OverrideError(name, f"must be a finite number (got {value!r})")
    if isinstance(default, str) and not isinstance(value, str):
        raise OverrideError(name, f"must be text (got {value!r})")
    if name in OVERRIDE_LIMITS:
        low, high = OVERRIDE_LIMITS[name]
        if not _is_number(value) or not low <= value <= high:
            raise OverrideError(name, f"must be from {low} to {high} (got {value!r})")
    if name == "builder_options.filters":
        if (
            not isinstance(value, list)
            or not 1 <= len(value) <= MAX_FILTER_LAYERS
            or not all(
                _is_number(n) and isinstance(n, int) and 1 <= n <= MAX_FILTERS for n in value
            )
        ):
            raise OverrideError(
                name,
                f"must be a list of 1 to {MAX_FILTER_LAYERS} whole numbers from 1 to {MAX_FILTERS}",
            )


def check_overrides(data: dict, overrides: dict):
    """Check ``overrides`` against the experiment ``data`` (its ``as_dict()``): :class:`OverrideError`."""
    if not isinstance(overrides, dict):
        raise OverrideError(
            "overrides", 'must be an object of experiment fields, e.g. {"epochs": 3}'
        )
    for key, value in overrides.items():
        if key in NESTED_FIELDS:
            if not isinstance(value, dict):
                raise OverrideError(key, 'must be an object, e.g. {"size_px": 32}')
            for inner, inner_value in value.items():
                _check_override_value(f"{key}.{inner}", data[key].get(inner), inner_value)
        elif key in data:
            _check_override_value(key, data[key], value)


@dataclass(frozen=True)
class PatchSpec:
    """How a lesion becomes CNN input.

    ``field_of_view_mm`` square in-plane field centred on the ROI centre, resampled to
    ``size_px`` pixels; with ``roi_scale`` > 0 the field is instead ``roi_scale`` times the
    ROI's diameter (twice the largest distance of an ROI point from its centre), so every
    lesion fills the same fraction of its patch whatever its size. The ROI slice and
    ``neighbours`` slices either side give ``2 * neighbours + 1`` samples per lesion (a
    lesion's score is their mean);
    HU are windowed to ``window_level`` +- ``window_width`` / 2 and scaled to [0, 1].
    """

    field_of_view_mm: float = 48.0
    size_px: int = 32
    roi_scale: float = 0.0
    mask_scale: float = 0.0
    roi_channels: bool = False
    neighbours: int = 2
    window_level: float = 60.0
    window_width: float = 400.0

    def validate(self):
        if self.field_of_view_mm <= 0:
            raise ExperimentError("patch.field_of_view_mm must be positive")
        if self.roi_scale < 0:
            raise ExperimentError("patch.roi_scale must be 0 (fixed field of view) or positive")
        if self.mask_scale < 0:
            raise ExperimentError("patch.mask_scale must be 0 (no mask) or positive")
        if self.size_px < 4:
            raise ExperimentError("patch.size_px must be at least 4")
        if self.neighbours < 0:
            raise ExperimentError("patch.neighbours must be 0 or more")
        if self.window_width <= 0:
            raise ExperimentError("patch.window_width must be positive")

    def mask_radius_for(self, roi_extent_mm: float) -> float:
        """Radius (mm) outside which a patch is blanked: ``mask_scale`` times the ROI's extent (0: no mask)."""
        return self.mask_scale * roi_extent_mm if self.mask_scale > 0 and roi_extent_mm > 0 else 0.0

    def field_of_view_for(self, roi_extent_mm: float) -> float:
        """The field of view (mm) for an ROI whose points lie up to ``roi_extent_mm`` from its centre."""
        if self.roi_scale > 0 and roi_extent_mm > 0:
            return self.roi_scale * 2.0 * roi_extent_mm
        return self.field_of_view_mm


@dataclass(frozen=True)
class Augmentation:
    """Training-time augmentation (never applied when scoring)."""

    enabled: bool = True
    flip: bool = True
    dihedral: bool = (
        False  # also rotate by multiples of 90 degrees (a lesion has no preferred orientation)
    )
    max_rotation_deg: float = 10.0
    max_shift_px: float = 2.0
    hu_jitter: float = 10.0  # SD of an additive HU offset per sample, before windowing


@dataclass(frozen=True)
class Variant:
    """A named model variant: the phases it reads, stacked as channels in this order."""

    name: str
    phases: tuple[str, ...]

    def validate(self):
        if not self.name:
            raise ExperimentError("variant.name is empty")
        if not self.phases:
            raise ExperimentError(f"variant {self.name}: no phases")
        unknown = [p for p in self.phases if p not in PHASES]
        if unknown:
            raise ExperimentError(
                f"variant {self.name}: unknown phase(s) {unknown}; use {list(PHASES)}"
            )


@dataclass(frozen=True)
class Experiment:
    """Everything a training run needs besides the data.

    ``family`` ``cnn`` reads ``builder``, ``builder_options``, ``patch``,
    ``augmentation``, ``epochs``, ``batch_size`` and ``learning_rate``; ``radiomics``
    reads ``radiomics`` (IBSI settings) and ``classifier`` (a radiomics variant's
    features are those of each of its phases, concatenated and prefixed by the phase).
    Both use ``variants``, ``folds`` and ``seed``; the other family's fields are kept
    at their defaults and ignored.
    """

    name: str
    variants: tuple[Variant, ...]
    family: str = "cnn"
    builder: str = "small_cnn"
    builder_options: dict = field(default_factory=dict)
    patch: PatchSpec = field(default_factory=PatchSpec)
    augmentation: Augmentation = field(default_factory=Augmentation)
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    auxiliary_weight: float = 0.0
    test_time_augmentation: bool = False
    weight_averaging_from: int = 0
    folds: int = 5
    seed: int = 0
    description: str = ""
    radiomics: RadiomicsSettings = field(default_factory=RadiomicsSettings)
    classifier: ClassifierSpec = field(default_factory=ClassifierSpec)

    def variant(self, name: str) -> Variant:
        """The variant called ``name`` (ExperimentError naming the choices if there is none)."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise ExperimentError(
            f"experiment {self.name} has no variant {name!r}; choose one of {self.variant_names}"
        )

    @property
    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants]

    @property
    def model_builder(self) -> str:
        """What a model version records as its builder: the Keras builder, or e.g. ``radiomics-logistic``."""
        return self.classifier.builder_name if self.family == "radiomics" else self.builder

    def validate(self) -> Experiment:
        if self.family not in FAMILIES:
            raise ExperimentError(f"unknown family {self.family!r}; choose one of {list(FAMILIES)}")
        try:
            self.radiomics.validate()
            self.classifier.validate()
        except SettingsError as exc:
            raise ExperimentError(str(exc)) from None
        if self.builder not in BUILDER_MIN_INPUT_SIZE:
            raise ExperimentError(
                f"unknown builder {self.builder!r}; choose one of {sorted(BUILDER_MIN_INPUT_SIZE)}"
            )
        minimum = BUILDER_MIN_INPUT_SIZE[self.builder]
        if self.patch.size_px < minimum:
            raise ExperimentError(
                f"builder {self.builder} needs patch.size_px >= {minimum} (got {self.patch.size_px})"
            )
        if not self.variants:
            raise ExperimentError("an experiment needs at least one variant")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ExperimentError("variant names must be unique")
        for variant in self.variants:
            variant.validate()
        self.patch.validate()
        if not 0 <= self.weight_averaging_from <= self.epochs:
            raise ExperimentError(
                "weight_averaging_from must be 0 (off) or an epoch from 1 to epochs"
            )
        if self.auxiliary_weight < 0:
            raise ExperimentError("auxiliary_weight must be 0 (off) or positive")
        if self.epochs < 1 or self.batch_size < 1 or self.folds < 2 or self.learning_rate <= 0:
            raise ExperimentError(
                "epochs and batch_size must be >= 1, folds >= 2, learning_rate > 0"
            )
        weights = self.builder_options.get("weights")
        if weights is not None and not Path(weights).is_file():
            raise ExperimentError(
                f"weights file {weights} does not exist (weights are never downloaded)"
            )
        return self

    def as_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> Experiment:
        """Build and validate an experiment from its JSON form (unknown keys are errors)."""
        data = dict(data)
        try:
            radiomics = RadiomicsSettings.from_dict(data.pop("radiomics", {}))
            classifier = ClassifierSpec.from_dict(data.pop("classifier", {}))
        except SettingsError as exc:
            raise ExperimentError(str(exc)) from None
        try:
            variants = tuple(Variant(v["name"], tuple(v["phases"])) for v in data.pop("variants"))
            patch = PatchSpec(**data.pop("patch", {}))
            augmentation = Augmentation(**data.pop("augmentation", {}))
            experiment = cls(
                variants=variants,
                patch=patch,
                augmentation=augmentation,
                radiomics=radiomics,
                classifier=classifier,
                **data,
            )
        except (KeyError, TypeError) as exc:
            raise ExperimentError(f"not a valid experiment description: {exc}") from None
        return experiment.validate()

    def with_overrides(self, overrides: dict) -> Experiment:
        """A copy with top-level fields
        (and ``patch``/``augmentation``/``builder_options``/``radiomics``/``classifier`` dicts) replaced.

        Each override is checked first (:func:`check_overrides`): its type, and the bounds
        of :data:`OVERRIDE_LIMITS`.
        """
        data = self.as_dict()
        overrides = overrides or {}
        check_overrides(data, overrides)
        if overrides.get("builder", data["builder"]) != data["builder"]:
            data["builder_options"] = {}  # another network: the old one's options do not apply
        for key, value in overrides.items():
            if key in (
                "patch",
                "augmentation",
                "builder_options",
                "radiomics",
                "classifier",
            ) and isinstance(value, dict):
                data[key] = {**data[key], **value}
            elif key in data:
                data[key] = value
            else:
                raise ExperimentError(f"unknown experiment field {key!r}")
        return Experiment.from_dict(data)


SOURCE_STUDY_VARIANTS = tuple(Variant(name, phases) for name, phases in VARIANTS.items())

EXPERIMENTS = {
    "source-study": Experiment(
        name="source-study",
        description="The six variants of the source study (four single phases, CM+NG, all four stacked); "
        "small_cnn, the CPU default. Tuned on the seed-scale synthetic cohort: a window of "
        "L100/W600 (-200..400 HU: bright contrast-enhanced lesions are not clipped at 260 HU), "
        "no HU jitter (the mean attenuation is part of the signal; an offset per sample blurs it), "
        "a flattened head (the patch is centred on the ROI, so where a feature lies, core or rim, "
        "matters: scar, segmental inversion) and 30 epochs (out-of-fold AUC still rose at 25).",
        variants=SOURCE_STUDY_VARIANTS,
        builder="small_cnn",
        builder_options={"pooling": "flatten"},
        patch=PatchSpec(window_level=100.0, window_width=600.0),
        augmentation=Augmentation(hu_jitter=0.0),
        epochs=30,
        batch_size=32,
        learning_rate=1e-3,
        folds=5,
    ),
    "roi-cnn": Experiment(
        name="roi-cnn",
        description="The six variants with roi_cnn: full-resolution convolutions whose features are averaged over "
        "the reference ROI, its rim and the whole patch (the ROI given as two mask channels); otherwise as "
        "source-study. Trained on a few hundred lesions or more it reads the lesion better than small_cnn "
        "(held-out CM AUC 0.745 and 0.755 against 0.750 and 0.686 after 847 training lesions); on one "
        "seed-scale cohort's 134 training lesions per fold it is no better (docs/models.md).",
        variants=SOURCE_STUDY_VARIANTS,
        builder="roi_cnn",
        patch=PatchSpec(window_level=100.0, window_width=600.0, roi_channels=True),
        augmentation=Augmentation(hu_jitter=0.0),
        epochs=30,
        batch_size=32,
        learning_rate=1e-3,
        folds=5,
    ),
    "source-study-inception": Experiment(
        name="source-study-inception",
        description="The source study's network: Inception-v3 from scratch (weights=None) on 96 px patches; "
        "for GPU workers.",
        variants=SOURCE_STUDY_VARIANTS,
        builder="inception_v3",
        patch=PatchSpec(size_px=96),
        epochs=30,
        batch_size=32,
        learning_rate=1e-4,
        folds=5,
    ),
    "radiomics": Experiment(
        name="radiomics",
        family="radiomics",
        description="The source study's six variants as radiomics models: IBSI features (mirp; 2-D, the reference "
        "ROI's slice resampled to 1 mm, 25 HU bins; morphology, intensity statistics and histogram, GLCM, "
        "GLRLM, GLSZM) of each phase's reference ROI, concatenated over the variant's phases, then an "
        "L2-regularised logistic regression with a cubic spline per feature on at most 5 decorrelated "
        "features selected inside each training fold. CPU, minutes.",
        variants=SOURCE_STUDY_VARIANTS,
        radiomics=RadiomicsSettings(),
        classifier=ClassifierSpec(),
        folds=5,
    ),
}


def parse_overrides(texts) -> dict:
    """Overrides from ``key=value`` texts (``--set``): values read as JSON where they parse, dotted keys nest.

    ``["epochs=40", "patch.size_px=64", "patch.neighbours=3"]`` gives
    ``{"epochs": 40, "patch": {"size_px": 64, "neighbours": 3}}``; a text without ``=`` is
    an ExperimentError naming it.
    """
    overrides: dict = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        if not sep:
            raise ExperimentError(f"--set expects key=value, got {text!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if "." in key:  # patch.size_px=16
            outer, inner = key.split(".", 1)
            overrides.setdefault(outer, {})[inner] = value
        else:
            overrides[key] = value
    return overrides


def get_experiment(name_or_path: str, overrides: dict | None = None) -> Experiment:
    """A registered experiment by name, or one read from a JSON file; ``overrides`` applied and validated."""
    if name_or_path in EXPERIMENTS:
        experiment = EXPERIMENTS[name_or_path]
    elif name_or_path.endswith(".json") and Path(name_or_path).is_file():
        experiment = Experiment.from_dict(json.loads(Path(name_or_path).read_text()))
    else:
        raise ExperimentError(
            f"unknown experiment {name_or_path!r}; choose one of {sorted(EXPERIMENTS)} or a .json file"
        )
    return experiment.with_overrides(overrides or {})
