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


def call_peaks(total: np.ndarray, lam_genome: float, pk: Mapping[str, Any]) -> pd.DataFrame:
    """Call peaks on one chromosome's two-strand counts ``total`` ``(L,)``.

    A position is significant when the reads in the ``window`` around it have a Poisson p-value
    below ``10**-min_log10p`` against ``max(lam_genome * window, local 10 kb rate * window)``.
    Runs of significant positions extend by ``window / 2`` each side; runs whose peaks would lie
    closer than ``merge_gap`` merge into one peak; the summit is the maximum of the 31 bp smoothed
    two-strand signal inside the run (between the strand modes). Returns columns start, end, summit, signal (fold
    enrichment at the summit), log10p (best -log10 p of the run), in position order.
    """
    window = pk["window"]
    smooth = _box(total, window)
    lam = np.maximum(lam_genome * window, _box(total, LOCAL_LAMBDA_BP) * window / LOCAL_LAMBDA_BP)
    # Only positions above the genome-wide threshold can be significant (lam >= genome rate).
    k_min = poisson.isf(10.0 ** -pk["min_log10p"], lam_genome * window)
    cand = np.flatnonzero(smooth > k_min)
    log10p = -poisson_logsf(smooth[cand], lam[cand]) / np.log(10)
    sig = cand[log10p >= pk["min_log10p"]]
    cols = ["start", "end", "summit", "signal", "log10p"]
    if sig.size == 0:
        return pd.DataFrame({c: np.array([], dtype=np.int64 if c in cols[:3] else float) for c in cols})
    lp = np.zeros(len(total))
    lp[cand] = log10p
    # Runs of significant positions; runs whose extended intervals would lie closer than
    # merge_gap become one peak.
    new = np.r_[True, np.diff(sig) > window + pk["merge_gap"]]
    run_lo = sig[new]
    run_hi = sig[np.r_[new[1:], True]] + 1
    fine = _box(total, SUMMIT_SMOOTH_BP).astype(np.float64)
    # All positions of all runs, to take each run's argmax and best p-value at once.
    lengths = run_hi - run_lo
    idx = np.repeat(run_lo - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    bounds = np.r_[0, np.cumsum(lengths)[:-1]]
    run_max = np.maximum.reduceat(fine[idx], bounds)
    at_max = np.where(fine[idx] == np.repeat(run_max, lengths), idx, np.iinfo(np.int64).max)
    summit = np.minimum.reduceat(at_max, bounds)
    best_p = np.maximum.reduceat(lp[idx], bounds)
    half = window // 2
    start = np.maximum(run_lo - half, 0)
    end = np.minimum(run_hi + half, len(total))
    return pd.DataFrame({
        "start": start, "end": end, "summit": summit,
        "signal": smooth[summit] / lam[summit], "log10p": best_p,
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
    tables = {}
    with progress_bar(log, len(TFS) * len(genome.sizes), "call peaks", unit="chrom") as bar:
        for tf in TFS:
            strands = [observed[f"{tf}.{s}"] for s in STRANDS]
            lam_genome = sum(cnt.sum() for _, cnt in strands) / genome.length
            parts = []
            for chrom, off, length in zip(genome.sizes, genome.offsets, genome.sizes.values()):
                total = np.zeros(length, dtype=np.int64)
                for pos, cnt in strands:
                    lo, hi = np.searchsorted(pos, [off, off + length])
                    total[pos[lo:hi] - off] += cnt[lo:hi]
                called = call_peaks(total, lam_genome, cfg["peaks"])
                called.insert(0, "chrom", chrom)
                parts.append(called)
                bar.update(1)
            tables[tf] = narrowpeak_table(pd.concat(parts, ignore_index=True), tf, genome.length,
                                          cfg["peaks"]["window"])
    return tables
