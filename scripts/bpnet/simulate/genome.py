"""The simulated genome: chromosome sizes like the mm10 autosomes, and a background sequence with
GC isochores and CpG depletion (no motifs yet: :mod:`bpnet.simulate.loci` plants them)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

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
SEQ_CHUNK_BP = 40 * ISOCHORE_BP  # the background is drawn in pieces of this size (bounds memory)


@dataclass
class Genome:
    """The simulated genome: ``sizes`` ``{chrom: length}`` and ``seq`` ``(total,)`` uint8 codes of
    all chromosomes concatenated in order (global coordinates), or None where the sequence is
    streamed one chromosome at a time (:func:`chromosome_sequences`)."""

    sizes: dict[str, int]
    seq: np.ndarray | None = None

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

    Built in pieces of :data:`SEQ_CHUNK_BP` (the same draws in the same order as one piece: a
    float32 uniform per base, then one float64 per CpG for the hits and one for the sides), so a
    chromosome costs little more than its 1 byte per base.
    """
    p = cpg_depletion
    g0 = gc if p == 0 else (1 - np.sqrt(1 - p * gc)) / (p / 2)
    n_blocks = -(-length // ISOCHORE_BP)
    block_gc = np.clip(rng.normal(g0, gc_sd, n_blocks), 0.25, 0.7).astype(np.float32)
    seq = np.full(length, 3, dtype=np.uint8)
    for a in range(0, length, SEQ_CHUNK_BP):  # SEQ_CHUNK_BP is a multiple of ISOCHORE_BP
        b = min(a + SEQ_CHUNK_BP, length)
        g = np.repeat(block_gc[a // ISOCHORE_BP: -(-b // ISOCHORE_BP)], ISOCHORE_BP)[: b - a]
        u = rng.random(b - a, dtype=np.float32)
        # One uniform per base: [0, g/2) C, [g/2, g) G, [g, (1+g)/2) A, the rest T.
        part = seq[a:b]
        part[u < (1 + g) / 2] = 0
        part[u < g] = 2
        part[u < g / 2] = 1
    # CpG at i: seq[i] C and seq[i + 1] G, for i in [0, length - 1)
    cpg = np.concatenate([np.flatnonzero((seq[a:b] == 1) & (seq[a + 1:b + 1] == 2)) + a
                          for a, b in _pieces(length - 1)] or [np.zeros(0, np.int64)])
    hit = np.concatenate([rng.random(b - a) < p for a, b in _pieces(cpg.size)] or [np.zeros(0, bool)])
    to_t = np.concatenate([rng.random(b - a) < 0.5 for a, b in _pieces(cpg.size)] or [np.zeros(0, bool)])
    seq[cpg[hit & to_t]] = 3
    seq[cpg[hit & ~to_t] + 1] = 0
    return seq


def _pieces(n: int) -> list[tuple[int, int]]:
    """``[a, b)`` pieces of ``range(n)``, :data:`SEQ_CHUNK_BP` long (the last one shorter)."""
    return [(a, min(a + SEQ_CHUNK_BP, n)) for a in range(0, max(n, 0), SEQ_CHUNK_BP)]


def chromosome_sequences(cfg: Mapping[str, Any], rng: np.random.Generator,
                         plant: Callable[[np.ndarray, int], None] | None = None,
                         log: logging.Logger | None = None) -> Iterator[tuple[str, int, np.ndarray]]:
    """The genome one chromosome at a time: ``(chrom, offset, seq)`` in order, ``offset`` the
    global coordinate of its first base, ``seq`` its uint8 codes.

    The draws are :func:`make_genome`'s (chromosome after chromosome from ``rng``), so the
    chromosomes are those of the whole genome; ``plant(seq, offset)``, when given, writes the
    planted motifs into each one before it is yielded. ``log``: progress lines (one unit per
    chromosome). Only one chromosome is held at a time (when the caller lets go of the last).
    """
    sizes = chrom_sizes_for(cfg)
    offset = 0
    with progress_bar(log, len(sizes), "simulate genome", unit="chrom") as bar:
        for chrom, length in sizes.items():
            seq = background_sequence(rng, length, cfg["gc_content"], cfg["gc_sd"], cfg["cpg_depletion"])
            if plant is not None:
                plant(seq, offset)
            yield chrom, offset, seq
            del seq
            offset += length
            bar.update(1)


def make_genome(cfg: Mapping[str, Any], rng: np.random.Generator, log: logging.Logger | None = None) -> Genome:
    """Chromosome sizes and background sequence (no motifs planted yet); ``log``: progress lines.

    The whole genome in memory (1 byte per base); :func:`chromosome_sequences` streams it.
    """
    sizes = chrom_sizes_for(cfg)
    seq = np.empty(sum(sizes.values()), dtype=np.uint8)
    for _, offset, part in chromosome_sequences(cfg, rng, log=log):
        seq[offset:offset + len(part)] = part
    return Genome(sizes, seq)
