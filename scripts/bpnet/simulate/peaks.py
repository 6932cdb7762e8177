"""MACS-like peak calling on the simulated counts: the IDR-optimal-set narrowPeak tables."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import poisson

from bpnet.io.tracks import STRANDS
from bpnet.progress import progress_bar
from bpnet.simulate.binding import TFS
from bpnet.simulate.genome import Genome

LOCAL_LAMBDA_BP = 10_000  # window of the local background of the peak caller (as MACS's llocal)
SUMMIT_SMOOTH_BP = 31  # two-strand smoothing that places the summit between the strand modes
PEAK_CHUNK_BP = 4_000_000  # the windowed counts are scanned this many bases at a time


def _box(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving sum ``(L,)`` of ``x`` ``(L,)`` over ``[i - width//2, i - width//2 + width)``."""
    c = np.cumsum(x, dtype=np.int64)
    half = width // 2
    # padded[k] = sum of x[: k - half], clipped to [0, L]
    padded = np.concatenate([np.zeros(half + 1, np.int64), c, np.full(width - half, c[-1] if len(c) else 0)])
    return padded[width:width + len(x)] - padded[: len(x)]


def poisson_logsf(k: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``log P(X >= k)`` for ``X ~ Poisson(lam)``, finite far in the tail.

    scipy's ``logsf`` underflows to -inf beyond ~1e-300; there the tail is dominated by its first
    term, ``log pmf(k) - log(1 - lam / (k + 1))`` (an upper bound, tight when ``k >> lam``).
    """
    k, lam = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(lam, dtype=np.float64))
    with np.errstate(divide="ignore"):
        out = poisson.logsf(k - 1, lam)
    far = ~np.isfinite(out)
    kf, lf = k[far], lam[far]
    out[far] = kf * np.log(lf) - lf - gammaln(kf + 1) - np.log1p(-lf / (kf + 1))
    return out


def _sparse_box(pos: np.ndarray, csum: np.ndarray, q: np.ndarray, width: int) -> np.ndarray:
    """:func:`_box` of a sparse track at positions ``q``: the counts at sorted ``pos`` (``csum``
    their cumulative sum with a leading 0) in ``[q - width//2, q - width//2 + width)``."""
    half = width // 2
    return csum[np.searchsorted(pos, q - half + width)] - csum[np.searchsorted(pos, q - half)]


def call_peaks(total: np.ndarray, lam_genome: float, pk: Mapping[str, Any]) -> pd.DataFrame:
    """Call peaks on one chromosome's two-strand counts ``total`` ``(L,)`` (dense; the same as
    :func:`call_peaks_sparse` of its nonzero positions)."""
    pos = np.flatnonzero(total)
    return call_peaks_sparse(pos, total[pos].astype(np.int64), len(total), lam_genome, pk)


def call_peaks_sparse(pos: np.ndarray, cnt: np.ndarray, length: int, lam_genome: float,
                      pk: Mapping[str, Any], chunk_bp: int = PEAK_CHUNK_BP) -> pd.DataFrame:
    """Call peaks on one chromosome's two-strand counts: ``cnt`` reads at sorted, distinct
    positions ``pos`` of a chromosome of ``length`` bp.

    A position is significant when the reads in the ``window`` around it have a Poisson p-value
    below ``10**-min_log10p`` against ``max(lam_genome * window, local 10 kb rate * window)``.
    Runs of significant positions extend by ``window / 2`` each side; runs whose peaks would lie
    closer than ``merge_gap`` merge into one peak; the summit is the maximum of the 31 bp smoothed
    two-strand signal inside the run (between the strand modes). Returns columns start, end, summit, signal (fold
    enrichment at the summit), log10p (best -log10 p of the run), in position order.

    Memory is bounded at any chromosome size: the windowed counts are scanned densely
    ``chunk_bp`` bases at a time for the positions above the genome-wide threshold (the
    candidates); everything else is evaluated at the candidates and peaks only. The result does
    not depend on ``chunk_bp``.
    """
    window = pk["window"]
    pos = np.asarray(pos, dtype=np.int64)
    csum = np.concatenate([[0], np.cumsum(cnt, dtype=np.int64)])
    # Only positions above the genome-wide threshold can be significant (lam >= genome rate).
    k_min = poisson.isf(10.0 ** -pk["min_log10p"], lam_genome * window)
    parts = []
    for a in range(0, length, chunk_bp):
        b = min(a + chunk_bp, length)
        lo, hi = max(a - window, 0), min(b + window, length)  # every window of [a, b) clipped
        i, j = np.searchsorted(pos, [lo, hi])
        dense = np.zeros(hi - lo, dtype=np.int64)
        dense[pos[i:j] - lo] = cnt[i:j]
        parts.append(np.flatnonzero(_box(dense, window)[a - lo:b - lo] > k_min) + a)
        del dense
    cand = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def smooth_at(q: np.ndarray) -> np.ndarray:
        return _sparse_box(pos, csum, q, window)

    def lam_at(q: np.ndarray) -> np.ndarray:
        return np.maximum(lam_genome * window, _sparse_box(pos, csum, q, LOCAL_LAMBDA_BP) * window / LOCAL_LAMBDA_BP)

    log10p = -poisson_logsf(smooth_at(cand), lam_at(cand)) / np.log(10)
    sig = cand[log10p >= pk["min_log10p"]]
    cols = ["start", "end", "summit", "signal", "log10p"]
    if sig.size == 0:
        return pd.DataFrame({c: np.array([], dtype=np.int64 if c in cols[:3] else float) for c in cols})
    # Runs of significant positions; runs whose extended intervals would lie closer than
    # merge_gap become one peak.
    new = np.r_[True, np.diff(sig) > window + pk["merge_gap"]]
    run_lo = sig[new]
    run_hi = sig[np.r_[new[1:], True]] + 1
    # All positions of all runs, to take each run's argmax and best p-value at once.
    lengths = run_hi - run_lo
    idx = np.repeat(run_lo - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    bounds = np.r_[0, np.cumsum(lengths)[:-1]]
    fine = _sparse_box(pos, csum, idx, SUMMIT_SMOOTH_BP).astype(np.float64)  # at idx
    at = np.minimum(np.searchsorted(cand, idx), len(cand) - 1)
    lp = np.where(cand[at] == idx, log10p[at], 0.0)  # -log10 p at idx (0 off the candidates)
    run_max = np.maximum.reduceat(fine, bounds)
    at_max = np.where(fine == np.repeat(run_max, lengths), idx, np.iinfo(np.int64).max)
    summit = np.minimum.reduceat(at_max, bounds)
    best_p = np.maximum.reduceat(lp, bounds)
    half = window // 2
    start = np.maximum(run_lo - half, 0)
    end = np.minimum(run_hi + half, length)
    return pd.DataFrame({
        "start": start, "end": end, "summit": summit,
        "signal": smooth_at(summit) / lam_at(summit), "log10p": best_p,
    })


def narrowpeak_table(peaks: pd.DataFrame, tf: str, genome_length: int, window: int) -> pd.DataFrame:
    """The 10 narrowPeak columns for ``peaks`` (chrom, start, end, summit, signal, log10p).

    qValue: Benjamini-Hochberg over the ``genome_length / window`` independent windows tested.
    """
    n_tests = max(genome_length / window, 1.0)
    order = np.argsort(-peaks["log10p"].to_numpy(), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    log10q = peaks["log10p"].to_numpy() - np.log10(n_tests / rank)
    # BH monotonicity: q of a peak is at most the q of any less significant peak.
    sorted_q = log10q[order]
    sorted_q = np.maximum.accumulate(sorted_q[::-1])[::-1]
    log10q[order] = sorted_q
    return pd.DataFrame({
        "chrom": peaks["chrom"],
        "start": peaks["start"],
        "end": peaks["end"],
        "name": [f"{tf}_peak_{i + 1}" for i in range(len(peaks))],
        "score": np.minimum(1000, np.round(10 * peaks["log10p"])).astype(np.int64),
        "strand": ".",
        "signalValue": peaks["signal"].round(3),
        "pValue": peaks["log10p"].round(3),
        "qValue": np.maximum(log10q, 0).round(3),
        "peak": peaks["summit"] - peaks["start"],
    })


def call_all_peaks(cfg: Mapping[str, Any], genome: Genome,
                   observed: Mapping[str, tuple[np.ndarray, np.ndarray]],
                   log: logging.Logger | None = None) -> dict[str, pd.DataFrame]:
    """narrowPeak tables ``{TF: DataFrame}`` called from each TF's two-strand counts.

    ``log``: progress lines (one unit per TF and chromosome).
    """
    with progress_bar(log, len(TFS) * len(genome.sizes), "call peaks", unit="chrom") as bar:
        return {tf: call_tf_peaks(cfg, genome.sizes, [observed[f"{tf}.{s}"] for s in STRANDS], tf, bar)
                for tf in TFS}


def call_tf_peaks(cfg: Mapping[str, Any], sizes: Mapping[str, int],
                  strands: list[tuple[np.ndarray, np.ndarray]], tf: str, progress=None) -> pd.DataFrame:
    """The narrowPeak table of one TF from its two strands' sparse counts ``[(pos, counts), ...]``
    (global positions). ``progress``: optional object with ``update(1)`` per chromosome."""
    genome_length = int(sum(sizes.values()))
    lam_genome = sum(cnt.sum() for _, cnt in strands) / genome_length
    offsets = np.concatenate([[0], np.cumsum(list(sizes.values()))[:-1]]).astype(np.int64)
    parts = []
    for chrom, off, length in zip(sizes, offsets, sizes.values()):
        ranges = [np.searchsorted(pos, [off, off + length]) for pos, _ in strands]
        pos = np.concatenate([p[lo:hi] for (p, _), (lo, hi) in zip(strands, ranges)]) - off
        cnt = np.concatenate([c[lo:hi] for (_, c), (lo, hi) in zip(strands, ranges)]).astype(np.int64)
        order = np.argsort(pos, kind="stable")
        pos, cnt = pos[order], cnt[order]
        first = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]]) if len(pos) else np.zeros(0, np.int64)
        cnt = np.add.reduceat(cnt, first) if len(pos) else cnt
        called = call_peaks_sparse(pos[first], cnt, length, lam_genome, cfg["peaks"])
        called.insert(0, "chrom", chrom)
        parts.append(called)
        if progress is not None:
            progress.update(1)
    return narrowpeak_table(pd.concat(parts, ignore_index=True), tf, genome_length, cfg["peaks"]["window"])
