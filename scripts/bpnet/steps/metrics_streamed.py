"""The profile auPRC of :mod:`bpnet.steps.metrics` in bounded memory, for the paper's size (#17).

:func:`bpnet.steps.metrics.profile_auprc_binsizes` holds a split's counts and probabilities in
float64, several copies of them, and hands all bins to sklearn, whose ``average_precision_score``
needs ~61 bytes per bin (measured: 3.7 GB for 60 M bins, the binsize-1 bins of one task on the
paper's ~30k validation windows). Here the windows are read ``chunk`` rows at a time, only the
scored bins are kept (a bool label and a float64 score each), and :func:`average_precision`
walks the sorted scores in chunks: ~26 bytes per bin at its peak.

Results equal the in-memory path: every count is identical, and the auPRC agrees to float
rounding (the sums run in another order; ``tests/test_metrics_streamed.py``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from bpnet.steps import metrics as M

# Rows of windows read at a time: 2048 windows x 1000 bp x 2 strands in float64 are 33 MB.
CHUNK_ROWS = 2048

# read(rows (k,) int64 sorted) -> (k, L, S): the rows of one task's counts or probabilities.
ReadRows = Callable[[np.ndarray], np.ndarray]


def average_precision(y_true: np.ndarray, scores: np.ndarray, chunk: int = 1 << 20) -> float:
    """sklearn's ``average_precision_score(y_true, scores)`` (binary, unweighted), lean.

    Average precision is ``sum_k (R_k - R_(k-1)) P_k`` over the distinct scores in decreasing
    order, with precision ``P_k`` and recall ``R_k`` of the bins scoring at least score ``k``
    (tied bins enter together, as in sklearn). Memory: one argsort and the sorted copies, walked
    ``chunk`` entries at a time.

    Args:
        y_true: ``(n,)`` bool, True for a positive.
        scores: ``(n,)`` finite scores.

    Returns:
        The average precision; NaN without a positive.
    """
    y_true = np.asarray(y_true, dtype=bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(np.count_nonzero(y_true))
    if n_pos == 0:
        return float("nan")
    order = np.argsort(scores)  # ascending; walked from the end
    y_sorted, s_sorted = y_true[order], scores[order]
    del order
    total, tp, seen, tp_last_group = 0.0, 0, 0, 0
    for hi in range(len(s_sorted), 0, -chunk):
        lo = max(hi - chunk, 0)
        s = s_sorted[lo:hi][::-1]
        # A tie group ends where the next score (in decreasing order) differs, or at the end.
        following = np.empty_like(s)
        following[:-1] = s[1:]
        following[-1] = s_sorted[lo - 1] if lo > 0 else np.nan
        ends = np.flatnonzero(s != following)
        cum_tp = tp + np.cumsum(y_sorted[lo:hi][::-1], dtype=np.int64)
        tp_end = cum_tp[ends]
        if len(ends):
            gained = np.diff(tp_end, prepend=tp_last_group)
            total += float(np.sum(gained * (tp_end / (seen + ends + 1.0))))
            tp_last_group = int(tp_end[-1])
        tp, seen = int(cum_tp[-1]), seen + len(s)
    return total / n_pos


def profile_auprc_streamed(
    read_counts: ReadRows,
    read_probs: ReadRows,
    n: int,
    binsizes: Sequence[int],
    keep: np.ndarray,
    pos_min_threshold: float = M.POS_MIN_THRESHOLD,
    neg_max_threshold: float = M.NEG_MAX_THRESHOLD,
    seed: int = 0,
    chunk: int | None = None,
) -> dict[int, M.AuprcResult]:
    """:func:`bpnet.steps.metrics.profile_auprc_binsizes` over windows read in row chunks.

    Args:
        read_counts: ``read(rows) -> (k, L, S)`` observed counts of windows ``rows`` (0..n-1).
        read_probs: the same for the predicted probabilities (renormalised here, as there).
        n: windows.
        binsizes: auPRC bin sizes.
        keep: ``(n,)`` bool, :func:`bpnet.steps.metrics.regions_kept` of the counts (computed by
            the caller in its own pass over the windows, with its ``required_min_pos_counts``).
        pos_min_threshold, neg_max_threshold, seed: as there.
        chunk: windows read at a time (default :data:`CHUNK_ROWS`).

    Returns:
        ``{binsize: AuprcResult}`` equal to the in-memory function's (see the module docstring).
    """
    chunk = chunk or CHUNK_ROWS
    kept = np.flatnonzero(np.asarray(keep, dtype=bool))
    n_regions = len(kept)
    min_total_note = "required_min_pos_counts / pos_min_threshold"
    if n_regions == 0:
        reason = f"no region has enough reads per strand on average ({min_total_note}); {n} regions scored"
        return {int(b): M.AuprcResult(np.nan, np.nan, 0, 0, 0, 0, reason) for b in binsizes}
    first = read_counts(kept[:1])
    length = first.shape[1]
    # The same draws, in the same order, as the in-memory path: positions, then regions.
    rng = np.random.default_rng(seed)
    position_perm = rng.permutation(length)
    region_perm = rng.permutation(n_regions)

    out: dict[int, M.AuprcResult] = {}
    for binsize in (int(b) for b in binsizes):
        if binsize > length:
            out[binsize] = M.AuprcResult(
                np.nan, np.nan, 0, 0, 0, n_regions,
                f"binsize {binsize} exceeds the window length {length}: no whole bin",
            )
            continue
        labels, model, shuffled, n_amb = [], [], [], 0
        for lo in range(0, n_regions, chunk):
            rows = kept[lo:lo + chunk]
            binned = M.bin_labels(
                M.position_labels(read_counts(rows), pos_min_threshold, neg_max_threshold), binsize
            )
            scored = binned != M.AMBIGUOUS
            n_amb += int(binned.size - np.count_nonzero(scored))
            labels.append(binned[scored] == M.POSITIVE)
            model.append(M.bin_max(M.profile_to_probs(read_probs(rows)), binsize)[scored])
            # Region i of the shuffled set is kept region region_perm[i], positions permuted.
            partners = kept[region_perm[lo:lo + chunk]]
            order = np.argsort(partners)  # read rows in file order, put back in draw order
            probs = np.empty((len(rows), length, first.shape[2]))
            probs[order] = M.profile_to_probs(read_probs(partners[order]))
            shuffled.append(M.bin_max(probs[:, position_perm], binsize)[scored])
        y_true = np.concatenate(labels)
        del labels
        n_pos = int(np.count_nonzero(y_true))
        n_neg = int(y_true.size - n_pos)
        if n_pos == 0:
            out[binsize] = M.AuprcResult(
                np.nan, np.nan, 0, n_neg, n_amb, n_regions,
                f"no positive bin at binsize {binsize} in the {n_regions} kept regions",
            )
            continue
        model_scores = np.concatenate(model)
        del model
        auprc = average_precision(y_true, model_scores)
        del model_scores
        shuffled_scores = np.concatenate(shuffled)
        del shuffled
        random_auprc = average_precision(y_true, shuffled_scores)
        out[binsize] = M.AuprcResult(auprc, random_auprc, n_pos, n_neg, n_amb, n_regions)
    return out
