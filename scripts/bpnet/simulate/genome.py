"""The simulated genome: chromosome sizes like the mm10 autosomes, and a background sequence with
GC isochores and CpG depletion (no motifs yet: :mod:`bpnet.simulate.loci` plants them)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from bpnet.errors import BPNetInputError
from bpnet.progress import progress_bar

# mm10 chr1..chr19 lengths: relative chromosome sizes of the simulated genome.
MM10_AUTOSOMES = (
    195471971, 182113224, 160039680, 156508116, 151834684, 149736546, 145441459, 129401213,
    124595110, 130694993, 122082543, 120129022, 120421639, 124902244, 104043685, 98207768,
    94987271, 90702639, 61431566,
)
TILE_BP = 4000  # one locus per tile; centres in the middle half, so loci are >= 2 kb apart
ISOCHORE_BP = 100_000  # GC content varies between blocks of this size


@dataclass
class Genome:
    """The simulated genome: ``sizes`` ``{chrom: length}`` and ``seq`` ``(total,)`` uint8 codes of
    all chromosomes concatenated in order (global coordinates)."""

    sizes: dict[str, int]
    seq: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        """``(n_chroms,)`` global coordinate of each chromosome's first base."""
        return np.concatenate([[0], np.cumsum(list(self.sizes.values()))[:-1]]).astype(np.int64)

    @property
    def length(self) -> int:
        return int(sum(self.sizes.values()))

    def to_local(self, gpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global positions ``(n,)`` -> chromosome names ``(n,)`` and 0-based positions ``(n,)``."""
        idx = np.searchsorted(self.offsets, gpos, side="right") - 1
        return np.array(list(self.sizes))[idx], gpos - self.offsets[idx]


def chrom_sizes_for(cfg: Mapping[str, Any]) -> dict[str, int]:
    """``{chr1: size, ...}``: ``genome_length * scale`` split like the mm10 autosomes."""
    rel = np.array(MM10_AUTOSOMES[: cfg["num_chroms"]], dtype=np.float64)
    sizes = np.round(rel / rel.sum() * cfg["genome_length"] * cfg["scale"]).astype(np.int64)
    if sizes.min() < 3 * TILE_BP:
        raise BPNetInputError(
            f"simulation.genome_length x simulation.scale = {cfg['genome_length'] * cfg['scale']:.0f} bp "
            f"makes chr{int(np.argmin(sizes)) + 1} only {sizes.min()} bp long; every chromosome needs "
            f">= {3 * TILE_BP} bp (raise genome_length or scale)"
        )
    return {f"chr{i + 1}": int(s) for i, s in enumerate(sizes)}


def background_sequence(rng: np.random.Generator, length: int, gc: float, gc_sd: float,
                        cpg_depletion: float) -> np.ndarray:
    """Random genome sequence ``(length,)`` uint8 codes with GC isochores and CpG depletion.

    GC varies between 100 kb blocks (sd ``gc_sd``); then a share ``cpg_depletion`` of CpG
    dinucleotides is deaminated (half C->T, half G->A). The pre-depletion GC is raised so that
    the final GC content is ``gc`` on average (depletion removes ``cpg_depletion * (gc/2)^2``).
    """
    p = cpg_depletion
    g0 = gc if p == 0 else (1 - np.sqrt(1 - p * gc)) / (p / 2)
    n_blocks = -(-length // ISOCHORE_BP)
    block_gc = np.clip(rng.normal(g0, gc_sd, n_blocks), 0.25, 0.7).astype(np.float32)
    g = np.repeat(block_gc, ISOCHORE_BP)[:length]
    u = rng.random(length, dtype=np.float32)
    # One uniform per base: [0, g/2) C, [g/2, g) G, [g, (1+g)/2) A, the rest T.
    seq = np.full(length, 3, dtype=np.uint8)
    seq[u < (1 + g) / 2] = 0
    seq[u < g] = 2
    seq[u < g / 2] = 1
    cpg = np.flatnonzero((seq[:-1] == 1) & (seq[1:] == 2))
    hit = rng.random(cpg.size) < p
    to_t = rng.random(cpg.size) < 0.5
    seq[cpg[hit & to_t]] = 3
    seq[cpg[hit & ~to_t] + 1] = 0
    return seq


def make_genome(cfg: Mapping[str, Any], rng: np.random.Generator, log: logging.Logger | None = None) -> Genome:
    """Chromosome sizes and background sequence (no motifs planted yet); ``log``: progress lines."""
    sizes = chrom_sizes_for(cfg)
    parts = []
    with progress_bar(log, len(sizes), "simulate genome", unit="chrom") as bar:
        for length in sizes.values():
            parts.append(background_sequence(rng, length, cfg["gc_content"], cfg["gc_sd"], cfg["cpg_depletion"]))
            bar.update(1)
    return Genome(sizes, np.concatenate(parts))
