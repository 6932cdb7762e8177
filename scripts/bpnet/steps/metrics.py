"""The paper's evaluation metrics: profile auPRC, count correlations, JSD and multinomial NLL.

Pure numpy / scipy / scikit-learn, vectorised over windows. Arrays of one task are
``(N, L, S)``: N windows, L positions, S strands (2). ``counts`` are observed 5'-end counts;
``probs`` are predicted probabilities over positions (each ``probs[i, :, s]`` sums to 1); use
:func:`profile_to_probs` to turn predicted expected counts into probabilities.

Profile auPRC follows the official ``bpnet/metrics.py`` (``eval_profile`` with the paper's
settings ``pos_min_threshold=0.015, neg_max_threshold=0.005, required_min_pos_counts=2.5``):

1. keep regions whose per-strand total, averaged over strands, exceeds
   ``required_min_pos_counts / pos_min_threshold`` (strictly greater, ~166.7 reads);
2. per strand ``frac = counts / strand total``;
3. positive if ``frac >= pos_min_threshold``, ambiguous if ``neg_max_threshold <= frac <
   pos_min_threshold``, negative otherwise;
4. bins of ``binsize`` positions: positive if any position is positive, else ambiguous if any is
   ambiguous, else negative; the prediction of a bin is the max probability inside it. As in the
   official ``bin_counts_max`` / ``bin_counts_amb`` (``outlen = L // binsize``), the last
   ``L % binsize`` positions that do not fill a whole bin are dropped;
5. ``sklearn.metrics.average_precision_score`` over all non-ambiguous bins of all kept regions
   and both strands. The random baseline shuffles the predictions as the official code does:
   one permutation of the position axis (shared by all regions and strands), then one of the
   region axis, scored against the same labels.

Degenerate cases, where the official code either divides 0 by 0 or gives up:

* a strand with no reads in a kept region has ``frac = 0/0``; the official code's NaN fractions
  fail both comparisons, so all its positions are negative. Here they are negative too (frac 0).
* a predicted strand that sums to 0 has no shape; :func:`profile_to_probs` makes it uniform (the
  official code would produce NaN and drop those bins).
* no region kept or no bins (``binsize > L``): sklearn raises and the official code returns NaN
  silently; here auPRC is NaN and :attr:`AuprcResult.reason` says why.
* no positive bin: sklearn warns and returns 0.0 (what the official code would report); here it
  is NaN with a reason, since precision is undefined without positives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon as _scipy_jsd
from scipy.special import gammaln, xlogy
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

# Label codes of positions and bins (the official code uses the same: 1, 0 and -1 = masked).
POSITIVE, NEGATIVE, AMBIGUOUS = 1, 0, -1

# The paper's settings (official ``default_peak_pred_metric``).
POS_MIN_THRESHOLD = 0.015
NEG_MAX_THRESHOLD = 0.005
REQUIRED_MIN_POS_COUNTS = 2.5

# ChromBPNet divides the observed counts by (total + 0.001) before the JSD.
JSD_PSEUDOCOUNT = 0.001


@dataclass(frozen=True)
class AuprcResult:
    """Profile auPRC of one task at one bin size.

    Attributes:
        auprc: average precision of the predictions (NaN when it cannot be computed).
        random_auprc: the same for the shuffled predictions (the random baseline).
        n_positives: positive bins scored (all kept regions, both strands).
        n_negatives: negative bins scored.
        n_ambiguous: ambiguous bins left out.
        n_regions: regions that passed the read-count filter.
        reason: why ``auprc`` is NaN, else ``None``.
    """

    auprc: float
    random_auprc: float
    n_positives: int
    n_negatives: int
    n_ambiguous: int
    n_regions: int
    reason: str | None = None


def _check_3d(counts: np.ndarray, probs: np.ndarray) -> None:
    if counts.ndim != 3 or counts.shape != probs.shape:
        raise ValueError(
            f"counts and probs must both be (N, L, S) of the same shape, got {counts.shape} "
            f"and {probs.shape}"
        )


def profile_to_probs(profile: np.ndarray) -> np.ndarray:
    """Predicted expected counts ``(N, L, S)`` -> probabilities over positions ``(N, L, S)``.

    Each window and strand is divided by its sum over positions; one that sums to 0 (no
    predicted reads, so no shape) becomes uniform ``1 / L``.
    """
    profile = np.asarray(profile, dtype=np.float64)
    total = profile.sum(axis=1, keepdims=True)
    uniform = np.full_like(profile, 1.0 / max(profile.shape[1], 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, profile / np.where(total > 0, total, 1.0), uniform)


def position_labels(
    counts: np.ndarray,
    pos_min_threshold: float = POS_MIN_THRESHOLD,
    neg_max_threshold: float = NEG_MAX_THRESHOLD,
) -> np.ndarray:
    """Label each position of ``counts`` ``(N, L, S)`` by its fraction of the strand's reads.

    Returns ``(N, L, S)`` int8: 1 positive (``frac >= pos_min_threshold``), -1 ambiguous
    (``neg_max_threshold <= frac < pos_min_threshold``), 0 negative. A strand without reads is
    all negative.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    fracs = counts / np.where(total > 0, total, 1.0)
    labels = np.full(counts.shape, NEGATIVE, dtype=np.int8)
    labels[fracs >= neg_max_threshold] = AMBIGUOUS
    labels[fracs >= pos_min_threshold] = POSITIVE
    labels[np.broadcast_to(total <= 0, counts.shape)] = NEGATIVE
    return labels


def bin_labels(labels: np.ndarray, binsize: int) -> np.ndarray:
    """Bin position labels ``(N, L, S)`` to ``(N, L // binsize, S)``.

    A bin is positive if any position is positive, else ambiguous if any is ambiguous, else
    negative. The last ``L % binsize`` positions (an incomplete bin) are dropped, as in the
    official ``bin_counts_amb``.
    """
    n, length, s = labels.shape
    nb = length // binsize
    blocks = labels[:, : nb * binsize].reshape(n, nb, binsize, s)
    has_pos = (blocks == POSITIVE).any(axis=2)
    has_amb = (blocks == AMBIGUOUS).any(axis=2)
    return np.where(has_pos, POSITIVE, np.where(has_amb, AMBIGUOUS, NEGATIVE)).astype(np.int8)


def bin_max(values: np.ndarray, binsize: int) -> np.ndarray:
    """Max of ``values`` ``(N, L, S)`` within bins -> ``(N, L // binsize, S)``.

    The incomplete last bin is dropped, as in the official ``bin_counts_max``.
    """
    n, length, s = values.shape
    nb = length // binsize
    return values[:, : nb * binsize].reshape(n, nb, binsize, s).max(axis=2)


def regions_kept(
    counts: np.ndarray,
    pos_min_threshold: float = POS_MIN_THRESHOLD,
    required_min_pos_counts: float = REQUIRED_MIN_POS_COUNTS,
) -> np.ndarray:
    """Regions the auPRC scores: ``(N,)`` bool, True where the per-strand total of ``counts``
    ``(N, L, S)``, averaged over strands, exceeds ``required_min_pos_counts / pos_min_threshold``
    (so that a positive position is backed by at least ``required_min_pos_counts`` reads)."""
    counts = np.asarray(counts, dtype=np.float64)
    return counts.sum(axis=1).mean(axis=1) > required_min_pos_counts / pos_min_threshold


def profile_auprc(
    counts: np.ndarray,
    probs: np.ndarray,
    binsize: int = 1,
    pos_min_threshold: float = POS_MIN_THRESHOLD,
    neg_max_threshold: float = NEG_MAX_THRESHOLD,
    required_min_pos_counts: float = REQUIRED_MIN_POS_COUNTS,
    seed: int = 0,
) -> AuprcResult:
    """Profile auPRC of one task, the paper's definition (see the module docstring).

    Args:
        counts: ``(N, L, S)`` observed counts.
        probs: ``(N, L, S)`` predicted probabilities (renormalised over positions here, as the
            official code does).
        binsize: positions per bin (>= 1); the incomplete last bin is dropped.
        pos_min_threshold, neg_max_threshold, required_min_pos_counts: the official settings.
        seed: seed of the shuffle behind the random baseline.

    Returns:
        :class:`AuprcResult` with auPRC, the random baseline and the numbers of bins and regions.
    """
    return profile_auprc_binsizes(
        counts, probs, [binsize], pos_min_threshold, neg_max_threshold,
        required_min_pos_counts, seed,
    )[binsize]


def profile_auprc_binsizes(
    counts: np.ndarray,
    probs: np.ndarray,
    binsizes: Sequence[int],
    pos_min_threshold: float = POS_MIN_THRESHOLD,
    neg_max_threshold: float = NEG_MAX_THRESHOLD,
    required_min_pos_counts: float = REQUIRED_MIN_POS_COUNTS,
    seed: int = 0,
) -> dict[int, AuprcResult]:
    """:func:`profile_auprc` at several bin sizes, ``{binsize: AuprcResult}``.

    The region filter, position labels, renormalised predictions and the shuffle are computed
    once and shared by all bin sizes (as in the official ``eval_profile``, which also shuffles
    once for all bin sizes). Arguments as for :func:`profile_auprc`.
    """
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    _check_3d(counts, probs)
    binsizes = [int(b) for b in binsizes]
    if any(b < 1 for b in binsizes):
        raise ValueError(f"bin sizes must be >= 1, got {binsizes}")

    min_total = required_min_pos_counts / pos_min_threshold
    keep = regions_kept(counts, pos_min_threshold, required_min_pos_counts)
    n_regions = int(keep.sum())
    if n_regions == 0:
        reason = (
            f"no region has more than {min_total:.1f} reads per strand on average "
            f"(required_min_pos_counts / pos_min_threshold); {len(counts)} regions scored"
        )
        return {b: AuprcResult(np.nan, np.nan, 0, 0, 0, 0, reason) for b in binsizes}

    kept_probs = profile_to_probs(probs[keep])
    labels = position_labels(counts[keep], pos_min_threshold, neg_max_threshold)
    # Official baseline: shuffle positions (one permutation for all regions), then regions.
    rng = np.random.default_rng(seed)
    shuffled = kept_probs[:, rng.permutation(kept_probs.shape[1])]
    shuffled = shuffled[rng.permutation(n_regions)]

    out: dict[int, AuprcResult] = {}
    for binsize in binsizes:
        if binsize > counts.shape[1]:
            out[binsize] = AuprcResult(
                np.nan, np.nan, 0, 0, 0, n_regions,
                f"binsize {binsize} exceeds the window length {counts.shape[1]}: no whole bin",
            )
            continue
        binned = bin_labels(labels, binsize)
        scored = binned != AMBIGUOUS
        y_true = binned[scored] == POSITIVE
        n_pos = int(y_true.sum())
        n_neg = int(y_true.size - n_pos)
        n_amb = int(binned.size - y_true.size)
        if n_pos == 0:
            out[binsize] = AuprcResult(
                np.nan, np.nan, 0, n_neg, n_amb, n_regions,
                f"no positive bin at binsize {binsize} in the {n_regions} kept regions",
            )
            continue
        out[binsize] = AuprcResult(
            float(average_precision_score(y_true, bin_max(kept_probs, binsize)[scored])),
            float(average_precision_score(y_true, bin_max(shuffled, binsize)[scored])),
            n_pos, n_neg, n_amb, n_regions,
        )
    return out


def count_metrics(obs_total: np.ndarray, pred_total: np.ndarray) -> dict[str, float]:
    """Correlation of observed and predicted total counts on the log(1 + total) scale.

    Args:
        obs_total: ``(N,)`` observed reads per window (summed over positions and both strands).
        pred_total: ``(N,)`` predicted expected reads per window, summed the same way.

    Returns:
        ``{"spearman", "pearson", "mse", "n"}``: scipy's Spearman and Pearson correlations and
        the mean squared error of ``log1p(pred_total)`` against ``log1p(obs_total)``. The
        correlations are NaN with fewer than 2 windows or a constant side.
    """
    obs = np.log1p(np.asarray(obs_total, dtype=np.float64).ravel())
    pred = np.log1p(np.asarray(pred_total, dtype=np.float64).ravel())
    if obs.shape != pred.shape:
        raise ValueError(f"obs_total {obs.shape} and pred_total {pred.shape} differ in shape")
    n = obs.size
    mse = float(np.mean((obs - pred) ** 2)) if n else np.nan
    if n < 2 or np.ptp(obs) == 0 or np.ptp(pred) == 0:
        spearman = pearson = np.nan
    else:
        spearman = float(spearmanr(obs, pred).statistic)
        pearson = float(pearsonr(obs, pred).statistic)
    return {"spearman": spearman, "pearson": pearson, "mse": mse, "n": n}


def jsd_per_window(
    counts: np.ndarray, probs: np.ndarray, pseudocount: float = JSD_PSEUDOCOUNT
) -> np.ndarray:
    """Jensen-Shannon distance per window and strand, ChromBPNet style (natural log).

    ``scipy.spatial.distance.jensenshannon(counts / (total + pseudocount), probs)`` along the
    position axis. scipy renormalises both sides, so the pseudocount only matters for a strand
    without reads, whose distance is NaN (no observed profile to compare with).

    Args:
        counts: ``(N, L, S)`` observed counts.
        probs: ``(N, L, S)`` predicted probabilities.

    Returns:
        ``(N, S)`` distances in [0, sqrt(ln 2)].
    """
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    _check_3d(counts, probs)
    obs = counts / (counts.sum(axis=1, keepdims=True) + pseudocount)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scipy_jsd(obs, probs, axis=1)


def jensen_shannon(
    counts: np.ndarray, probs: np.ndarray, pseudocount: float = JSD_PSEUDOCOUNT
) -> float:
    """Mean of :func:`jsd_per_window` over windows and strands with reads (NaN if none).

    (ChromBPNet's reports quote the median; the mean is used here so it sits beside the mean NLL.)
    """
    d = jsd_per_window(counts, probs, pseudocount)
    return float(np.mean(d[np.isfinite(d)])) if np.isfinite(d).any() else np.nan


def multinomial_nll_per_window(counts: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Multinomial negative log-likelihood of the counts per window and strand.

    ``-log Mult(x | n = sum(x), p) = -lgamma(n + 1) + sum lgamma(x + 1) - sum x log p``, the
    BPNet profile loss (bpnet-lite's ``MNLLLoss``). A zero probability where reads were seen
    gives ``inf``.

    Args:
        counts: ``(N, L, S)`` observed counts.
        probs: ``(N, L, S)`` predicted probabilities.

    Returns:
        ``(N, S)`` NLL in nats.
    """
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    _check_3d(counts, probs)
    n = counts.sum(axis=1)
    with np.errstate(divide="ignore"):
        log_lik = xlogy(counts, probs).sum(axis=1)
    return -gammaln(n + 1) + gammaln(counts + 1).sum(axis=1) - log_lik


def multinomial_nll(counts: np.ndarray, probs: np.ndarray) -> float:
    """Mean of :func:`multinomial_nll_per_window` over windows and strands (NaN if empty)."""
    nll = multinomial_nll_per_window(counts, probs)
    return float(nll.mean()) if nll.size else np.nan


def separation_metrics(pred_total: np.ndarray, is_peak: np.ndarray) -> dict[str, float]:
    """How well predicted totals separate peak windows from background windows (#18).

    Args:
        pred_total: ``(N,)`` predicted expected reads per window.
        is_peak: ``(N,)`` bool, True for a peak window of the task, False for background.

    Returns:
        ``{"auroc", "auprc", "random_auprc"}`` (sklearn's ROC AUC and average precision with the
        peaks as positives; the random auPRC is the share of peaks); NaN without both classes.
    """
    pred = np.asarray(pred_total, dtype=np.float64).ravel()
    label = np.asarray(is_peak, dtype=bool).ravel()
    if pred.shape != label.shape:
        raise ValueError(f"pred_total {pred.shape} and is_peak {label.shape} differ in shape")
    if label.all() or not label.any():
        return {"auroc": np.nan, "auprc": np.nan, "random_auprc": float(label.mean()) if label.size else np.nan}
    return {
        "auroc": float(roc_auc_score(label, pred)),
        "auprc": float(average_precision_score(label, pred)),
        "random_auprc": float(label.mean()),
    }
