"""The ChIP-nexus signal: every TF's expected 5'-end rate per strand (footprint kernels shaped by
an exonuclease cut bias, plus open chromatin and a background) and the counts sampled from it;
the PATCH-CAP-like control has the open-chromatin signal only.

Tracks are sparse: ``(pos, values)`` at sorted global positions (see
:class:`~bpnet.simulate.genome.Genome`), the constant background kept apart. The signal reads the
genome sequence only around the loci (the cut bias), so :class:`LocusSequence`, those stretches
alone, stands in for the whole genome (:func:`tf_tracks` yields one TF's tracks at a time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
FRAME_PAD = CUT_K  # LocusSequence keeps this many bases beyond each side of a frame (the k-mers)


@dataclass
class LocusSequence:
    """The genome sequence around every locus: all the signal reads of it (the cut bias at the
    5' ends, all within the loci's frames), so it stands in for the whole genome at a fraction of
    its size.

    Frame ``l`` holds the codes of bases ``[start[l], start[l] + width)`` (its locus frame of
    ``+-FRAME_HALF`` plus ``FRAME_PAD`` each side) in row ``l`` of ``codes``; :meth:`fill` copies
    them from each chromosome as it is made.
    """

    start: np.ndarray  # (n_loci,) global first base of each frame
    codes: np.ndarray  # (n_loci, width) uint8
    filled: np.ndarray  # (n_loci,) whether the frame has been copied

    @classmethod
    def around(cls, centers: np.ndarray) -> "LocusSequence":
        """Empty frames around the locus ``centers`` ``(n_loci,)``."""
        width = 2 * (FRAME_HALF + FRAME_PAD)
        return cls(np.asarray(centers, dtype=np.int64) - FRAME_HALF - FRAME_PAD,
                   np.zeros((len(centers), width), dtype=np.uint8), np.zeros(len(centers), dtype=bool))

    def fill(self, seq: np.ndarray, offset: int) -> None:
        """Copy the frames lying within ``seq``, the codes of bases ``[offset, offset + len(seq))``."""
        width = self.codes.shape[1]
        rows = np.flatnonzero((self.start >= offset) & (self.start + width <= offset + len(seq)))
        if rows.size:
            self.codes[rows] = sliding_window_view(seq, width)[self.start[rows] - offset]
            self.filled[rows] = True

    def shift(self, locus: np.ndarray) -> np.ndarray:
        """``(n,)``: added to a global position near locus ``locus[i]``, its index into
        ``codes.ravel()``."""
        return locus * self.codes.shape[1] - self.start[locus]


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
           table: np.ndarray, strand: int, shift: np.ndarray | int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spread ``reads`` ``(n,)`` around ``modes`` ``(n,)`` with ``kernel`` x cut bias.

    ``seq[p + shift[i]]`` is the base at global position ``p`` near mode ``i`` (``shift`` 0: the
    whole genome's codes; else :meth:`LocusSequence.shift`). Returns ``(positions, values)`` both
    ``(n, len(kernel))``; each row sums to its reads.
    """
    radius = len(kernel) // 2
    pos = modes[:, None] + np.arange(-radius, radius + 1)[None, :]
    shape = kernel[None, :] * cut_bias(seq, pos + np.reshape(shift, (-1, 1)), table, strand)
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


def locus_signal(seq: np.ndarray | LocusSequence, centers: np.ndarray, open_reads: np.ndarray,
                 open_kernel: np.ndarray, sites: tuple | None, table: np.ndarray, strand: int) -> tuple[np.ndarray, ...]:
    """Expected 5'-end rate of one strand around every locus, as a sparse track.

    Args:
        seq: genome codes (for the cut bias), or the :class:`LocusSequence` of ``centers``.
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
    framed = isinstance(seq, LocusSequence)
    codes = seq.codes.reshape(-1) if framed else seq

    def shift(locus: np.ndarray) -> np.ndarray | int:
        return seq.shift(locus) if framed else 0

    parts = []
    for a in range(0, len(centers), CHUNK_LOCI):
        b = min(a + CHUNK_LOCI, len(centers))
        start = centers[a:b] - FRAME_HALF
        frames = to_frames(start, np.arange(b - a), *spread(codes, centers[a:b], open_reads[a:b], open_kernel,
                                                            table, strand, shift(np.arange(a, b))))
        if sites is not None:
            locus, modes, reads, kernel = sites
            lo, hi = np.searchsorted(locus, [a, b])
            frames += to_frames(start, locus[lo:hi] - a, *spread(codes, modes[lo:hi], reads[lo:hi], kernel, table,
                                                                 strand, shift(locus[lo:hi])))
        # Negligible tails are cut from the model itself, so the truth stays the exact mean.
        row, col = np.nonzero(frames >= MIN_RATE)  # row-major: sorted by locus, then position
        parts.append((start[row] + col, frames[row, col], row + a))
    columns = [list(x) for x in zip(*parts)]
    del parts
    out = []
    for column in columns:  # one output at a time, its parts freed as it is made
        out.append(np.concatenate(column))
        column.clear()
    return tuple(out)


def _sample_counts(rng: np.random.Generator, genome_len: int, background: float, pos: np.ndarray,
                   rate: np.ndarray, dispersion: float) -> tuple[np.ndarray, np.ndarray]:
    """Observed counts: Poisson background over the genome plus negative binomial signal.

    ``rate`` ``(m,)`` is the (region-noise-scaled) signal rate at sorted, distinct ``pos``; per
    position the count is Poisson(rate * Gamma(dispersion, 1/dispersion)). Returns sparse
    (pos, counts), both int64: the background reads (one per drawn position) and the signal
    summed per position. Memory: about 4 x 8 bytes per background read at most (the background
    is reduced to distinct positions before the signal is drawn; the draws keep their order).
    """
    n_bg = rng.poisson(background * genome_len)
    uniq = rng.integers(0, genome_len, n_bg)
    uniq.sort()
    distinct = np.ones(n_bg + 1, dtype=bool)  # [i]: position i starts a new value (and the end)
    np.not_equal(uniq[1:], uniq[:-1], out=distinct[1:n_bg])
    cnt = np.diff(np.flatnonzero(distinct))  # reads per distinct position (int64)
    uniq = uniq[distinct[:n_bg]]
    del distinct
    sig = rng.poisson(rate * rng.gamma(dispersion, 1.0 / dispersion, rate.size))
    hit = sig > 0
    sp, sc = pos[hit], sig[hit].astype(np.int64)
    del sig, hit
    at = np.searchsorted(uniq, sp)
    same = at < len(uniq)
    same[same] = uniq[at[same]] == sp[same]
    cnt[at[same]] += sc[same]  # sp distinct: each background position once
    new = ~same
    return np.insert(uniq, at[new], sp[new]), np.insert(cnt, at[new], sc[new])


def signal_tracks(cfg: Mapping[str, Any], genome: Genome, planted: Planted,
                  rng_bias: np.random.Generator, rng_noise: np.random.Generator,
                  rng_control: np.random.Generator, log: logging.Logger | None = None) -> tuple[dict, dict]:
    """Expected-rate and observed-count tracks of every TF and strand, and of the control.

    Returns ``(expected, observed)``: ``expected["Oct4.pos"] = (pos, rate, background)``, the
    sparse rate above the constant background at sorted global positions; ``observed[name] =
    (pos, counts)`` sparse integer counts (names ``<TF|patchcap>.<pos|neg>``). ``log``: progress
    lines (one unit per track and strand). All tracks at once: :func:`tf_tracks` yields them one
    TF at a time.
    """
    table = cut_bias_table(rng_bias, cfg["cut_bias_sd"])
    expected: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    observed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with progress_bar(log, 2 * len(TFS + (CONTROL,)), "simulate tracks", unit="track") as bar:
        for _, exp, obs in tf_tracks(cfg, genome.seq, genome.length, planted, table, rng_noise, rng_control, bar):
            expected.update(exp)
            observed.update(obs)
    return expected, observed


def background_rate(cfg: Mapping[str, Any], tf: str) -> float:
    """The constant genome-wide background (reads per bp and strand) of ``tf`` or the control."""
    return cfg["open_chromatin"]["patchcap_background"] if tf == CONTROL else cfg["tfs"][tf]["background"]


def expected_track(cfg: Mapping[str, Any], seq: np.ndarray | LocusSequence, planted: Planted, table: np.ndarray,
                   tf: str, strand: int, loci: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """The noise-free expected 5'-end rate of ``tf`` (or :data:`CONTROL`) on ``strand`` (+1 / -1)
    above its background (:func:`background_rate`): :func:`locus_signal`'s ``(pos, rate, locus)``.

    ``seq``: the genome codes or the :class:`LocusSequence` of the loci; ``table``: the cut bias
    (:func:`cut_bias_table`). ``loci``: sorted locus indices to compute alone (e.g. those of some
    chromosomes: a locus' signal does not depend on the others, so the values are those of the
    whole track there); ``locus`` then numbers them ``0..len(loci)-1``.
    """
    sh, oc = cfg["shape"], cfg["open_chromatin"]
    control = tf == CONTROL
    open_kernel = footprint_kernel(int(OPEN_RADIUS_SD * oc["width"]), oc["width"], 0.0, 1.0)
    centers = planted.centers
    open_reads = planted.access * (oc["patchcap_reads"] if control else oc["tf_reads"]) / 2
    sites = None
    if not control:
        p = cfg["tfs"][tf]
        kernel = footprint_kernel(sh["radius"], p["sigma"], sh["broad_fraction"], sh["broad_scale"])
        reads = p["depth"] * planted.occ[:, TFS.index(tf)]
        site = reads > 1e-3
        inst_locus, gcenter = planted.instances["locus"].to_numpy()[site], planted.instances["gcenter"].to_numpy()[site]
        # + strand 5' ends upstream of the motif centre, - strand ends downstream.
        modes = np.round(gcenter - strand * p["footprint"] / 2).astype(np.int64)
        sites = (inst_locus, modes, reads[site] / 2, kernel)
    if loci is not None:
        centers, open_reads = centers[loci], open_reads[loci]
        if isinstance(seq, LocusSequence):
            seq = LocusSequence(seq.start[loci], seq.codes[loci], seq.filled[loci])
        if sites is not None:
            keep = np.isin(sites[0], loci)
            sites = (np.searchsorted(loci, sites[0][keep]), *(x[keep] for x in sites[1:3]), kernel)
    return locus_signal(seq, centers, open_reads, open_kernel, sites, table, strand)


def tf_tracks(cfg: Mapping[str, Any], seq: np.ndarray | LocusSequence, genome_length: int, planted: Planted,
              table: np.ndarray, rng_noise: np.random.Generator, rng_control: np.random.Generator,
              progress=None) -> Iterator[tuple[str, dict, dict]]:
    """The tracks of one TF at a time: ``(tf, expected, observed)`` for each of :data:`TFS`, then
    the control (:data:`CONTROL`, its ``expected`` empty); the dicts as :func:`signal_tracks`'s,
    with this TF's two strands. The draws are the same whether or not the caller keeps them.

    ``seq``: the genome codes or the :class:`LocusSequence` of the loci (the same tracks);
    ``table``: the cut bias (:func:`cut_bias_table`). ``progress``: optional object with
    ``update(1)`` per track and strand.
    """
    n_loci = len(planted.centers)
    region_cv = cfg["noise"]["region_cv"]
    for tf in TFS + (CONTROL,):
        expected: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        observed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        rng = rng_control if tf == CONTROL else rng_noise
        # Region-level overdispersion: one mean-1 gamma factor per locus, shared by both strands.
        k = 1.0 / region_cv**2 if region_cv > 0 else np.inf
        g = rng.gamma(k, 1.0 / k, n_loci) if region_cv > 0 else np.ones(n_loci)
        background = background_rate(cfg, tf)
        for name, strand in ((f"{tf}.pos", 1), (f"{tf}.neg", -1)):
            pos, rate, locus = expected_track(cfg, seq, planted, table, tf, strand)
            if tf != CONTROL:
                expected[name] = (pos, rate, background)
            observed[name] = _sample_counts(rng, genome_length, background, pos, rate * g[locus],
                                            cfg["noise"]["dispersion"])
            del pos, rate, locus
            if progress is not None:
                progress.update(1)
        yield tf, expected, observed
        del expected, observed  # this TF's tracks live on only where the caller keeps them
