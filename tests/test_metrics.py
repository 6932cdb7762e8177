"""Tests of bpnet.steps.metrics: the paper's profile auPRC (hand-worked), count metrics, JSD and NLL."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import multinomial, pearsonr, spearmanr
from sklearn.metrics import average_precision_score

from bpnet.steps import metrics as M

# ---------------------------------------------------------------------------------------------
# A hand-worked auPRC example.
#
# Thresholds: pos_min_threshold 0.2, neg_max_threshold 0.1, required_min_pos_counts 2, so a
# region is kept when its per-strand total, averaged over strands, is > 2 / 0.2 = 10 reads.
# Three regions, 5 positions, 2 strands (position axis first, as in the arrays).
#
#   region A  + [5, 0, 1, 2, 2] (10 reads)  - [0, 2, 9, 0, 1] (12)  mean 11  > 10: kept
#   region B  + [3, 0, 0, 0, 0] (3)         - [0, 0, 0, 0, 2] (2)   mean 2.5    : dropped
#   region C  + [0, 0, 0, 0, 0] (0)         - [20, 1, 0, 0, 3] (24) mean 12  > 10: kept
#
# Fractions and labels (P >= 0.2, A in [0.1, 0.2), N < 0.1; a strand without reads is N):
#   A+  [.5, 0, .1, .2, .2]           -> P N A P P   (.1 is ambiguous, .2 is positive: >=)
#   A-  [0, .167, .75, 0, .083]       -> N A P N N
#   C+  no reads                      -> N N N N N
#   C-  [.833, .042, 0, 0, .125]      -> P N N N A
# ---------------------------------------------------------------------------------------------

KW = dict(pos_min_threshold=0.2, neg_max_threshold=0.1, required_min_pos_counts=2.0)


def _stack(pos, neg):
    return np.stack([np.asarray(pos, float), np.asarray(neg, float)], axis=-1)  # (L, 2)


HAND_COUNTS = np.stack([
    _stack([5, 0, 1, 2, 2], [0, 2, 9, 0, 1]),  # A
    _stack([3, 0, 0, 0, 0], [0, 0, 0, 0, 2]),  # B
    _stack([0, 0, 0, 0, 0], [20, 1, 0, 0, 3]),  # C
])
HAND_PROBS = np.stack([
    _stack([0.40, 0.05, 0.21, 0.16, 0.18], [0.12, 0.30, 0.35, 0.15, 0.08]),
    # B's predictions put the top score on a negative: they would change the result if B counted.
    _stack([0.01, 0.01, 0.01, 0.01, 0.96], [0.96, 0.01, 0.01, 0.01, 0.01]),
    _stack([0.50, 0.21, 0.13, 0.09, 0.07], [0.25, 0.45, 0.11, 0.06, 0.13]),
])


def _hand_profile():
    """Predictions as expected counts: A's - strand scaled by 10, so only renormalising per
    window and strand recovers HAND_PROBS."""
    profile = HAND_PROBS.copy()
    profile[0, :, 1] *= 10.0
    return profile


def test_auprc_hand_worked_binsize_1():
    # Non-ambiguous positions of the kept regions A and C, (label, prediction):
    labels = [1, 0, 1, 1,      0, 1, 0, 0,  # A+ (pos 2 ambiguous), A- (pos 1 ambiguous)
              0, 0, 0, 0, 0,   1, 0, 0, 0]  # C+ (no reads: all negative), C- (pos 4 ambiguous)
    preds = [0.40, 0.05, 0.16, 0.18, 0.12, 0.35, 0.15, 0.08,
             0.50, 0.21, 0.13, 0.09, 0.07, 0.25, 0.45, 0.11, 0.06]
    # Ranked by prediction: .50 N, .45 N, .40 P, .35 P, .25 P, .21 N, .18 P, .16 P, then negatives:
    # AP = mean over the 5 positives of the precision at their rank.
    by_hand = (1 / 3 + 2 / 4 + 3 / 5 + 4 / 7 + 5 / 8) / 5
    assert average_precision_score(labels, preds) == pytest.approx(by_hand)

    res = M.profile_auprc(HAND_COUNTS, _hand_profile(), binsize=1, **KW)
    assert res.auprc == pytest.approx(by_hand)
    assert (res.n_positives, res.n_negatives, res.n_ambiguous, res.n_regions) == (5, 12, 3, 2)
    assert res.reason is None


def test_auprc_hand_worked_binsize_2():
    # Bins of 2 positions; the 5th position does not fill a bin and is dropped (official code).
    #   A+  [P N | A P]  -> P, P  (positive wins over ambiguous)   preds max: .40, .21
    #   A-  [N A | P N]  -> A, P  (ambiguous wins over negative)   preds max: .30 (masked), .35
    #   C+  [N N | N N]  -> N, N                                   preds max: .50, .13
    #   C-  [P N | N N]  -> P, N  (the ambiguous 5th position is gone) preds max: .45, .11
    labels = [1, 1, 1, 0, 0, 1, 0]
    preds = [0.40, 0.21, 0.35, 0.50, 0.13, 0.45, 0.11]
    # Ranked: .50 N, .45 P, .40 P, .35 P, .21 P, .13 N, .11 N
    by_hand = (1 / 2 + 2 / 3 + 3 / 4 + 4 / 5) / 4
    assert average_precision_score(labels, preds) == pytest.approx(by_hand)

    res = M.profile_auprc(HAND_COUNTS, _hand_profile(), binsize=2, **KW)
    assert res.auprc == pytest.approx(by_hand)
    assert (res.n_positives, res.n_negatives, res.n_ambiguous, res.n_regions) == (4, 3, 1, 2)


def test_bin_labels_and_bin_max_drop_the_incomplete_bin():
    labels = np.array([1, 0, -1, 0, 0, 0, -1], dtype=np.int8)[None, :, None]  # L = 7
    assert M.bin_labels(labels, 2)[0, :, 0].tolist() == [1, -1, 0]
    assert M.bin_labels(labels, 3)[0, :, 0].tolist() == [1, 0]
    values = np.arange(7.0)[None, :, None]
    assert M.bin_max(values, 3)[0, :, 0].tolist() == [2.0, 5.0]


def test_region_filter_uses_paper_defaults():
    # 2.5 / 0.015 = 166.67 reads per strand on average; strictly greater is kept.
    counts = np.zeros((3, 10, 2))
    counts[0, 0] = [166, 166]
    counts[1, 0] = [167, 167]
    counts[2, 0] = [334, 0]  # mean over strands 167: kept although one strand is empty
    assert M.regions_kept(counts).tolist() == [False, True, True]


def test_auprc_no_region_kept_is_nan_with_reason():
    counts = np.ones((4, 10, 2))
    res = M.profile_auprc(counts, np.full((4, 10, 2), 0.1))
    assert math.isnan(res.auprc) and math.isnan(res.random_auprc)
    assert res.n_regions == 0 and "no region" in res.reason


def test_auprc_no_positive_is_nan_with_reason():
    # 1000 reads spread evenly over 100 positions: every fraction is 0.01, ambiguous.
    counts = np.full((2, 100, 2), 10.0)
    res = M.profile_auprc(counts, np.full((2, 100, 2), 0.01))
    assert math.isnan(res.auprc) and res.n_positives == 0 and res.n_regions == 2
    assert "no positive" in res.reason


def test_auprc_binsize_longer_than_window_is_nan():
    res = M.profile_auprc(HAND_COUNTS, HAND_PROBS, binsize=6, **KW)
    assert math.isnan(res.auprc) and "exceeds" in res.reason


def _peaky(rng, n=60, length=200):
    counts = rng.poisson(0.3, size=(n, length, 2)).astype(float)
    peaks = rng.integers(0, length, size=(n, 3))
    for k in range(3):
        counts[np.arange(n), peaks[:, k]] += rng.poisson(60, size=(n, 2))
    return counts


def test_random_baseline_is_the_official_shuffle():
    rng = np.random.default_rng(0)
    counts = _peaky(rng)
    probs = M.profile_to_probs(counts + rng.gamma(1.0, 1.0, size=counts.shape))
    res = M.profile_auprc(counts, probs, binsize=5, seed=7)
    # Official: permute the position axis (one permutation for all regions), then the regions.
    keep = M.regions_kept(counts)
    shuffler = np.random.default_rng(7)
    shuffled = probs[keep][:, shuffler.permutation(counts.shape[1])]
    shuffled = shuffled[shuffler.permutation(int(keep.sum()))]
    labels = M.bin_labels(M.position_labels(counts[keep]), 5)
    scored = labels != -1
    expected = average_precision_score(labels[scored] == 1, M.bin_max(shuffled, 5)[scored])
    assert res.random_auprc == pytest.approx(expected)
    # The shuffle destroys the signal: near the positive rate, far below the real auPRC.
    rate = res.n_positives / (res.n_positives + res.n_negatives)
    assert res.random_auprc < rate + 0.1 < res.auprc
    # Same seed, same numbers; another seed, another baseline.
    assert M.profile_auprc(counts, probs, binsize=5, seed=7) == res
    assert M.profile_auprc(counts, probs, binsize=5, seed=8).random_auprc != res.random_auprc


def test_perfect_prediction_has_auprc_one():
    counts = _peaky(np.random.default_rng(1))
    res = M.profile_auprc(counts, M.profile_to_probs(counts))
    assert res.auprc == pytest.approx(1.0)


def test_profile_to_probs_normalises_and_makes_zero_uniform():
    profile = np.zeros((2, 4, 2))
    profile[0, :, 0] = [1, 1, 2, 0]
    probs = M.profile_to_probs(profile)
    assert probs[0, :, 0].tolist() == [0.25, 0.25, 0.5, 0.0]
    np.testing.assert_allclose(probs[1], 0.25)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


# ---------------------------------------------------------------------------------------------
# Count metrics


def test_count_metrics_against_scipy_on_log_scale():
    obs = np.array([0, 3, 10, 50, 200, 1000], dtype=float)
    pred = np.array([5, 2, 30, 40, 500, 700], dtype=float)
    out = M.count_metrics(obs, pred)
    lo, lp = np.log1p(obs), np.log1p(pred)
    assert out["pearson"] == pytest.approx(pearsonr(lo, lp)[0])
    assert out["spearman"] == pytest.approx(spearmanr(lo, lp)[0])
    assert out["mse"] == pytest.approx(np.mean((lo - lp) ** 2))
    assert out["n"] == 6
    # On the raw scale the Pearson correlation differs: the log is really applied.
    assert abs(pearsonr(obs, pred)[0] - out["pearson"]) > 0.01


def test_count_metrics_perfect_and_anticorrelated():
    obs = np.array([1.0, 5, 20, 100, 400])
    perfect = M.count_metrics(obs, obs)
    assert perfect["pearson"] == pytest.approx(1.0)
    assert perfect["spearman"] == pytest.approx(1.0)
    assert perfect["mse"] == 0.0
    # Reversed on the log scale: log1p(pred) = c - log1p(obs).
    anti_pred = np.expm1(10.0 - np.log1p(obs))
    anti = M.count_metrics(obs, anti_pred)
    assert anti["pearson"] == pytest.approx(-1.0)
    assert anti["spearman"] == pytest.approx(-1.0)


def test_count_metrics_constant_or_tiny_input_is_nan():
    const = M.count_metrics(np.array([1.0, 2, 3]), np.array([4.0, 4, 4]))
    assert math.isnan(const["pearson"]) and math.isnan(const["spearman"])
    assert const["mse"] > 0
    one = M.count_metrics(np.array([3.0]), np.array([3.0]))
    assert math.isnan(one["pearson"]) and one["mse"] == 0.0


# ---------------------------------------------------------------------------------------------
# JSD and multinomial NLL


def _direct_jsd(obs, q):
    p = obs / obs.sum()
    m = (p + q) / 2
    kl = lambda a, b: sum(x * math.log(x / y) for x, y in zip(a, b) if x > 0)  # noqa: E731
    return math.sqrt((kl(p, m) + kl(q, m)) / 2)


def test_jsd_matches_direct_computation():
    rng = np.random.default_rng(3)
    counts = rng.poisson(2.0, size=(4, 30, 2)).astype(float)
    counts[2, :, 1] = 0  # a strand without reads: no observed profile, skipped
    probs = M.profile_to_probs(rng.gamma(1.0, 1.0, size=counts.shape))
    d = M.jsd_per_window(counts, probs)
    assert d.shape == (4, 2)
    for i in range(4):
        for s in range(2):
            if counts[i, :, s].sum() == 0:
                assert math.isnan(d[i, s])
            else:
                assert d[i, s] == pytest.approx(_direct_jsd(counts[i, :, s], probs[i, :, s]))
                # ChromBPNet's call: observed / (total + 0.001) against the prediction.
                obs = counts[i, :, s] / (counts[i, :, s].sum() + 0.001)
                assert d[i, s] == pytest.approx(jensenshannon(obs, probs[i, :, s]))
    finite = d[np.isfinite(d)]
    assert finite.size == 7
    assert M.jensen_shannon(counts, probs) == pytest.approx(finite.mean())


def test_jsd_bounds():
    counts = np.zeros((1, 4, 2))
    counts[0, :, 0] = [3, 1, 0, 0]
    counts[0, :, 1] = [1, 0, 0, 0]
    same = M.profile_to_probs(counts)
    assert M.jensen_shannon(counts, same) == pytest.approx(0.0, abs=1e-7)
    disjoint = np.zeros((1, 4, 2))
    disjoint[0, 3] = 1.0
    assert M.jensen_shannon(counts, disjoint) == pytest.approx(math.sqrt(math.log(2)))


def test_nll_matches_scipy_multinomial():
    rng = np.random.default_rng(4)
    counts = rng.poisson(1.5, size=(3, 25, 2)).astype(float)
    probs = M.profile_to_probs(rng.gamma(1.0, 1.0, size=counts.shape))
    nll = M.multinomial_nll_per_window(counts, probs)
    assert nll.shape == (3, 2)
    for i in range(3):
        for s in range(2):
            x = counts[i, :, s]
            direct = -multinomial(int(x.sum()), probs[i, :, s]).logpmf(x)
            assert nll[i, s] == pytest.approx(direct, rel=1e-9)
    assert M.multinomial_nll(counts, probs) == pytest.approx(nll.mean())


def test_nll_zero_probability_with_reads_is_infinite_and_no_reads_is_zero():
    counts = np.zeros((2, 3, 1))
    counts[0, :, 0] = [2, 1, 0]
    probs = np.zeros((2, 3, 1))
    probs[0, :, 0] = [1.0, 0.0, 0.0]
    probs[1, :, 0] = [0.2, 0.3, 0.5]
    nll = M.multinomial_nll_per_window(counts, probs)
    assert math.isinf(nll[0, 0]) and nll[1, 0] == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        M.profile_auprc(np.zeros((2, 5, 2)), np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match="same shape"):
        M.jsd_per_window(np.zeros((2, 5)), np.zeros((2, 5)))
