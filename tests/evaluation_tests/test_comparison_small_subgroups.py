"""A subgroup too small for one statistic shows that statistic's error; the rest of the analysis stands."""

import numpy as np

from evaluation.stats import comparison


def test_readers_who_call_every_lesion_of_a_subgroup_alike_get_a_kappa_error_not_a_failed_analysis():
    truth = np.array([1, 0, 1, 0, 1, 0, 1, 1])
    calls = np.array(
        [[1, 0, 0, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1, 1, 1]]
    )  # every lesion > 2 cm called malignant
    data = comparison.ComparisonData(
        lesion_ids=list(range(8)),
        truth=truth,
        patients=np.arange(8),
        size_mm=np.array([12.0, 14, 16, 18, 25, 30, 35, 38]),
        subtype=[""] * 8,
        age=np.linspace(40, 75, 8),
        sex=np.array([1, 0] * 4, float),
        readers=[
            comparison.Rater("reader:1", "R1", "reader"),
            comparison.Rater("reader:2", "R2", "reader"),
        ],
        reader_probability=np.where(calls == 1, 80, 20).astype(float),
        reader_call=calls,
        models=[comparison.Rater("model:CM", "CNN CM v1", "model")],
        model_score=np.array([[0.9, 0.3, 0.6, 0.4, 0.8, 0.35, 0.7, 0.65]]),
    )
    result = comparison.compare(data)
    large = next(g for g in result["subgroups"] if g["key"] == "size_20_40")
    assert "undefined" in large["kappa"]["cohen"][0]["error"]
    everything = result["subgroups"][0]
    assert everything["key"] == "all" and "error" not in everything["kappa"]["cohen"][0]
    assert everything["auc"][0]["auc"] > 0.5
