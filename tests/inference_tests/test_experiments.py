"""Experiments are data: JSON round trip, validation, the source study's six variants."""
import pytest

from inference.experiments import BUILDER_MIN_INPUT_SIZE, EXPERIMENTS, Experiment, ExperimentError, get_experiment


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
    assert experiment.epochs == 2 and experiment.patch.size_px == 16 and experiment.patch.neighbours == 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"builder": "resnet"}, "unknown builder"),
        ({"builder": "inception_v3", "patch": {"size_px": 32}}, "size_px >= 75"),
        ({"folds": 1}, "folds >= 2"),
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
