"""The ChIP-nexus signal: every TF's expected 5'-end rate per strand (footprint kernels shaped by
an exonuclease cut bias, plus open chromatin and a background) and the counts sampled from it;
the PATCH-CAP-like control has the open-chromatin signal only.

Tracks are sparse: ``(pos, values)`` at sorted global positions (see
:class:`~bpnet.simulate.genome.Genome`), the constant background kept apart.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from bpnet.progress import progress_bar
from bpnet.simulate.binding import TFS
from bpnet.simulate.genome import TILE_BP, Genome
from bpnet.simulate.loci import Planted

CONTROL = "patchcap"  # the control track's name (in file paths and track names)

# All signal of a locus lies within +-FRAME_HALF of its centre (checked in to_frames: at most
# 15 units of <= 15 bp (a Nanog pair <= 107 bp) with gaps <= 60 bp span < 1160 bp, plus a kernel
# radius <= 300 bp and half a footprint <= 50 bp), so the loci's frames never overlap and the
# sparse tracks are built by one bincount, already sorted by position.
FRAME_HALF = TILE_BP // 4
CHUNK_LOCI = 2048  # loci whose frames are built at once (bounds memory at large scale)
CUT_K = 4  # k-mer of the exonuclease cut bias, spanning the 5' end (2 bp each side)
OPEN_RADIUS_SD = 3  # the nonspecific open-chromatin signal is cut at +-3 sd
MIN_RATE = 1e-3  # expected reads/bp below which a locus adds nothing (keeps the tracks sparse)


def cut_bias_table(rng: np.random.Generator, sd: float) -> np.ndarray:
    """Exonuclease cut preference ``(4**CUT_K,)`` per k-mer: log-normal, mean 1."""
    w = np.exp(rng.normal(0.0, sd, 4**CUT_K))
    return w / w.mean()


def cut_bias(seq: np.ndarray, positions: np.ndarray, table: np.ndarray, strand: int) -> np.ndarray:
    """Cut bias at global ``positions`` (any shape) for 5' ends on ``strand`` (+1 / -1).

    The k-mer spans the 5' end, 2 bp each side, read 5'->3' on the read's strand.
    """
    offs = np.arange(-2, CUT_K - 2)
    codes = seq[positions[..., None] + offs].astype(np.int64)
    if strand < 0:
        codes = 3 - codes[..., ::-1]
    idx = (codes * 4 ** np.arange(CUT_K - 1, -1, -1)).sum(axis=-1)
    return table[idx]


def footprint_kernel(radius: int, sigma: float, broad_fraction: float, broad_scale: float) -> np.ndarray:
    """Shape ``(2 radius + 1,)`` of one strand's 5' ends around its mode; sums to 1."""
    r = np.arange(-radius, radius + 1, dtype=np.float64)
    sharp = np.exp(-0.5 * (r / sigma) ** 2)
    broad = np.exp(-np.abs(r) / broad_scale)
    return (1 - broad_fraction) * sharp / sharp.sum() + broad_fraction * broad / broad.sum()


def spread(seq: np.ndarray, modes: np.ndarray, reads: np.ndarray, kernel: np.ndarray,
           table: np.ndarray, strand: int) -> tuple[np.ndarray, np.ndarray]:
    """Spread ``reads`` ``(n,)`` around ``modes`` ``(n,)`` with ``kernel`` x cut bias.

    Returns ``(positions, values)`` both ``(n, len(kernel))``; each row sums to its reads.
    """
    radius = len(kernel) // 2
    pos = modes[:, None] + np.arange(-radius, radius + 1)[None, :]
    shape = kernel[None, :] * cut_bias(seq, pos, table, strand)
    shape /= shape.sum(axis=1, keepdims=True)
    return pos, shape * reads[:, None]


def to_frames(frame_start: np.ndarray, locus: np.ndarray, pos: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Sum ``vals`` at ``pos`` (both ``(n, K)``, row i from locus ``locus[i]``) into locus frames.

    Returns ``(n_loci, 2 * FRAME_HALF)``: frame ``l`` covers ``[frame_start[l], + 2 FRAME_HALF)``.
    """
    width = 2 * FRAME_HALF
    rel = pos - frame_start[locus][:, None]
    if rel.size and (rel.min() < 0 or rel.max() >= width):
        raise RuntimeError("bug: a locus' signal reaches beyond its frame of +-FRAME_HALF bp")
    flat = (locus[:, None] * width + rel).ravel()
    return np.bincount(flat, weights=vals.ravel(), minlength=len(frame_start) * width).reshape(-1, width)


def locus_signal(seq: np.ndarray, centers: np.ndarray, open_reads: np.ndarray, open_kernel: np.ndarray,
                 sites: tuple | None, table: np.ndarray, strand: int) -> tuple[np.ndarray, ...]:
    """Expected 5'-end rate of one strand around every locus, as a sparse track.

    Args:
        seq: genome codes (for the cut bias).
        centers, open_reads: ``(n_loci,)`` locus centres and their nonspecific reads (this strand).
        open_kernel: shape of the nonspecific signal around a centre.
        sites: ``(locus, modes, reads, kernel)`` of the TF's sites (``(m,)`` each, sorted by locus;
            the kernel shared), or None (control: nonspecific signal only).
        table, strand: cut bias table and the strand (+1 / -1).

    Returns:
        ``(pos, rate, locus)``, each ``(k,)``: sorted global positions, the expected reads there
        (>= ``MIN_RATE``; the constant background not included) and the locus they belong to.
        Loci are processed in chunks, so memory stays bounded at any scale.
    """
    parts = []
    for a in range(0, len(centers), CHUNK_LOCI):
        b = min(a + CHUNK_LOCI, len(centers))
        start = centers[a:b] - FRAME_HALF
        frames = to_frames(start, np.arange(b - a),
                           *spread(seq, centers[a:b], open_reads[a:b], open_kernel, table, strand))
        if sites is not None:
            locus, modes, reads, kernel = sites
            lo, hi = np.searchsorted(locus, [a, b])
            frames += to_frames(start, locus[lo:hi] - a, *spread(seq, modes[lo:hi], reads[lo:hi], kernel, table, strand))
        # Negligible tails are cut from the model itself, so the truth stays the exact mean.
        row, col = np.nonzero(frames >= MIN_RATE)  # row-major: sorted by locus, then position
        parts.append((start[row] + col, frames[row, col], row + a))
    return tuple(np.concatenate(x) for x in zip(*parts))


def _sample_counts(rng: np.random.Generator, genome_len: int, background: float, pos: np.ndarray,
                   rate: np.ndarray, dispersion: float) -> tuple[np.ndarray, np.ndarray]:
    """Observed counts: Poisson background over the genome plus negative binomial signal.

    ``rate`` ``(m,)`` is the (region-noise-scaled) signal rate at sorted ``pos``; per position the
    count is Poisson(rate * Gamma(dispersion, 1/dispersion)). Returns sparse (pos, counts).
    """
    n_bg = rng.poisson(background * genome_len)
    bg_pos = rng.integers(0, genome_len, n_bg)
    sig = rng.poisson(rate * rng.gamma(dispersion, 1.0 / dispersion, rate.size))
    all_pos = np.concatenate([bg_pos, pos[sig > 0]])
    all_cnt = np.concatenate([np.ones(n_bg, dtype=np.int64), sig[sig > 0]])
    uniq, inv = np.unique(all_pos, return_inverse=True)
    return uniq, np.bincount(inv, weights=all_cnt).astype(np.int64)


def signal_tracks(cfg: Mapping[str, Any], genome: Genome, planted: Planted,
                  rng_bias: np.random.Generator, rng_noise: np.random.Generator,
                  rng_control: np.random.Generator, log: logging.Logger | None = None) -> tuple[dict, dict]:
    """Expected-rate and observed-count tracks of every TF and strand, and of the control.

    Returns ``(expected, observed)``: ``expected["Oct4.pos"] = (pos, rate, background)``, the
    sparse rate above the constant background at sorted global positions; ``observed[name] =
    (pos, counts)`` sparse integer counts (names ``<TF|patchcap>.<pos|neg>``). ``log``: progress
    lines (one unit per track and strand).
    """
    inst, occ = planted.instances, planted.occ
    sh, oc = cfg["shape"], cfg["open_chromatin"]
    n_loci = len(planted.centers)
    table = cut_bias_table(rng_bias, cfg["cut_bias_sd"])
    open_kernel = footprint_kernel(int(OPEN_RADIUS_SD * oc["width"]), oc["width"], 0.0, 1.0)
    region_cv = cfg["noise"]["region_cv"]
    inst_locus, gcenter = inst["locus"].to_numpy(), inst["gcenter"].to_numpy()

    expected: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    observed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with progress_bar(log, 2 * len(TFS + (CONTROL,)), "simulate tracks", unit="track") as bar:
        for t, tf in enumerate(TFS + (CONTROL,)):
            control = tf == CONTROL
            rng = rng_control if control else rng_noise
            # Region-level overdispersion: one mean-1 gamma factor per locus, shared by both strands.
            k = 1.0 / region_cv**2 if region_cv > 0 else np.inf
            g = rng.gamma(k, 1.0 / k, n_loci) if region_cv > 0 else np.ones(n_loci)
            open_reads = planted.access * (oc["patchcap_reads"] if control else oc["tf_reads"]) / 2
            background = oc["patchcap_background"] if control else cfg["tfs"][tf]["background"]
            if not control:
                p = cfg["tfs"][tf]
                kernel = footprint_kernel(sh["radius"], p["sigma"], sh["broad_fraction"], sh["broad_scale"])
                reads = p["depth"] * occ[:, t]
                site = reads > 1e-3
            for name, strand in ((f"{tf}.pos", 1), (f"{tf}.neg", -1)):
                sites = None
                if not control:
                    # + strand 5' ends upstream of the motif centre, - strand ends downstream.
                    modes = np.round(gcenter[site] - strand * p["footprint"] / 2).astype(np.int64)
                    sites = (inst_locus[site], modes, reads[site] / 2, kernel)
                pos, rate, locus = locus_signal(genome.seq, planted.centers, open_reads, open_kernel, sites,
                                                table, strand)
                if not control:
                    expected[name] = (pos, rate, background)
                observed[name] = _sample_counts(rng, genome.length, background, pos, rate * g[locus],
                                                cfg["noise"]["dispersion"])
                bar.update(1)
    return expected, observed
