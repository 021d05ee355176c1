"""Experiments are data: JSON round trip, validation, the source study's six variants."""

import pytest

from inference.experiments import (
    BUILDER_MIN_INPUT_SIZE,
    EXPERIMENTS,
    Experiment,
    ExperimentError,
    get_experiment,
)


def test_source_study_has_the_six_variants():
    experiment = get_experiment("source-study")
    assert experiment.variant_names == ["NC", "CM", "NG", "EX", "CM+NG", "ALL"]
    assert experiment.variant("ALL").phases == ("NC", "CM", "NG", "EX")
    assert experiment.builder == "small_cnn" and experiment.folds == 5


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_registered_experiment_round_trips_through_json(name):
    experiment = EXPERIMENTS[name]
    assert Experiment.from_dict(experiment.as_dict()) == experiment


def test_overrides_replace_fields_and_nested_patch_values():
    experiment = get_experiment("source-study", {"epochs": 2, "patch": {"size_px": 16}})
    assert (
        experiment.epochs == 2
        and experiment.patch.size_px == 16
        and experiment.patch.neighbours == 2
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"builder": "resnet"}, "unknown builder"),
        ({"builder": "inception_v3", "patch": {"size_px": 32}}, "size_px >= 75"),
        ({"folds": 1}, "folds: must be from 2 to 20"),
        ({"patch": {"roi_scale": -1}}, "roi_scale"),
        ({"colour": "red"}, "unknown experiment field"),
        ({"builder_options": {"weights": "/nonexistent/weights.h5"}}, "never downloaded"),
    ],
)
def test_invalid_experiments_are_refused_with_the_reason(overrides, message):
    with pytest.raises(ExperimentError, match=message):
        get_experiment("source-study", overrides)


def test_unknown_variant_names_the_choices():
    with pytest.raises(ExperimentError, match="CM"):
        get_experiment("source-study").variant("XX")


def test_builder_list_matches_the_registered_keras_builders():
    from inference.networks import BUILDERS

    assert set(BUILDERS) == set(BUILDER_MIN_INPUT_SIZE)


def test_the_radiomics_experiment_has_the_six_variants_and_its_settings_as_data():
    experiment = get_experiment("radiomics")
    assert experiment.family == "radiomics" and experiment.variant_names == [
        "NC",
        "CM",
        "NG",
        "EX",
        "CM+NG",
        "ALL",
    ]
    assert (
        experiment.model_builder == "radiomics-logistic"
        and get_experiment("source-study").model_builder == "small_cnn"
    )
    data = experiment.as_dict()
    assert (
        data["radiomics"]["spacing_mm"] == 1.0
        and data["radiomics"]["discretisation"] == "fixed_bin_size"
    )
    assert data["classifier"]["kind"] == "logistic"


def test_radiomics_and_classifier_overrides_merge_into_the_experiment():
    experiment = get_experiment(
        "radiomics",
        {"radiomics": {"bin_width_hu": 10}, "classifier": {"kind": "gradient_boosting"}},
    )
    assert experiment.radiomics.bin_width_hu == 10 and experiment.radiomics.spacing_mm == 1.0
    assert (
        experiment.classifier.kind == "gradient_boosting"
        and experiment.model_builder == "radiomics-gradient-boosting"
    )
    assert Experiment.from_dict(experiment.as_dict()) == experiment


def test_an_experiment_stored_before_the_families_reads_as_a_cnn():
    data = EXPERIMENTS["source-study"].as_dict()
    for key in ("family", "radiomics", "classifier"):
        data.pop(key)
    assert Experiment.from_dict(data) == EXPERIMENTS["source-study"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"radiomics": {"bin_widht": 10}},
            r"unknown radiomics option\(s\) \['bin_widht'\]; the options are",
        ),
        (
            {"radiomics": {"families": ["wavelet"]}},
            r"radiomics.families: unknown family \['wavelet'\]",
        ),
        (
            {"radiomics": {"interpolation": "lanczos"}},
            "radiomics.interpolation 'lanczos' is unknown",
        ),
        ({"radiomics": {"intensity_range_hu": [100, -100]}}, "radiomics.intensity_range_hu"),
        ({"classifier": {"kind": "svm"}}, "classifier.kind 'svm' is unknown"),
        ({"classifier": {"max_features": 0}}, "classifier.max_features"),
        ({"classifier": {"penalty": "l1"}}, r"unknown classifier option\(s\) \['penalty'\]"),
        ({"family": "transformer"}, "unknown family 'transformer'"),
    ],
)
def test_invalid_radiomics_experiments_are_refused_naming_the_field(overrides, message):
    with pytest.raises(ExperimentError, match=message):
        get_experiment("radiomics", overrides)


def test_set_texts_parse_as_json_values_with_dotted_keys_nesting_and_a_text_without_equals_is_refused():
    from inference.experiments import parse_overrides

    assert parse_overrides(
        ["epochs=40", "patch.size_px=64", "patch.neighbours=3", "builder=roi_cnn"]
    ) == {"epochs": 40, "patch": {"size_px": 64, "neighbours": 3}, "builder": "roi_cnn"}
    with pytest.raises(ExperimentError, match="key=value, got 'epochs'"):
        parse_overrides(["epochs"])
