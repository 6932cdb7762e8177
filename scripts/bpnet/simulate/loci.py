"""Enhancers and isolated sites: loci placed on the genome, their motif instances laid out,
sampled from the PWMs and planted into the sequence, and the TFs bound (:class:`Planted`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from bpnet.errors import BPNetInputError
from bpnet.simulate.binding import occupancy
from bpnet.simulate.genome import TILE_BP, Genome
from bpnet.simulate.motifs import MOTIFS, NANOG, affinity, background_probs, load_motifs, sample_pwm

KINDS = ("strong", "decoy", "pair", "isolated")
STRONG, DECOY, PAIR, ISOLATED = range(len(KINDS))

GAP_RANGE = (5, 60)  # bp between consecutive motif instances of an enhancer
MAX_STRONG, MAX_DECOYS = 8, 6  # caps of the per-enhancer motif counts


@dataclass
class Planted:
    """The loci and their motif instances.

    Attributes:
        centers: ``(n_loci,)`` global locus centres, in genome order.
        access: ``(n_loci,)`` accessibility of each locus.
        instances: one row per instance (genome order): locus, gstart, gcenter (global), width,
            motif, kind (indices into :data:`~bpnet.simulate.motifs.MOTIFS` / :data:`KINDS`),
            strand (+1/-1), affinity.
        occ: ``(n_instances, len(TFS))`` occupancy.
        motifs: the planted sequences, in planting order: ``(gstart (n,), codes (n, width))``
            per motif and kind (:func:`sample_instances`); :meth:`plant` writes them.
    """

    centers: np.ndarray
    access: np.ndarray
    instances: pd.DataFrame
    occ: np.ndarray
    motifs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def plant(self, seq: np.ndarray, offset: int = 0) -> None:
        """Write the planted instances that start in ``[offset, offset + len(seq))`` into
        ``seq``, the codes of that stretch of the genome (a chromosome, or the whole genome with
        ``offset`` 0), in planting order. Instances never cross a chromosome end."""
        for gstart, codes in self.motifs:
            rows = np.flatnonzero((gstart >= offset) & (gstart < offset + len(seq)))
            seq[gstart[rows, None] - offset + np.arange(codes.shape[1])[None, :]] = codes[rows]


def place_loci(rng: np.random.Generator, sizes: Mapping[str, int], n: int) -> np.ndarray:
    """Centres ``(n,)`` (global coordinates) of ``n`` loci, one per 4 kb tile, >= 2 kb apart.

    The first and last tile of each chromosome stay empty, so every 1 kb window around a locus
    fits on its chromosome. Tiles are drawn without replacement, so loci spread over the genome
    in proportion to chromosome length.
    """
    lengths = np.array(list(sizes.values()), dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n_tiles = lengths // TILE_BP - 2
    if n > n_tiles.sum():
        raise BPNetInputError(
            f"simulation.enhancers + simulation.isolated_sites (x scale) = {n} loci do not fit in "
            f"{lengths.sum()} bp (at most {n_tiles.sum()}, one per {TILE_BP} bp); raise "
            "simulation.genome_length or lower the locus counts"
        )
    tile = np.sort(rng.choice(n_tiles.sum(), size=n, replace=False))
    chrom = np.searchsorted(np.cumsum(n_tiles), tile, side="right")
    local_tile = tile - np.concatenate([[0], np.cumsum(n_tiles)[:-1]])[chrom] + 1
    jitter = rng.integers(TILE_BP // 4, 3 * TILE_BP // 4, size=n)
    return offsets[chrom] + local_tile * TILE_BP + jitter


def layout_instances(rng: np.random.Generator, cfg: Mapping[str, Any], n_enh: int, n_iso: int,
                     widths: np.ndarray) -> pd.DataFrame:
    """Motif units of each locus laid out left to right; returns one row per motif instance.

    Loci ``0..n_enh-1`` are enhancers (a geometric number of strong motifs, Poisson decoys, and a
    Nanog pair with probability ``nanog_pairs``), the rest isolated single motifs. Units are shuffled, then
    placed with random gaps (``GAP_RANGE``); a Nanog pair is one unit of two motifs whose starts
    are ``spacing`` bp apart. Returns columns ``locus, offset`` (start relative to the locus
    centre), ``motif, kind, strand`` (+1/-1), ``width``.
    """
    mix = np.array([cfg["motif_mix"][m] for m in MOTIFS], dtype=np.float64)
    mix /= mix.sum()
    # Geometric motif counts: many enhancers with one or two motifs (weak, near the detection
    # limit), few with many, for the heavy-tailed peak strengths of real ChIP.
    n_strong = np.minimum(rng.geometric(1.0 / cfg["motifs_per_enhancer"], n_enh), MAX_STRONG)
    n_decoy = np.minimum(rng.poisson(cfg["decoys_per_enhancer"], n_enh), MAX_DECOYS)
    has_pair = rng.random(n_enh) < cfg["nanog_pairs"]
    enh = np.arange(n_enh)
    unit_locus = np.concatenate([
        np.repeat(enh, n_strong), np.repeat(enh, n_decoy), enh[has_pair], n_enh + np.arange(n_iso),
    ])
    unit_kind = np.concatenate([
        np.full(n_strong.sum(), STRONG), np.full(n_decoy.sum(), DECOY),
        np.full(has_pair.sum(), PAIR), np.full(n_iso, ISOLATED),
    ])
    n_units = unit_locus.size
    unit_motif = rng.choice(len(MOTIFS), size=n_units, p=mix)
    unit_motif[unit_kind == PAIR] = NANOG
    lo, hi = cfg["nanog_pair_spacing"]
    spacing = np.where(unit_kind == PAIR, rng.integers(lo, hi + 1, n_units), 0)
    unit_width = widths[unit_motif] + spacing

    # Shuffle units within each locus, then stack them with random gaps.
    order = np.lexsort((rng.random(n_units), unit_locus))
    unit_locus, unit_kind, unit_motif = unit_locus[order], unit_kind[order], unit_motif[order]
    spacing, unit_width = spacing[order], unit_width[order]
    gaps = rng.integers(GAP_RANGE[0], GAP_RANGE[1] + 1, n_units)
    gaps[np.r_[True, unit_locus[1:] != unit_locus[:-1]]] = 0  # no gap before the first unit
    end = np.cumsum(gaps + unit_width)
    first = np.searchsorted(unit_locus, unit_locus)  # index of the locus' first unit
    base = end[first] - unit_width[first]
    start = end - unit_width - base
    locus_len = np.zeros(n_enh + n_iso, dtype=np.int64)
    np.maximum.at(locus_len, unit_locus, start + unit_width)
    offset = start - locus_len[unit_locus] // 2  # centre each locus on its position

    # Expand Nanog pairs into two instances.
    reps = np.where(unit_kind == PAIR, 2, 1)
    inst = pd.DataFrame({
        "locus": np.repeat(unit_locus, reps),
        "offset": np.repeat(offset, reps),
        "motif": np.repeat(unit_motif, reps),
        "kind": np.repeat(unit_kind, reps),
    })
    second = np.zeros(len(inst), dtype=bool)
    pair_rows = np.flatnonzero(inst["kind"].to_numpy() == PAIR)
    second[pair_rows[1::2]] = True
    inst.loc[second, "offset"] += np.repeat(spacing, reps)[second]
    inst["width"] = widths[inst["motif"].to_numpy()]
    inst["strand"] = np.where(rng.random(len(inst)) < 0.5, 1, -1)
    return inst


def sample_instances(rng: np.random.Generator, starts: np.ndarray, inst: pd.DataFrame,
                     pfms: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> tuple[np.ndarray, list]:
    """Sample each instance from its PWM: its affinity and its sequence, as planted on the + strand.

    Strong instances are drawn from the PFM raised to ``motif_sharpness`` (renormalised per
    column: instances near the consensus, motifs a CNN learns from a few thousand windows);
    decoys from the PFM mixed with background (``decoy_weakening``).

    ``starts`` ``(n,)`` are global start positions. Returns the affinity ``(n,)`` of every sampled
    sequence (against the intended motif, read in the motif's orientation) and the planting
    order: ``[(starts (k,), codes (k, width)), ...]``, one item per motif and kind.
    """
    bg = background_probs(cfg["gc_content"])
    aff = np.zeros(len(inst))
    writes = []
    motif = inst["motif"].to_numpy()
    weak = inst["kind"].to_numpy() == DECOY
    minus = inst["strand"].to_numpy() < 0
    for m, name in enumerate(MOTIFS):
        pfm = pfms[name]
        for is_decoy in (False, True):
            rows = np.flatnonzero((motif == m) & (weak == is_decoy))
            if rows.size == 0:
                continue
            if is_decoy:
                probs = (1 - cfg["decoy_weakening"]) * pfm + cfg["decoy_weakening"] * bg[None, :]
            else:
                probs = pfm ** cfg["motif_sharpness"]
            codes = sample_pwm(rng, probs, rows.size)
            aff[rows] = affinity(codes, pfm, bg, cfg["affinity_temperature"])
            # Minus-strand instances read as the reverse complement on the + strand.
            writes.append((starts[rows], np.where(minus[rows, None], (3 - codes)[:, ::-1], codes)))
    return aff, writes


def plant_loci(cfg: Mapping[str, Any], genome: Genome, rng_loci: np.random.Generator,
               rng_motifs: np.random.Generator) -> Planted:
    """Place enhancers and isolated sites, plant their motifs into ``genome.seq``, bind TFs.

    A genome without its sequence (``seq`` None: streamed) gets nothing planted; the returned
    :meth:`Planted.plant` plants into each chromosome as it is made.
    """
    planted = plan_loci(cfg, genome.sizes, rng_loci, rng_motifs)
    if genome.seq is not None:
        planted.plant(genome.seq)
    return planted


def plan_loci(cfg: Mapping[str, Any], sizes: Mapping[str, int], rng_loci: np.random.Generator,
              rng_motifs: np.random.Generator) -> Planted:
    """Place enhancers and isolated sites, sample their motifs, bind TFs: everything of
    :func:`plant_loci` but the planting (no genome sequence needed)."""
    n_enh = max(1, int(round(cfg["enhancers"] * cfg["scale"])))
    n_iso = int(round(cfg["isolated_sites"] * cfg["scale"]))
    n_loci = n_enh + n_iso
    centers = place_loci(rng_loci, sizes, n_loci)
    is_enhancer = np.arange(n_loci) < n_enh
    rng_loci.shuffle(is_enhancer)  # enhancers and isolated sites mixed along the genome
    # layout_instances numbers enhancers first, then isolated sites: map to loci in genome order.
    layout_to_locus = np.argsort(~is_enhancer, kind="stable")
    pfms = load_motifs()
    widths = np.array([pfms[m].shape[0] for m in MOTIFS])
    inst = layout_instances(rng_motifs, cfg, n_enh, n_iso, widths)
    inst["locus"] = layout_to_locus[inst["locus"].to_numpy()]
    inst = inst.sort_values(["locus", "offset"], kind="stable").reset_index(drop=True)
    inst["gstart"] = centers[inst["locus"].to_numpy()] + inst["offset"].to_numpy()
    inst["gcenter"] = inst["gstart"] + (inst["width"] - 1) / 2
    inst["affinity"], motifs = sample_instances(rng_motifs, inst["gstart"].to_numpy(), inst, pfms, cfg)
    occ, inst_access = occupancy(inst["locus"].to_numpy(), inst["gcenter"].to_numpy(),
                                 inst["motif"].to_numpy(), inst["affinity"].to_numpy(), cfg)
    access = np.zeros(n_loci)
    access[inst["locus"].to_numpy()] = inst_access
    return Planted(centers, access, inst.drop(columns="offset"), occ, motifs)
