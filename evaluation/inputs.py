"""What a comparison is computed from: its options, and the rows gathered from annotations
and inference.

Kept apart from :mod:`evaluation.services` (which computes and caches the result) because
this is where the rule of which data enter lives, and the revision key that hashes them:
a change here changes what every page, export and task compares.

Which data enter (documented on the page):

* calls: ``annotations.access.analysable_calls`` (current, locked, blinded; with
  ``include_unblinded`` also the unblinded ones);
* lesions: those of the reader study's studies that have pathology;
* readers: those with a call on every such lesion (others are listed as left out);
* models: per model family (CNN, radiomics) and variant the active model version
  (else the newest one with scores here), with a held-out score for every such
  lesion (others are listed). A held-out score comes from a model that never
  trained on the lesion's patient: the lesion's out-of-fold score, else the final
  model's score when the version's training data holds no lesion of that patient
  (a model trained elsewhere, e.g. the demo's model trained on an independent
  synthetic cohort, or a patient added after training). Final-model scores of
  patients the model trained on never enter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from annotations.access import analysable_calls
from annotations.models import Lesion, ReaderStudy, Session, Subtype
from archive.models import Sex
from archive.vocabulary import VARIANTS

from .stats import comparison

try:  # the model registry is optional: without it the page compares readers only
    from inference.models import ModelVersion, Prediction, PredictionKind, ReaderStudyModel
except ImportError:  # pragma: no cover - depends on the inference app being installed
    ModelVersion = Prediction = PredictionKind = ReaderStudyModel = None

ANALYSIS_VERSION = (
    "3"  # 2: aided − unaided of sequential reader studies; 3: the plan of the next study
)
PATIENT_LEVEL_CHOICES = ("auto", "on", "off")


# --- options -------------------------------------------------------------------

PLAN_EFFECT_MAX = 0.5  # an AUC difference above this is not a plausible effect to plan for


def default_plan_effect() -> float:
    """The AUC difference the page plans for unless ``?effect=`` says otherwise (``EVALUATION_PLAN_EFFECT``)."""
    return float(getattr(settings, "EVALUATION_PLAN_EFFECT", 0.05))


class OptionError(ValueError):
    """A comparison option that cannot be used; ``field`` names the query parameter."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def check_plan_effect(value) -> float:
    """``value`` as an AUC difference in (0, 0.5], else :class:`OptionError` naming ``effect``."""
    try:
        effect = float(value)
    except (TypeError, ValueError):
        raise OptionError(
            "effect", f"must be an AUC difference such as 0.05 (got {value!r})"
        ) from None
    if not 0 < effect <= PLAN_EFFECT_MAX:  # also refuses nan
        raise OptionError(
            "effect",
            f"must be an AUC difference above 0 and at most {PLAN_EFFECT_MAX} (got {value!r})",
        )
    return effect


@dataclass(frozen=True)
class ComparisonOptions:
    include_unblinded: bool = False
    patient_level: str = "auto"  # auto: on when some patient has more than one lesion
    effect: float = field(
        default_factory=default_plan_effect
    )  # AUC difference the next study is planned for

    def __post_init__(self):
        object.__setattr__(self, "effect", check_plan_effect(self.effect))

    @classmethod
    def from_query(cls, query) -> ComparisonOptions:
        """The options of ``?include_unblinded=&patient_level=&effect=``; a bad ``effect`` raises
        :class:`OptionError`."""
        level = query.get("patient_level", "auto")
        effect = query.get("effect", "")
        return cls(
            include_unblinded=query.get("include_unblinded", "") in {"1", "true", "on", "yes"},
            patient_level=level if level in PATIENT_LEVEL_CHOICES else "auto",
            effect=default_plan_effect() if effect == "" else effect,
        )

    def as_dict(self) -> dict:
        return {
            "include_unblinded": self.include_unblinded,
            "patient_level": self.patient_level,
            "effect": self.effect,
        }

    def as_query(self) -> str:
        parts = []
        if self.include_unblinded:
            parts.append("include_unblinded=1")
        if self.patient_level != "auto":
            parts.append(f"patient_level={self.patient_level}")
        if self.effect != default_plan_effect():
            parts.append(f"effect={self.effect:g}")
        return "&".join(parts)


# --- inputs --------------------------------------------------------------------


@dataclass
class LesionRow:
    pk: int
    label: str
    patient_pk: int
    patient_id: str
    age_years: int | None
    sex: str
    long_axis_mm: float | None
    subtype: str | None
    malignant: bool | None
    pathology_revision: int | None

    @property
    def name(self) -> str:
        return f"{self.patient_id} {self.label}"

    @property
    def size_group(self) -> str:
        if self.long_axis_mm is None:
            return ""
        if self.long_axis_mm <= 20:
            return "≤ 2 cm"
        return "> 2 to 4 cm" if self.long_axis_mm <= 40 else "> 4 cm"


@dataclass
class ReaderColumn:
    pk: int
    label: str
    simulated: bool

    @property
    def key(self) -> str:
        return f"reader:{self.pk}"


FAMILY_LABELS = {"cnn": "CNN", "radiomics": "Radiomics"}


@dataclass
class ModelColumn:
    pk: int
    variant: str
    version: int
    experiment_name: str
    phases: list
    family: str = "cnn"
    trained_on: str = ""  # what the version's training data says, for the page
    score_kinds: set = field(default_factory=set)  # PredictionKind values among the scores used

    @property
    def scores_source(self) -> str:
        """Which scores are compared: ``out-of-fold``, ``held-out final-model`` or both (``held-out``)."""
        if self.score_kinds == {"final"}:
            return "held-out final-model"
        return "held-out" if len(self.score_kinds) > 1 else "out-of-fold"

    @property
    def scores_description(self) -> str:
        """A sentence for the page: which scores are compared and what the model trained on."""
        kinds = {
            "out-of-fold": "out-of-fold scores (each from the fold model that never saw the patient)",
            "held-out final-model": "final-model scores of patients it never trained on",
            "held-out": "out-of-fold scores, and final-model scores of patients it never trained on",
        }
        return f"{self.label}: {kinds[self.scores_source]}; trained on {self.trained_on}."

    @property
    def choice(self) -> str:
        """The model's name in ``?model=``: the variant for a CNN (``CM``), ``radiomics-CM`` for radiomics."""
        return self.variant if self.family == "cnn" else f"{self.family}-{self.variant}"

    @property
    def key(self) -> str:
        return f"model:{self.choice}"

    @property
    def label(self) -> str:
        return f"{FAMILY_LABELS.get(self.family, self.family)} {self.variant} v{self.version}"


@dataclass
class Call:
    pk: int
    probability: int
    malignant: bool
    blinded: bool
    simulated: bool
    locked_at: object


@dataclass
class ComparisonInputs:
    """What entered one comparison, and its revision key."""

    reader_study: ReaderStudy
    options: ComparisonOptions
    lesions: list
    readers: list
    models: list
    calls: dict  # (reader pk, lesion pk) -> Call
    scores: dict  # (model version pk, lesion pk) -> (score, fold); fold None: a held-out final-model score
    revision: str
    analysed_lesions: list = field(default_factory=list)
    analysed_readers: list = field(default_factory=list)
    analysed_models: list = field(default_factory=list)
    exclusions: list = field(default_factory=list)
    aided_calls: dict = field(
        default_factory=dict
    )  # (reader pk, lesion pk) -> Call of the aided session
    aided_readers: list = field(
        default_factory=list
    )  # analysed readers with an aided call on every lesion
    frozen_model: dict | None = None  # the model version the aided session showed

    @property
    def has_aided_session(self) -> bool:
        return self.reader_study.aided or bool(self.aided_calls)

    def aided_arrays(self):
        """``(ratings, calls)``, each ``[2, reader, lesion]`` (0 unaided, 1 aided), of :attr:`aided_readers`."""
        sessions = (self.calls, self.aided_calls)
        lesions, readers = self.analysed_lesions, self.aided_readers
        ratings = np.array(
            [[[s[(r.pk, l.pk)].probability for l in lesions] for r in readers] for s in sessions],
            dtype=float,
        ).reshape(2, len(readers), len(lesions))
        calls = np.array(
            [
                [[int(s[(r.pk, l.pk)].malignant) for l in lesions] for r in readers]
                for s in sessions
            ],
            dtype=int,
        ).reshape(2, len(readers), len(lesions))
        return ratings, calls

    @property
    def size(self) -> int:
        """Number of ratings (lesions x readers and models) that enter the analysis."""
        return len(self.analysed_lesions) * (len(self.analysed_readers) + len(self.analysed_models))

    def analysis_data(self) -> comparison.ComparisonData:
        lesions, readers, models = (
            self.analysed_lesions,
            self.analysed_readers,
            self.analysed_models,
        )
        n = len(lesions)
        probability = np.array(
            [[self.calls[(r.pk, l.pk)].probability for l in lesions] for r in readers], dtype=float
        ).reshape(len(readers), n)
        call = np.array(
            [[int(self.calls[(r.pk, l.pk)].malignant) for l in lesions] for r in readers], dtype=int
        ).reshape(len(readers), n)
        score = np.array(
            [[self.scores[(m.pk, l.pk)][0] for l in lesions] for m in models], dtype=float
        ).reshape(len(models), n)
        sex = {Sex.MALE: 1.0, Sex.FEMALE: 0.0}
        return comparison.ComparisonData(
            lesion_ids=[l.pk for l in lesions],
            truth=np.array([int(l.malignant) for l in lesions], dtype=int),
            patients=np.array([l.patient_pk for l in lesions]),
            size_mm=np.array(
                [np.nan if l.long_axis_mm is None else l.long_axis_mm for l in lesions], dtype=float
            ),
            subtype=[l.subtype for l in lesions],
            age=np.array(
                [np.nan if l.age_years is None else l.age_years for l in lesions], dtype=float
            ),
            sex=np.array([sex.get(l.sex, np.nan) for l in lesions], dtype=float),
            readers=[comparison.Rater(r.key, r.label, "reader", r.simulated) for r in readers],
            reader_probability=probability,
            reader_call=call,
            models=[comparison.Rater(m.key, m.label, "model") for m in models],
            model_score=score,
            subtype_labels=dict(Subtype.choices),
        )


def _selected_model_versions(lesion_pks) -> list:
    """Per family and variant: the active version, else the newest with scores on these lesions.

    CNNs first, then radiomics models, each in the order of the vocabulary's ``VARIANTS``.
    """
    if ModelVersion is None or not lesion_pks:
        return []
    candidates = (
        ModelVersion.objects.filter(predictions__lesion_id__in=lesion_pks)
        .distinct()
        .order_by("-is_active", "-created_at", "-id")
    )
    chosen = {}
    for version in candidates:
        chosen.setdefault((version.family, version.variant), version)
    order = {name: i for i, name in enumerate(VARIANTS)}
    families = {name: i for i, name in enumerate(FAMILY_LABELS)}
    return sorted(
        chosen.values(),
        key=lambda v: (
            families.get(v.family, len(families)),
            v.family,
            order.get(v.variant, len(order)),
            v.variant,
        ),
    )


# The columns of a call that enter a comparison; every one is hashed. Timestamps other than
# locked_at are not (a save that changes nothing must not invalidate the cache, and converting
# them is slow).
_CALL_COLUMNS = (
    "pk",
    "reader_id",
    "lesion_id",
    "probability",
    "malignant",
    "blinded",
    "simulated",
    "locked_at",
    "revision",
)


def _hashed_calls(calls, lesion_pks, tag, digest) -> dict:
    """One session's ``calls`` on ``lesion_pks`` by (reader, lesion); each row into ``digest``, tagged."""
    by_reader_lesion = {}
    for row in calls.filter(lesion_id__in=lesion_pks).order_by("pk").values_list(*_CALL_COLUMNS):
        pk, reader_pk, lesion_pk, probability, malignant, blinded, simulated, locked_at, _ = row
        by_reader_lesion[(reader_pk, lesion_pk)] = Call(
            pk, probability, malignant, blinded, simulated, locked_at
        )
        digest.update(repr((tag, *row)).encode())
    return by_reader_lesion


def gather_inputs(reader_study, options: ComparisonOptions | None = None) -> ComparisonInputs:
    """Read the lesions, calls and predictions of ``reader_study`` and hash them into a revision."""
    options = options or ComparisonOptions()
    lesion_values = (
        Lesion.objects.filter(study__reader_study_cases__reader_study=reader_study)
        .order_by("study__patient__patient_id", "study_id", "label", "pk")
        .values_list(
            "pk",
            "label",
            "long_axis_mm",
            "study__patient_id",
            "study__patient__patient_id",
            "study__patient__age_years",
            "study__patient__sex",
            "pathology__subtype",
            "pathology__malignant",
            "pathology__revision",
            "pathology__entered_at",
        )
    )
    lesions, digest = [], hashlib.sha256()
    digest.update(json.dumps([ANALYSIS_VERSION, reader_study.pk, options.as_dict()]).encode())
    for (
        pk,
        label,
        size,
        patient_pk,
        patient_id,
        age,
        sex,
        subtype,
        malignant,
        revision,
        entered_at,
    ) in lesion_values:
        lesions.append(
            LesionRow(
                pk,
                label,
                patient_pk,
                patient_id,
                age,
                sex or "",
                size,
                subtype,
                malignant,
                revision,
            )
        )
        digest.update(
            repr(
                (
                    "L",
                    pk,
                    label,
                    size,
                    patient_pk,
                    age,
                    sex,
                    subtype,
                    malignant,
                    revision,
                    entered_at,
                )
            ).encode()
        )
    lesion_pks = [l.pk for l in lesions]
    calls = _hashed_calls(
        analysable_calls(reader_study, include_unblinded=options.include_unblinded),
        lesion_pks,
        "C",
        digest,
    )
    reader_pks = {reader_pk for reader_pk, _ in calls}
    simulated_readers = {reader_pk for (reader_pk, _), call in calls.items() if call.simulated}
    aided_calls = {}
    if reader_study.aided or analysable_calls(reader_study, session=Session.AIDED).exists():
        aided_calls = _hashed_calls(
            analysable_calls(
                reader_study, include_unblinded=options.include_unblinded, session=Session.AIDED
            ),
            lesion_pks,
            "A",
            digest,
        )
    frozen_model = None
    if ReaderStudyModel is not None:
        frozen = (
            ReaderStudyModel.objects.filter(reader_study=reader_study)
            .select_related("model_version")
            .first()
        )
        if frozen is not None:
            version = frozen.model_version
            frozen_model = {
                "id": version.pk,
                "name": str(version),
                "family": version.family,
                "variant": version.variant,
                "version": version.version,
                "experiment": version.experiment_name,
                "label": f"{FAMILY_LABELS.get(version.family, version.family)} {version.variant} "
                f"v{version.version}",
            }
            digest.update(repr(("Z", version.pk)).encode())
    reader_pks |= set(reader_study.readers.values_list("pk", flat=True))
    users = reader_study.readers.model.objects.filter(pk__in=reader_pks).order_by("username")
    readers = [
        ReaderColumn(u.pk, u.get_full_name() or u.get_username(), u.pk in simulated_readers)
        for u in users
    ]
    labels = [r.label for r in readers]
    for reader, user in zip(readers, users):
        if labels.count(reader.label) > 1:  # two readers with the same full name
            reader.label = f"{reader.label} ({user.get_username()})"
    digest.update(repr([("R", r.pk, r.label) for r in readers]).encode())
    models, scores = [], {}
    trained_patients = {}
    for version in _selected_model_versions(lesion_pks):
        trained = version.training_data.get("lesions", [])
        trained_patients[version.pk] = {entry.get("patient") for entry in trained}
        trained_on = version.training_data.get("source") or (
            f"{len(trained)} lesions of {len(trained_patients[version.pk])} patients of this archive"
        )
        models.append(
            ModelColumn(
                version.pk,
                version.variant,
                version.version,
                version.experiment_name,
                list(version.phases or []),
                version.family,
                trained_on,
            )
        )
        digest.update(
            repr(
                (
                    "M",
                    version.pk,
                    version.family,
                    version.variant,
                    version.version,
                    version.is_active,
                )
            ).encode()
        )
    if models:
        patient_of = {l.pk: l.patient_pk for l in lesions}
        prediction_values = (
            Prediction.objects.filter(
                model_version_id__in=[m.pk for m in models], lesion_id__in=lesion_pks
            )
            .order_by("pk")
            .values_list("pk", "model_version_id", "lesion_id", "kind", "score", "fold")
        )
        final_scores = {}
        for pk, version_pk, lesion_pk, kind, score, fold in prediction_values:
            if kind == PredictionKind.OUT_OF_FOLD:
                scores[(version_pk, lesion_pk)] = (score, fold)
                digest.update(repr(("P", pk, version_pk, lesion_pk, score, fold)).encode())
            elif patient_of[lesion_pk] not in trained_patients[version_pk]:
                final_scores[(version_pk, lesion_pk)] = (pk, score)
        for (version_pk, lesion_pk), (pk, score) in final_scores.items():
            if (version_pk, lesion_pk) not in scores:  # out-of-fold first
                scores[(version_pk, lesion_pk)] = (score, None)
                digest.update(repr(("F", pk, version_pk, lesion_pk, score)).encode())
    inputs = ComparisonInputs(
        reader_study,
        options,
        lesions,
        readers,
        models,
        calls,
        scores,
        digest.hexdigest(),
        aided_calls=aided_calls,
        frozen_model=frozen_model,
    )
    _choose_analysed(inputs)
    return inputs


def _choose_analysed(inputs: ComparisonInputs):
    """Complete-case rule: lesions with pathology; readers and models that rated all of them."""
    with_truth = [l for l in inputs.lesions if l.malignant is not None]
    without = len(inputs.lesions) - len(with_truth)
    if without:
        inputs.exclusions.append(f"{without} lesion(s) without pathology left out")
    for reader in inputs.readers:
        done = sum((reader.pk, l.pk) in inputs.calls for l in with_truth)
        if with_truth and done == len(with_truth):
            inputs.analysed_readers.append(reader)
        else:
            inputs.exclusions.append(
                f"reader {reader.label} left out: analysable calls on {done} of {len(with_truth)} lesions"
            )
    for model in inputs.models:
        done = sum((model.pk, l.pk) in inputs.scores for l in with_truth)
        model.score_kinds = {
            "out_of_fold" if inputs.scores[(model.pk, l.pk)][1] is not None else "final"
            for l in with_truth
            if (model.pk, l.pk) in inputs.scores
        }
        if with_truth and done == len(with_truth):
            inputs.analysed_models.append(model)
        else:
            inputs.exclusions.append(
                f"model {model.label} left out: held-out scores (out-of-fold, or from a model that never trained on "
                f"the patient) for {done} of {len(with_truth)} lesions"
            )
    inputs.analysed_lesions = (
        with_truth if (inputs.analysed_readers or inputs.analysed_models) else []
    )
    if inputs.has_aided_session:
        for reader in inputs.analysed_readers:
            done = sum((reader.pk, l.pk) in inputs.aided_calls for l in inputs.analysed_lesions)
            if inputs.analysed_lesions and done == len(inputs.analysed_lesions):
                inputs.aided_readers.append(reader)
            else:
                inputs.exclusions.append(
                    f"reader {reader.label} left out of aided − unaided: analysable aided calls on {done} of "
                    f"{len(inputs.analysed_lesions)} lesions"
                )
