"""GC-matched background windows (``windows.background``), the way bpnet-lite ``bpnet negatives``,
ChromBPNet ``prep nonpeaks`` and ENCODE's ``bpnet-gc-background`` make them.

1. **Candidates**: every window of the training width whose start is a multiple of ``stride``
   (default ``width // 2``) on each chromosome outside ``windows.exclude_chroms``, kept when it
   contains no N (nor another IUPAC ambiguity letter), lies at least ``exclusion_margin`` bp away
   from the window ``[summit - width // 2, summit - width // 2 + width)`` of every peak of every
   task (whatever its fate in windowing: kept, merged, blacklisted...) and does not overlap the
   blacklist by 1 bp or more.
2. **GC content**: G+C over the non-N bases of a window, from running sums of the G/C and N
   indicators over each chromosome (read block-wise from the FASTA, so memory stays bounded on a
   250 Mb chromosome), evaluated only at the window bounds: no per-window Python loop.
3. **Matching**: ``gc_bins`` equal-width bins over [0, 1] (bin ``k`` = [k/B, (k+1)/B), the last
   one closed; computed in integers, so exact). Per bin, ``round(ratio * peak windows in the
   bin)`` candidates are drawn without replacement (numpy Generator seeded with the config's
   ``seed``), genome-wide; each background window then takes its split from its chromosome, as
   the peaks do.

A bin with fewer candidates than it needs is an error naming the bin and the keys to change, not
a silent fall-back to neighbouring bins: that would shift the GC distribution the option exists
to match (and the error says by how much the request exceeds the genome). Peak windows made of N
only have no GC content and get no background (counted in the log).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pybedtools
from pybedtools.helpers import BEDToolsError

from bpnet.config_check import resolve_section
from bpnet.errors import BPNetInputError
from bpnet.io.sequence import N_CODE, encode, open_fasta

KEY = "windows.background"
# A chromosome is read from the FASTA in blocks of at most this many bases.
_BLOCK_BP = 8_000_000
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def background_settings(section: Mapping[str, Any] | None, width: int) -> dict[str, Any]:
    """The ``windows.background`` section with the schema's defaults filled and checked
    (:func:`bpnet.config_check.resolve_section`); ``stride`` null resolved to ``width // 2``."""
    cfg = resolve_section(("windows", "background"), section)
    cfg["stride"] = int(cfg["stride"]) if cfg["stride"] is not None else max(1, int(width) // 2)
    return cfg


# --------------------------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------------------------


def read_intervals(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{chrom: (starts, ends)}`` of a BED file (the blacklist), read with pybedtools."""
    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"blacklist BED {path} (windows.blacklist) does not exist")
    try:
        rows = [(iv.chrom, iv.start, iv.end) for iv in pybedtools.BedTool(str(path))]
    except (BEDToolsError, pybedtools.MalformedBedLineError, ValueError, IndexError) as err:
        raise BPNetInputError(
            f"cannot read the blacklist {path} (windows.blacklist) as BED (expected tab-separated "
            f"chrom, start, end per line): {str(err).strip().splitlines()[-1] if str(err).strip() else err}"
        ) from err
    table = pd.DataFrame(rows, columns=["chrom", "start", "end"])
    return {str(c): (g["start"].to_numpy(np.int64), g["end"].to_numpy(np.int64))
            for c, g in table.groupby("chrom", sort=False)}


def overlaps_any(starts: np.ndarray, width: int, iv_starts: np.ndarray, iv_ends: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: window ``[start, start + width)`` overlaps some interval ``[a, b)`` by >= 1 bp.

    Vectorised: with the intervals sorted by start, the windows that overlap any of the intervals
    starting before ``start + width`` are those whose start lies below the running maximum of
    their ends. An empty interval ``[a, a)`` counts as the base ``a``.
    """
    starts = np.asarray(starts, dtype=np.int64)
    if len(iv_starts) == 0 or len(starts) == 0:
        return np.zeros(len(starts), dtype=bool)
    order = np.argsort(iv_starts, kind="stable")
    a = np.asarray(iv_starts, dtype=np.int64)[order]
    b = np.maximum(np.asarray(iv_ends, dtype=np.int64)[order], a + 1)
    reach = np.maximum.accumulate(b)
    j = np.searchsorted(a, starts + width, side="left") - 1
    return (j >= 0) & (reach[np.maximum(j, 0)] > starts)


# --------------------------------------------------------------------------------------------
# GC content
# --------------------------------------------------------------------------------------------


def prefix_counts(fasta, chrom: str, length: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """G+C and N counts of ``[0, p)`` for sorted ``positions`` ``p`` in ``[0, length]``.

    The chromosome is read in blocks of :data:`_BLOCK_BP` bases; within a block the counts are
    running sums of the indicators, taken at the positions that fall in it.
    """
    positions = np.asarray(positions, dtype=np.int64)
    gc = np.zeros(len(positions), dtype=np.int64)
    nn = np.zeros(len(positions), dtype=np.int64)
    carry_gc = carry_n = 0
    for b0 in range(0, length, _BLOCK_BP):
        b1 = min(b0 + _BLOCK_BP, length)
        codes = encode(fasta[chrom][b0:b1], f"{fasta.filename} {chrom}:{b0}-{b1}")
        lo, hi = np.searchsorted(positions, [b0 + 1, b1 + 1], side="left")
        is_gc = (codes == 1) | (codes == 2)
        is_n = codes == N_CODE
        if hi > lo:
            at = positions[lo:hi] - b0 - 1
            gc[lo:hi] = carry_gc + np.cumsum(is_gc, dtype=np.int32)[at]
            nn[lo:hi] = carry_n + np.cumsum(is_n, dtype=np.int32)[at]
        carry_gc += int(np.count_nonzero(is_gc))
        carry_n += int(np.count_nonzero(is_n))
    return gc, nn


def window_counts(fasta, chrom: str, length: int, starts_list: Sequence[np.ndarray],
                  width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(gc, n)]``: G+C and N counts of the windows ``[s, s + width)`` of each start array,
    one pass over the chromosome for all of them."""
    positions = np.unique(np.concatenate([np.concatenate([s, s + width]) for s in starts_list]
                                         + [np.zeros(0, dtype=np.int64)]).astype(np.int64))
    gc, nn = prefix_counts(fasta, chrom, length, positions)
    out = []
    for s in starts_list:
        i, j = np.searchsorted(positions, s), np.searchsorted(positions, s + width)
        out.append((gc[j] - gc[i], nn[j] - nn[i]))
    return out


def gc_bin(gc: np.ndarray, valid: np.ndarray, bins: int) -> np.ndarray:
    """Bin ``floor(bins * gc / valid)`` (the last bin closed) in integers; -1 where ``valid == 0``."""
    gc, valid = np.asarray(gc, dtype=np.int64), np.asarray(valid, dtype=np.int64)
    out = np.minimum(gc * bins // np.maximum(valid, 1), bins - 1)
    return np.where(valid > 0, out, -1)


def bin_label(k: int, bins: int) -> str:
    digits = max(2, math.ceil(math.log10(bins)))
    return f"{k / bins:.{digits}f}-{(k + 1) / bins:.{digits}f}"


# --------------------------------------------------------------------------------------------
# Candidates and sampling
# --------------------------------------------------------------------------------------------


def gc_matched_background(
    peak_windows: pd.DataFrame,
    peaks: Mapping[str, pd.DataFrame],
    chrom_sizes: Mapping[str, int],
    fasta: str | Path,
    settings: Mapping[str, Any],
    width: int,
    exclude_chroms: Sequence[str] = (),
    blacklist: str | Path | None = None,
    seed: int = 1,
    log: logging.Logger | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw GC-matched background windows (see the module docstring).

    Args:
        peak_windows: the peak windows (``chrom``, ``start``; e.g. :func:`make_windows`' table):
            their GC histogram is matched, and they are kept ``exclusion_margin`` away from.
        peaks: ``{task: DataFrame(chrom, summit)}``, every peak of every task (their windows are
            kept away from too, also those windowing dropped or merged).
        chrom_sizes: ``{chrom: size}`` in genome order (the order of the output).
        fasta: the genome FASTA (indexed; its chromosome lengths must equal chrom_sizes').
        settings: :func:`background_settings` (ratio, exclusion_margin, gc_bins, stride).
        width: window width in bp.
        exclude_chroms: chromosomes without candidates.
        blacklist: BED of regions no background window may overlap, or None.
        seed: seeds the draw (a numpy Generator).

    Returns:
        ``(background, stats)``: background has columns ``chrom``, ``start``, ``gc`` (fraction),
        sorted by chromosome (chrom_sizes order) and start; stats holds the candidate counts
        (``grid``, ``with_n``, ``near_peak``, ``blacklist``, ``candidates``), the per-bin table
        (``bins``: DataFrame bin, peaks, needed, candidates), ``peak_gc``, ``background_gc``,
        ``peaks_without_gc`` and ``seconds``.
    """
    log = log or logging.getLogger("bpnet")
    t0 = time.perf_counter()
    bins, ratio = int(settings["gc_bins"]), float(settings["ratio"])
    margin, stride = int(settings["exclusion_margin"]), int(settings["stride"])
    excluded = set(exclude_chroms)
    chroms = [c for c in chrom_sizes if c not in excluded]
    half = width // 2

    # Windows of every peak of every task, and the kept windows, by chromosome.
    near: dict[str, list[np.ndarray]] = {}
    for df in peaks.values():
        for c, g in df.groupby("chrom", sort=False):
            near.setdefault(str(c), []).append(g["summit"].to_numpy(np.int64) - half)
    own: dict[str, np.ndarray] = {}
    for c, g in peak_windows.groupby("chrom", sort=False):
        own[str(c)] = g["start"].to_numpy(np.int64)
        near.setdefault(str(c), []).append(own[str(c)])
    black = read_intervals(blacklist) if blacklist is not None else {}

    fa = open_fasta(fasta)
    counts = {"grid": 0, "with_n": 0, "near_peak": 0, "blacklist": 0, "candidates": 0}
    cand_chrom, cand_start, cand_gc, cand_bins = [], [], [], []
    peak_gc_parts, peak_bin_parts = [], []
    try:
        for chrom in chroms:
            size = int(chrom_sizes[chrom])
            pw = own.get(chrom, np.zeros(0, dtype=np.int64))
            grid = np.arange(0, size - width + 1, stride, dtype=np.int64)
            if len(grid) == 0 and len(pw) == 0:
                continue
            if chrom not in fa:
                raise BPNetInputError(
                    f"chromosome {chrom!r} of the chrom sizes is not in the FASTA {fasta} "
                    f"(data.genome_fasta), needed for {KEY}")
            if len(fa[chrom]) != size:
                raise BPNetInputError(
                    f"chromosome {chrom} has {len(fa[chrom])} bp in the FASTA {fasta} (data.genome_fasta) "
                    f"but {size} bp in the chrom sizes (data.chrom_sizes); the files disagree")
            (g_gc, g_n), (p_gc, p_n) = window_counts(fa, chrom, size, [grid, pw], width)
            has_n = g_n > 0
            starts = np.concatenate(near.get(chrom, [np.zeros(0, np.int64)]))
            close = overlaps_any(grid, width, starts - margin, starts + width + margin)
            bl = black.get(chrom)
            hit = overlaps_any(grid, width, *bl) if bl is not None else np.zeros(len(grid), bool)
            counts["grid"] += len(grid)
            counts["with_n"] += int(has_n.sum())
            counts["near_peak"] += int((close & ~has_n).sum())
            counts["blacklist"] += int((hit & ~close & ~has_n).sum())
            keep = ~(has_n | close | hit)
            counts["candidates"] += int(keep.sum())
            cand_chrom.append(np.full(int(keep.sum()), chrom, dtype=object))
            cand_start.append(grid[keep])
            cand_gc.append(g_gc[keep] / width)
            cand_bins.append(gc_bin(g_gc[keep], width - g_n[keep], bins))
            valid = width - p_n
            peak_gc_parts.append(np.where(valid > 0, p_gc / np.maximum(valid, 1), np.nan))
            peak_bin_parts.append(gc_bin(p_gc, valid, bins))
    finally:
        fa.close()

    def cat(parts, dtype):
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    cand_chrom, cand_start = cat(cand_chrom, object), cat(cand_start, np.int64)
    cand_gc, cand_bins = cat(cand_gc, np.float64), cat(cand_bins, np.int64)
    peak_gc, peak_bins = cat(peak_gc_parts, np.float64), cat(peak_bin_parts, np.int64)

    peak_hist = np.bincount(peak_bins[peak_bins >= 0], minlength=bins)
    needed = np.floor(ratio * peak_hist + 0.5).astype(np.int64)
    cand_hist = np.bincount(cand_bins, minlength=bins)
    table = pd.DataFrame({"bin": [bin_label(k, bins) for k in range(bins)], "peaks": peak_hist,
                          "needed": needed, "candidates": cand_hist})
    if counts["candidates"] == 0:
        raise BPNetInputError(
            f"{KEY}: no candidate background window: of {counts['grid']} windows of {width} bp "
            f"(every {stride} bp, {KEY}.stride) outside windows.exclude_chroms, {counts['with_n']} "
            f"contain N, {counts['near_peak']} lie within {margin} bp ({KEY}.exclusion_margin) of a "
            f"peak window and {counts['blacklist']} overlap windows.blacklist; lower "
            f"{KEY}.exclusion_margin or {KEY}.stride")
    short = np.flatnonzero(needed > cand_hist)
    if short.size:
        k = int(short[0])
        more = f" ({short.size - 1} more bin(s) short)" if short.size > 1 else ""
        raise BPNetInputError(
            f"{KEY}: GC bin {bin_label(k, bins)} needs {needed[k]} background windows "
            f"({KEY}.ratio {ratio:g} x {peak_hist[k]} peak windows) but the genome has "
            f"{cand_hist[k]} candidates away from peaks{more}; lower {KEY}.ratio or "
            f"{KEY}.exclusion_margin (or {KEY}.stride, or use fewer {KEY}.gc_bins)")

    rng = np.random.default_rng(seed)
    order = np.argsort(cand_bins, kind="stable")
    first = np.concatenate([[0], np.cumsum(cand_hist)])
    chosen = [rng.choice(order[first[k]:first[k + 1]], size=int(needed[k]), replace=False)
              for k in range(bins) if needed[k]]
    chosen = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    background = pd.DataFrame({"chrom": cand_chrom[chosen].astype(str), "start": cand_start[chosen],
                               "gc": cand_gc[chosen]})
    stats = {**counts, "bins": table, "peak_gc": peak_gc[~np.isnan(peak_gc)],
             "background_gc": background["gc"].to_numpy(), "peaks_without_gc": int(np.isnan(peak_gc).sum()),
             "seconds": time.perf_counter() - t0}
    return background, stats


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs
    (as ``scipy.stats.ks_2samp``); NaN when a sample is empty."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    a, b = np.sort(a), np.sort(b)
    at = np.concatenate([a, b])
    gap = np.searchsorted(a, at, side="right") / len(a) - np.searchsorted(b, at, side="right") / len(b)
    return float(np.abs(gap).max())


def log_background(stats: Mapping[str, Any], per_split: Mapping[str, int], settings: Mapping[str, Any],
                   log: logging.Logger) -> None:
    """One line of counts, time and GC distributions (quantiles, KS statistic), then the bins."""
    q = ", ".join(f"{p:g}" for p in QUANTILES)

    def quantiles(x):
        return "/".join(f"{v:.3f}" for v in np.quantile(x, QUANTILES)) if len(x) else "-"

    splits = ", ".join(f"{s} {n}" for s, n in per_split.items())
    log.info(
        "background: %d GC-matched windows (%s; ratio %g, %d GC bins, exclusion margin %d bp, stride "
        "%d bp) from %d candidates of %d grid windows (%d with N, %d near peaks, %d blacklisted) in "
        "%.2f s; GC quantiles (%s) peaks %s, background %s; KS statistic %.4f%s",
        len(stats["background_gc"]), splits, settings["ratio"], settings["gc_bins"],
        settings["exclusion_margin"], settings["stride"], stats["candidates"], stats["grid"],
        stats["with_n"], stats["near_peak"], stats["blacklist"], stats["seconds"], q,
        quantiles(stats["peak_gc"]), quantiles(stats["background_gc"]),
        ks_statistic(stats["peak_gc"], stats["background_gc"]),
        f"; {stats['peaks_without_gc']} peak windows are all N (no GC, no background)"
        if stats["peaks_without_gc"] else "")
    table = stats["bins"]
    log.info("background per GC bin (bins with peaks):\n%s", table[table["peaks"] > 0].to_string(index=False))
