"""The figures that check the realism of a simulated dataset: peaks per TF, reads per peak, the
shares of false and missed peaks (:func:`summarize`), and the oracle's scores on the test
chromosomes, the expected-rate tracks scored as a model (:func:`oracle_check`)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from bpnet.io.tracks import STRANDS
from bpnet.simulate.binding import TFS
from bpnet.steps.metrics import count_metrics, profile_auprc, profile_to_probs

NEAR_BP = 50  # a peak is "true" when its summit lies this close to a bound site of its TF
TEST_CHROMS = ("chr1", "chr8", "chr9")  # the paper's test split, for the realism check


def _sparse_window_sums(pos: np.ndarray, vals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of a sparse global track over windows ``[lo, hi)`` ``(n,)``."""
    c = np.concatenate([[0], np.cumsum(vals)])
    return c[np.searchsorted(pos, hi)] - c[np.searchsorted(pos, lo)]


def summarize(truth: pd.DataFrame, peak_tables: Mapping[str, pd.DataFrame],
              observed: Mapping[str, tuple[np.ndarray, np.ndarray]], sizes: Mapping[str, int],
              bound_threshold: float) -> dict:
    """Peaks per TF, median reads per peak window, false-peak and missed-site shares."""
    offsets = dict(zip(sizes, np.concatenate([[0], np.cumsum(list(sizes.values()))[:-1]])))
    out: dict[str, dict[str, float]] = {"peaks": {}, "reads_per_peak": {}, "false_peak_share": {},
                                        "missed_share": {}}
    for tf in TFS:
        peaks = peak_tables[tf]
        off = peaks["chrom"].map(offsets).to_numpy(dtype=np.int64)
        summit = off + (peaks["start"] + peaks["peak"]).to_numpy()
        reads = sum(_sparse_window_sums(*observed[f"{tf}.{s}"], summit - 500, summit + 500) for s in STRANDS)
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


def _gather(pos: np.ndarray, vals: np.ndarray, starts: np.ndarray, width: int, constant: float = 0.0) -> np.ndarray:
    """Dense windows ``(n, width)`` of a sparse global track (sorted ``pos``) plus ``constant``."""
    grid = starts[:, None] + np.arange(width)[None, :]
    if len(pos) == 0:
        return np.full(grid.shape, constant, dtype=np.float64)
    idx = np.minimum(np.searchsorted(pos, grid), len(pos) - 1)
    return np.where(pos[idx] == grid, vals[idx], 0.0) + constant


def oracle_check(observed: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 expected: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
                 peak_tables: Mapping[str, pd.DataFrame], sizes: Mapping[str, int],
                 test_chroms=TEST_CHROMS, width: int = 1000) -> pd.DataFrame:
    """Score the expected-rate tracks as a model, the way evaluation scores the oracle.

    Windows of ``width`` bp centred on the summits of all TFs' peaks on ``test_chroms`` (pooled,
    as windowing does); for each TF the count Pearson/Spearman of log(1 + two-strand total),
    observed vs expected, and the profile auPRC at binsize 1 (:func:`bpnet.steps.metrics.profile_auprc`).
    Returns one row per TF: windows, auprc_regions, count_pearson, count_spearman, auprc.
    """
    offsets = dict(zip(sizes, np.concatenate([[0], np.cumsum(list(sizes.values()))[:-1]])))
    starts = []
    for peaks in peak_tables.values():
        test = peaks[peaks["chrom"].isin(test_chroms)]
        lo = (test["start"] + test["peak"] - width // 2).to_numpy()
        ok = (lo >= 0) & (lo + width <= test["chrom"].map(sizes).to_numpy())
        starts.append(test["chrom"].map(offsets).to_numpy()[ok] + lo[ok])
    starts = np.unique(np.concatenate(starts)) if starts else np.array([], dtype=np.int64)
    rows = []
    for tf in TFS:
        obs = np.stack([_gather(*observed[f"{tf}.{s}"], starts, width) for s in STRANDS], axis=2)
        exp = np.stack([_gather(expected[f"{tf}.{s}"][0], expected[f"{tf}.{s}"][1], starts, width,
                                expected[f"{tf}.{s}"][2]) for s in STRANDS], axis=2)
        counts = count_metrics(obs.sum(axis=(1, 2)), exp.sum(axis=(1, 2)))
        auprc = profile_auprc(obs, profile_to_probs(exp), binsize=1)
        rows.append({"task": tf, "windows": len(starts), "auprc_regions": auprc.n_regions,
                     "count_pearson": counts["pearson"], "count_spearman": counts["spearman"],
                     "auprc": auprc.auprc})
    return pd.DataFrame(rows)
