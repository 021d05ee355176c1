"""Timing of the statistics core against plain O(m·n) baselines.

    python benchmarks/stats.py [--quick]

1. Fast DeLong (Sun & Xu 2014) on 100,000 cases x 6 scores versus the
   textbook DeLong computation: every positive-negative pair compared to get
   the placement values (O(m·n) per score).
2. Obuchowski-Rockette MRMC with jackknife covariance, 2 treatments x 10
   readers x 2,000 cases, versus a plain jackknife that recomputes every AUC
   pairwise with one case left out (O(N·m·n) per reader).

Where a baseline would take more than ~30 s it is timed on a subsample and
extrapolated by its operation count; the output says so.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.stats import mrmc, roc  # noqa: E402


def pairwise_placements(score, positive, chunk=256):
    """Baseline: V10, V01 and AUC by comparing every positive with every negative."""
    positives, negatives = score[positive], score[~positive]
    v10 = np.empty(len(positives))
    v01 = np.zeros(len(negatives))
    for start in range(0, len(positives), chunk):
        diff = positives[start : start + chunk, None] - negatives[None, :]
        psi = (diff > 0) + 0.5 * (diff == 0)
        v10[start : start + chunk] = psi.mean(axis=1)
        v01 += psi.sum(axis=0)
    return v10.mean(), v10, v01 / len(positives)


def baseline_delong(scores, truth):
    positive = truth == 1
    parts = [pairwise_placements(score, positive) for score in scores]
    v10 = np.array([p[1] for p in parts])
    v01 = np.array([p[2] for p in parts])
    return np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]


def pairwise_auc(score, positive):
    diff = score[positive][:, None] - score[~positive][None, :]
    return ((diff > 0) + 0.5 * (diff == 0)).mean()


def baseline_jackknife_covariance(rows, truth, leave_out):
    """Plain jackknife: recompute each AUC pairwise with one case removed."""
    positive = truth == 1
    pseudo = np.empty((len(leave_out), rows.shape[0]))
    keep = np.ones(len(truth), dtype=bool)
    for k, case in enumerate(leave_out):
        keep[case] = False
        pseudo[k] = [pairwise_auc(row[keep], positive[keep]) for row in rows]
        keep[case] = True
    return pseudo


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def simulated_scores(rng, n_cases, n_scores):
    truth = (rng.random(n_cases) < 0.4).astype(int)
    latent = truth + rng.normal(size=n_cases)
    scores = latent[None, :] + rng.normal(scale=0.8, size=(n_scores, n_cases))
    return np.round(scores, 2), truth  # rounding makes ties, as real ratings have


def benchmark_delong(rng, n_cases, n_scores, baseline_cases):
    scores, truth = simulated_scores(rng, n_cases, n_scores)
    ours, ours_seconds = timed(roc.delong_covariance, scores, truth)
    print(f"Fast DeLong, {n_cases:,} cases x {n_scores} scores: {ours_seconds:.3f} s")
    m, n = truth.sum(), len(truth) - truth.sum()
    sub = (
        rng.choice(n_cases, baseline_cases, replace=False)
        if baseline_cases < n_cases
        else np.arange(n_cases)
    )
    sub_truth = truth[sub]
    baseline_cov, baseline_seconds = timed(baseline_delong, scores[:, sub], sub_truth)
    check = roc.delong_covariance(scores[:, sub], sub_truth).covariance
    assert np.allclose(baseline_cov, check, atol=1e-12), "baseline and fast DeLong disagree"
    if len(sub) < n_cases:
        sub_pairs = sub_truth.sum() * (len(sub_truth) - sub_truth.sum())
        estimate = baseline_seconds * (m * n) / sub_pairs
        print(
            f"  pairwise baseline timed on a {len(sub):,}-case subsample: {baseline_seconds:.2f} s; "
            f"EXTRAPOLATED by pair count (x{m * n / sub_pairs:.0f}) to {estimate:.0f} s for {n_cases:,} cases"
        )
    else:
        estimate = baseline_seconds
        print(f"  pairwise baseline: {estimate:.2f} s")
    print("  (fast DeLong equals the pairwise covariance on the subsample to 1e-12)")
    print(f"  ratio baseline / ours: {estimate / ours_seconds:,.0f}x")


def benchmark_mrmc(rng, n_treatments, n_readers, n_cases, baseline_leave_outs):
    truth = (rng.random(n_cases) < 0.4).astype(int)
    case_effect = truth + rng.normal(size=n_cases)
    ratings = np.round(
        case_effect[None, None, :] + rng.normal(scale=0.7, size=(n_treatments, n_readers, n_cases)),
        1,
    )
    _, ours_seconds = timed(mrmc.or_mrmc, ratings, truth)
    print(
        f"OR MRMC (jackknife), {n_treatments} treatments x {n_readers} readers x {n_cases:,} cases: "
        f"{ours_seconds:.3f} s"
    )
    rows = ratings.reshape(-1, n_cases)
    leave_out = rng.choice(n_cases, min(baseline_leave_outs, n_cases), replace=False)
    pseudo, baseline_seconds = timed(baseline_jackknife_covariance, rows, truth, leave_out)
    ours_pseudo = mrmc.jackknife_metrics(rows, truth == 1, "auc", None)[leave_out]
    assert np.allclose(pseudo, ours_pseudo, atol=1e-12), "baseline and fast jackknife disagree"
    estimate = baseline_seconds * n_cases / len(leave_out)
    if len(leave_out) < n_cases:
        print(
            f"  plain jackknife timed on {len(leave_out)} of {n_cases:,} left-out cases: {baseline_seconds:.2f} s; "
            f"EXTRAPOLATED linearly (x{n_cases / len(leave_out):.0f}) to {estimate:.0f} s"
        )
    else:
        print(f"  plain jackknife: {estimate:.2f} s")
    print("  (leave-one-out AUCs equal the pairwise recomputation to 1e-12)")
    print(f"  ratio baseline / ours: {estimate / ours_seconds:,.0f}x")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds in all")
    args = parser.parse_args()
    rng = np.random.default_rng(20240601)
    if args.quick:
        benchmark_delong(rng, 10_000, 6, baseline_cases=2_000)
        benchmark_mrmc(rng, 2, 10, 500, baseline_leave_outs=20)
    else:
        benchmark_delong(rng, 100_000, 6, baseline_cases=10_000)
        benchmark_mrmc(rng, 2, 10, 2_000, baseline_leave_outs=40)


if __name__ == "__main__":
    main()
