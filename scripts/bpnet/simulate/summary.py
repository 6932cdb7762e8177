"""The figures that check the realism of a simulated dataset: peaks per TF, reads per peak, the
shares of false and missed peaks (:func:`summarize`), and the oracle's scores on the test
chromosomes, the expected-rate tracks scored as a model (:func:`oracle_check`)."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import pandas as pd

from bpnet.io.tracks import STRANDS
from bpnet.simulate.binding import TFS
from bpnet.steps.metrics import count_metrics, profile_auprc, profile_to_probs

NEAR_BP = 50  # a peak is "true" when its summit lies this close to a bound site of its TF
TEST_CHROMS = ("chr1", "chr8", "chr9")  # the paper's test split, for the realism check
ORACLE_WIDTH = 1000  # bp of the oracle check's windows
# The oracle check scores at most this many test windows (a seeded sample beyond): the profile
# auPRC holds ~0.2 MB per window (~5 GB at the paper's ~29k test windows), and 10k windows give
# the same figures to about +-0.005. The default dataset has ~2k, scale 12 ~8.4k: all are scored.
ORACLE_MAX_WINDOWS = 10_000


def _sparse_window_sums(pos: np.ndarray, vals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of a sparse global track over windows ``[lo, hi)`` ``(n,)``."""
    c = np.concatenate([[0], np.cumsum(vals)])
    return c[np.searchsorted(pos, hi)] - c[np.searchsorted(pos, lo)]


def _offsets(sizes: Mapping[str, int]) -> dict[str, int]:
    return dict(zip(sizes, np.concatenate([[0], np.cumsum(list(sizes.values()))[:-1]])))


def on_chroms(track: tuple, sizes: Mapping[str, int], chroms) -> tuple:
    """The part of a sparse global track ``(pos, values, *rest)`` on ``chroms`` (a copy, in genome
    order), e.g. what :func:`oracle_check` reads of it: the test chromosomes."""
    offsets, pos = _offsets(sizes), track[0]
    parts = [slice(*np.searchsorted(pos, [offsets[c], offsets[c] + sizes[c]])) for c in sizes if c in chroms]
    return (np.concatenate([pos[:0], *(pos[s] for s in parts)]),
            np.concatenate([track[1][:0], *(track[1][s] for s in parts)]), *track[2:])


def peak_window_reads(peaks: pd.DataFrame, strands: list[tuple[np.ndarray, np.ndarray]],
                      sizes: Mapping[str, int]) -> np.ndarray:
    """Two-strand reads in the 1 kb window at each summit of one TF's narrowPeak table ``peaks``,
    from its sparse counts ``[(pos, counts), ...]`` (global positions)."""
    off = peaks["chrom"].map(_offsets(sizes)).to_numpy(dtype=np.int64)
    summit = off + (peaks["start"] + peaks["peak"]).to_numpy()
    return sum(_sparse_window_sums(*s, summit - 500, summit + 500) for s in strands)


def summarize(truth: pd.DataFrame, peak_tables: Mapping[str, pd.DataFrame],
              reads_per_peak: Mapping[str, np.ndarray], sizes: Mapping[str, int],
              bound_threshold: float) -> dict:
    """Peaks per TF, median reads per peak window, false-peak and missed-site shares.

    ``reads_per_peak``: per TF, :func:`peak_window_reads` of its peaks (taken while its counts
    are in memory).
    """
    offsets = _offsets(sizes)
    out: dict[str, dict[str, float]] = {"peaks": {}, "reads_per_peak": {}, "false_peak_share": {},
                                        "missed_share": {}}
    for tf in TFS:
        peaks = peak_tables[tf]
        off = peaks["chrom"].map(offsets).to_numpy(dtype=np.int64)
        summit = off + (peaks["start"] + peaks["peak"]).to_numpy()
        reads = reads_per_peak[tf]
        b = truth[truth[f"occupancy_{tf}"] >= bound_threshold]
        site = b["chrom"].map(offsets).to_numpy(dtype=np.int64) + b["center"].to_numpy()
        site = np.sort(site)
        # Nearest bound site of this TF to each summit.
        j = np.clip(np.searchsorted(site, summit), 1, max(len(site) - 1, 1))
        if len(site):
            near = np.minimum(np.abs(site[j - 1] - summit), np.abs(site[np.minimum(j, len(site) - 1)] - summit))
        else:
            near = np.full(len(summit), np.inf)
        # A bound site is found when some peak interval of the TF contains it.
        pstart = np.sort(off + peaks["start"].to_numpy())
        pend = (off + peaks["end"].to_numpy())[np.argsort(off + peaks["start"].to_numpy())]
        k = np.searchsorted(pstart, site, side="right") - 1
        found = (k >= 0) & (site < pend[np.maximum(k, 0)]) if len(pstart) else np.zeros(len(site), bool)
        out["peaks"][tf] = int(len(peaks))
        out["reads_per_peak"][tf] = float(np.median(reads)) if len(reads) else 0.0
        out["false_peak_share"][tf] = float(np.mean(near > NEAR_BP)) if len(near) else 0.0
        out["missed_share"][tf] = float(1 - found.mean()) if len(site) else 0.0
    return out


def gather_windows(pos: np.ndarray, vals: np.ndarray, starts: np.ndarray, width: int, constant: float = 0.0,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Dense windows ``(n, width)`` (float64) of a sparse global track (sorted ``pos``) plus
    ``constant``, written into ``out`` when given (e.g. one strand of an ``(n, width, 2)`` array).
    Memory: the windows and the points in them."""
    if out is None:
        out = np.empty((len(starts), width))
    out[...] = 0.0 + constant
    lo, hi = np.searchsorted(pos, starts), np.searchsorted(pos, starts + width)
    n = hi - lo
    row = np.repeat(np.arange(len(starts)), n)
    j = np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(n.sum())
    out[row, pos[j] - starts[row]] = vals[j] + constant
    return out


def oracle_windows(peak_tables: Mapping[str, pd.DataFrame], sizes: Mapping[str, int],
                   test_chroms=TEST_CHROMS, width: int = 1000) -> np.ndarray:
    """Global starts (sorted, distinct) of the ``width`` bp windows centred on the summits of all
    TFs' peaks on ``test_chroms`` (pooled, as windowing does), those that fit on their chromosome."""
    offsets = _offsets(sizes)
    starts = []
    for peaks in peak_tables.values():
        test = peaks[peaks["chrom"].isin(test_chroms)]
        lo = (test["start"] + test["peak"] - width // 2).to_numpy()
        ok = (lo >= 0) & (lo + width <= test["chrom"].map(sizes).to_numpy())
        starts.append(test["chrom"].map(offsets).to_numpy()[ok] + lo[ok])
    return np.unique(np.concatenate(starts)) if starts else np.array([], dtype=np.int64)


def sample_windows(starts: np.ndarray, max_windows: int | None, seed: int = 0) -> np.ndarray:
    """At most ``max_windows`` of ``starts`` (all when None or not more): a seeded random sample,
    in order."""
    if max_windows is None or len(starts) <= max_windows:
        return starts
    return np.sort(np.random.default_rng(seed).choice(starts, max_windows, replace=False))


def oracle_scores(windows: Callable[[str], tuple[np.ndarray, np.ndarray]], n_windows: int) -> pd.DataFrame:
    """The oracle's scores per TF from ``windows(tf) = (observed, expected)``, both
    ``(n_windows, width, 2)`` float64 (the two strands): count Pearson/Spearman of log(1 +
    two-strand total) and the profile auPRC at binsize 1. One TF's windows in memory at a time.
    """
    rows = []
    for tf in TFS:
        obs, exp = windows(tf)
        counts = count_metrics(obs.sum(axis=(1, 2)), exp.sum(axis=(1, 2)))
        probs = profile_to_probs(exp)
        del exp
        auprc = profile_auprc(obs, probs, binsize=1)
        del obs, probs
        rows.append({"task": tf, "windows": n_windows, "auprc_regions": auprc.n_regions,
                     "count_pearson": counts["pearson"], "count_spearman": counts["spearman"],
                     "auprc": auprc.auprc})
    return pd.DataFrame(rows)


def oracle_check(observed: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 expected: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
                 peak_tables: Mapping[str, pd.DataFrame], sizes: Mapping[str, int],
                 test_chroms=TEST_CHROMS, width: int = 1000, max_windows: int | None = None) -> pd.DataFrame:
    """Score the expected-rate tracks as a model, the way evaluation scores the oracle.

    Windows of ``width`` bp centred on the summits of all TFs' peaks on ``test_chroms`` (pooled,
    as windowing does; :func:`oracle_windows`, at most ``max_windows`` of them:
    :func:`sample_windows`); for each TF the count Pearson/Spearman of log(1 + two-strand total),
    observed vs expected, and the profile auPRC at binsize 1 (:func:`bpnet.steps.metrics.profile_auprc`).
    Returns one row per TF: windows, auprc_regions, count_pearson, count_spearman, auprc.
    """
    starts = sample_windows(oracle_windows(peak_tables, sizes, test_chroms, width), max_windows)

    def windows(tf: str) -> tuple[np.ndarray, np.ndarray]:
        obs, exp = np.empty((len(starts), width, 2)), np.empty((len(starts), width, 2))
        for i, s in enumerate(STRANDS):
            gather_windows(*observed[f"{tf}.{s}"], starts, width, out=obs[:, :, i])
            pos, rate, background = expected[f"{tf}.{s}"]
            gather_windows(pos, rate, starts, width, background, out=exp[:, :, i])
        return obs, exp

    return oracle_scores(windows, len(starts))
