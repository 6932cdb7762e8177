"""The simulated OSKN ChIP-nexus dataset with known ground truth (rule ``simulate_dataset``).

From ``simulation.seed`` alone, :func:`simulate` writes a complete, deterministic dataset laid out
like the paper's data, so the same downstream config keys serve both::

    genome.fa, genome.fa.fai, genome.chrom.sizes          chromosomes chr1..chrN (N >= 10)
    chip-nexus/{Oct4,Sox2,Nanog,Klf4}/counts.{pos,neg}.bw  5'-end counts per strand (integers)
    chip-nexus/{Oct4,Sox2,Nanog,Klf4}/idr-optimal-set.narrowPeak.gz   peaks called from the counts
    chip-nexus/patchcap/counts.{pos,neg}.bw               PATCH-CAP-like control (bias) track
    truth/instances.tsv.gz                                every planted motif instance
    truth/syntax.tsv.gz                                   planted effect of every motif pair vs distance
    truth/{TF}/expected.{pos,neg}.bw                      noise-free expected 5'-end rate

The generative model (every step is a deterministic function of the sequence except the read
sampling, so a sequence model can in principle reach the oracle):

1. **Genome.** Chromosome lengths follow the mouse autosomes (mm10 chr1..chrN, scaled), so the
   paper's split (valid chr2-4, test chr1/8/9) keeps about 60 % of the genome for training. The
   background has a realistic GC content with 100 kb isochores of varying GC, and CpG depletion
   (a share of CpG is deaminated to TpG/CpA, as in mammalian genomes).
2. **Loci.** Enhancers (clusters of motifs) and isolated single motifs are placed at least 2 kb
   apart. An enhancer holds a geometric number of strong motif instances (sampled from the
   JASPAR PWMs of ``data/oskn_motifs.meme``, sharpened), Poisson decoys (sampled from the PWM mixed with
   background) and, in a share of enhancers, a planted Nanog pair at a chosen spacing, laid out
   with random gaps; instances never overlap.
3. **Affinity** of an instance is ``exp(-(LLR_max - LLR) / (T * D))`` of its planted sequence
   (log-odds against the genome background; ``D`` is the mean deficit of PWM samples, so that
   motifs of any length have comparable affinities; ``T = affinity_temperature``).
4. **Accessibility** of a locus is a Hill function of the summed affinity of its motifs: motifs
   open chromatin collaboratively, so isolated motifs stay mostly closed and unbound.
5. **Soft syntax.** The Oct4-Sox2 composite binds Oct4 and Sox2 (solo Oct4/Sox2 motifs bind
   more weakly). Nanog at a Nanog motif is boosted by another Nanog motif or a Sox2 motif at
   helical spacing: ``1 + b * a_partner * exp(-d / decay) * (1 + cos(2 pi d / period)) / 2``.
   An Oct4-Sox2 motif raises Nanog and Klf4 binding nearby (``1 + b * a * exp(-d / reach)``).
   Occupancy ``= accessibility * w / (w + kd)`` with ``w`` = specificity x affinity x boosts.
6. **ChIP-nexus signal.** A site of TF t yields ``depth_t * occupancy`` expected reads, half per
   strand: + strand 5' ends peak ``footprint_t / 2`` upstream of the motif centre, - strand ends
   downstream (a sharp Gaussian mode plus a broader Laplace tail), redistributed by a 4-mer
   exonuclease cut bias. Accessible loci add a broad nonspecific signal to every track and to the
   PATCH-CAP control. A constant genome-wide background is added.
7. **Noise** is in the read sampling only: a gamma factor per (locus, track) (the region-level
   overdispersion of replicate ChIP) and a negative binomial per position.
8. **Peaks** are called from the noisy counts like MACS: a Poisson test of the reads in a sliding
   window against max(genome-wide, 10 kb local) background, nearby runs merged, summit = the
   maximum of the 31 bp smoothed two-strand signal. False and missed peaks arise naturally.

The truth table lists every planted instance (decoys and isolated sites included) with its
affinity, accessibility, per-TF occupancy and whether it is bound. The expected-rate tracks are
the noise-free mean of the observed counts, so evaluation can score them as the "oracle" model.
:func:`simulate` logs, and returns, the figures that check the realism: peaks per TF, reads per
peak, the shares of false and missed peaks, and the oracle's count Pearson and profile auPRC on
the test chromosomes (the defaults put them in the paper's replicate range).

Randomness: one :class:`numpy.random.SeedSequence` from ``simulation.seed`` spawns an independent
stream per stage (genome, loci, motifs, cut bias, TF reads, control reads), so the same seed gives
byte-identical files, and changing, say, the noise leaves the genome and the truth unchanged.
"""

from __future__ import annotations

import copy
import gzip
import logging
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from bpnet.errors import BPNetInputError
from bpnet.progress import progress_bar
from bpnet.io.tracks import write_bigwig

TFS = ("Oct4", "Sox2", "Nanog", "Klf4")
CONTROL = "patchcap"
STRANDS = ("pos", "neg")

# Motif names used in the truth table -> JASPAR IDs in data/oskn_motifs.meme.
MOTIF_IDS = {
    "Oct4-Sox2": "MA0142.1",
    "Oct4": "MA1115.1",
    "Sox2": "MA0143.5",
    "Nanog": "MA2339.1",
    "Klf4": "MA0039.5",
}
MOTIFS = tuple(MOTIF_IDS)
OS, OCT4, SOX2, NANOG, KLF4 = range(len(MOTIFS))  # motif indices
T_OCT4, T_SOX2, T_NANOG, T_KLF4 = range(len(TFS))  # TF indices

# How strongly each TF (rows, TFS order) binds each motif (columns, MOTIFS order). Oct4 and Sox2
# both bind the composite; their solo motifs bind more weakly (the partner's support is missing).
SPECIFICITY = np.array(
    [
        [1.0, 0.7, 0.0, 0.0, 0.0],  # Oct4
        [1.0, 0.0, 0.7, 0.0, 0.0],  # Sox2
        [0.0, 0.0, 0.0, 1.0, 0.0],  # Nanog
        [0.0, 0.0, 0.0, 0.0, 1.0],  # Klf4
    ]
)

# mm10 chr1..chr19 lengths: relative chromosome sizes of the simulated genome.
MM10_AUTOSOMES = (
    195471971, 182113224, 160039680, 156508116, 151834684, 149736546, 145441459, 129401213,
    124595110, 130694993, 122082543, 120129022, 120421639, 124902244, 104043685, 98207768,
    94987271, 90702639, 61431566,
)
MIN_CHROMS = 10  # the paper's split needs chr1..chr9 plus training chromosomes

TILE_BP = 4000  # one locus per tile; centres in the middle half, so loci are >= 2 kb apart
# All signal of a locus lies within +-FRAME_HALF of its centre (checked in to_frames: at most
# 15 units of <= 15 bp (a Nanog pair <= 107 bp) with gaps <= 60 bp span < 1160 bp, plus a kernel
# radius <= 300 bp and half a footprint <= 50 bp), so the loci's frames never overlap and the
# sparse tracks are built by one bincount, already sorted by position.
FRAME_HALF = TILE_BP // 4
CHUNK_LOCI = 2048  # loci whose frames are built at once (bounds memory at large scale)
ISOCHORE_BP = 100_000  # GC content varies between blocks of this size
GAP_RANGE = (5, 60)  # bp between consecutive motif instances of an enhancer
MAX_STRONG, MAX_DECOYS = 8, 6  # caps of the per-enhancer motif counts
CUT_K = 4  # k-mer of the exonuclease cut bias, spanning the 5' end (2 bp each side)
OPEN_RADIUS_SD = 3  # the nonspecific open-chromatin signal is cut at +-3 sd
LOCAL_LAMBDA_BP = 10_000  # window of the local background of the peak caller (as MACS's llocal)
SUMMIT_SMOOTH_BP = 31  # two-strand smoothing that places the summit between the strand modes
MIN_RATE = 1e-3  # expected reads/bp below which a locus adds nothing (keeps the tracks sparse)
NEAR_BP = 50  # a peak is "true" when its summit lies this close to a bound site of its TF
TEST_CHROMS = ("chr1", "chr8", "chr9")  # the paper's test split, for the realism check
FASTA_LINE = 60
SYNTAX_MAX_BP = 500  # truth/syntax.tsv.gz covers motif distances 1..500 bp (half a 1 kb window)

KINDS = ("strong", "decoy", "pair", "isolated")
STRONG, DECOY, PAIR, ISOLATED = range(len(KINDS))

# The defaults; workflow/schemas/config.schema.yaml (section simulation) documents every key and
# carries the same values (tests/test_simulate.py checks that they agree).
DEFAULTS: dict[str, Any] = {
    "seed": 1,
    "scale": 3.0,  # 90 Mb, ~11.3k peak windows: the default dataset (see README)
    "num_chroms": 19,
    "genome_length": 30_000_000,
    "gc_content": 0.42,
    "gc_sd": 0.03,
    "cpg_depletion": 0.8,
    "enhancers": 1500,
    "isolated_sites": 1000,
    "motifs_per_enhancer": 3.5,
    "decoys_per_enhancer": 2.0,
    "motif_mix": {"Oct4-Sox2": 0.3, "Oct4": 0.1, "Sox2": 0.15, "Nanog": 0.25, "Klf4": 0.2},
    "nanog_pairs": 0.3,
    "nanog_pair_spacing": [8, 60],
    "motif_sharpness": 2.0,
    "decoy_weakening": 0.5,
    "affinity_temperature": 0.8,
    "accessibility_k": 2.5,
    "accessibility_hill": 4.0,
    "bound_threshold": 0.02,
    "syntax": {
        "helical_period": 10.5,
        "helical_decay": 40.0,
        "nanog_nanog": 3.0,
        "nanog_sox2": 1.5,
        "oct4sox2": 2.0,
        "oct4sox2_decay": 100.0,
    },
    "tfs": {
        "Oct4": {"depth": 1200.0, "kd": 0.8, "footprint": 20, "sigma": 3.0, "background": 0.01},
        "Sox2": {"depth": 1000.0, "kd": 0.8, "footprint": 16, "sigma": 3.0, "background": 0.01},
        "Nanog": {"depth": 1600.0, "kd": 0.8, "footprint": 24, "sigma": 5.0, "background": 0.01},
        "Klf4": {"depth": 1300.0, "kd": 0.8, "footprint": 14, "sigma": 3.0, "background": 0.01},
    },
    "shape": {"broad_fraction": 0.3, "broad_scale": 25.0, "radius": 100},
    "cut_bias_sd": 0.15,
    "open_chromatin": {"tf_reads": 20.0, "patchcap_reads": 150.0, "patchcap_background": 0.005, "width": 50.0},
    "noise": {"dispersion": 0.35, "region_cv": 0.5},
    "peaks": {"window": 100, "min_log10p": 15.0, "merge_gap": 50},
}


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _merge(defaults: Any, user: Any, key: str) -> Any:
    """``user`` over ``defaults``, recursively; unknown keys and wrong types name the key."""
    if isinstance(defaults, dict):
        if user is None:
            return copy.deepcopy(defaults)
        if not isinstance(user, Mapping):
            raise BPNetInputError(f"{key} must be a mapping with keys {', '.join(defaults)}, got {user!r}")
        unknown = [k for k in user if k not in defaults]
        if unknown:
            raise BPNetInputError(f"{key}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(defaults)}")
        return {k: _merge(v, user.get(k), f"{key}.{k}") for k, v in defaults.items()}
    if user is None:
        return copy.deepcopy(defaults)
    if isinstance(defaults, bool) or isinstance(user, bool):
        raise BPNetInputError(f"{key} must be a number, got {user!r}")
    if isinstance(defaults, list):
        if not (isinstance(user, (list, tuple)) and len(user) == len(defaults)
                and all(isinstance(u, int) and not isinstance(u, bool) for u in user)):
            raise BPNetInputError(f"{key} must be a list of {len(defaults)} integers, got {user!r}")
        return list(user)
    if isinstance(defaults, int) and not isinstance(user, int):
        raise BPNetInputError(f"{key} must be an integer, got {user!r}")
    if not isinstance(user, (int, float)):
        raise BPNetInputError(f"{key} must be a number, got {user!r}")
    return type(defaults)(user) if isinstance(defaults, float) else user


def _require(ok: bool, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise BPNetInputError(f"simulation.{key} must be {expected}, got {value!r}")


def resolve_config(user: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``simulation`` config section with defaults filled in and every value checked.

    Raises :class:`BPNetInputError` naming the key (``simulation.<key>``) for an unknown key, a
    wrong type or a value out of range.
    """
    cfg = _merge(DEFAULTS, user, "simulation")
    r = _require
    r(cfg["seed"] >= 0, "seed", "an integer >= 0", cfg["seed"])
    r(cfg["scale"] > 0, "scale", "> 0", cfg["scale"])
    r(MIN_CHROMS <= cfg["num_chroms"] <= len(MM10_AUTOSOMES), "num_chroms",
      f"between {MIN_CHROMS} and {len(MM10_AUTOSOMES)} (chr1..chrN)", cfg["num_chroms"])
    r(cfg["genome_length"] > 0, "genome_length", "> 0 bp", cfg["genome_length"])
    r(0.2 <= cfg["gc_content"] <= 0.8, "gc_content", "between 0.2 and 0.8", cfg["gc_content"])
    r(0 <= cfg["gc_sd"] <= 0.1, "gc_sd", "between 0 and 0.1", cfg["gc_sd"])
    r(0 <= cfg["cpg_depletion"] <= 1, "cpg_depletion", "between 0 and 1", cfg["cpg_depletion"])
    r(cfg["enhancers"] >= 1, "enhancers", "an integer >= 1", cfg["enhancers"])
    r(cfg["isolated_sites"] >= 0, "isolated_sites", "an integer >= 0", cfg["isolated_sites"])
    r(1 <= cfg["motifs_per_enhancer"] <= MAX_STRONG, "motifs_per_enhancer",
      f"between 1 and {MAX_STRONG}", cfg["motifs_per_enhancer"])
    r(0 <= cfg["decoys_per_enhancer"] <= MAX_DECOYS, "decoys_per_enhancer",
      f"between 0 and {MAX_DECOYS}", cfg["decoys_per_enhancer"])
    mix = cfg["motif_mix"]
    r(all(v >= 0 for v in mix.values()) and sum(mix.values()) > 0, "motif_mix",
      "non-negative weights with a positive sum", mix)
    r(0 <= cfg["nanog_pairs"] <= 1, "nanog_pairs", "a share between 0 and 1", cfg["nanog_pairs"])
    lo, hi = cfg["nanog_pair_spacing"]
    r(7 <= lo <= hi <= 100, "nanog_pair_spacing",
      "[min, max] bp between the two Nanog motif starts with 7 <= min <= max <= 100", [lo, hi])
    r(1 <= cfg["motif_sharpness"] <= 10, "motif_sharpness", "between 1 and 10", cfg["motif_sharpness"])
    r(0 <= cfg["decoy_weakening"] <= 1, "decoy_weakening", "between 0 and 1", cfg["decoy_weakening"])
    r(cfg["affinity_temperature"] > 0, "affinity_temperature", "> 0", cfg["affinity_temperature"])
    r(cfg["accessibility_k"] > 0, "accessibility_k", "> 0", cfg["accessibility_k"])
    r(cfg["accessibility_hill"] > 0, "accessibility_hill", "> 0", cfg["accessibility_hill"])
    r(0 < cfg["bound_threshold"] < 1, "bound_threshold", "between 0 and 1", cfg["bound_threshold"])
    for k, v in cfg["syntax"].items():
        positive = k in ("helical_period", "helical_decay", "oct4sox2_decay")
        r(v > 0 if positive else v >= 0, f"syntax.{k}", "> 0" if positive else ">= 0", v)
    for tf, p in cfg["tfs"].items():
        r(p["depth"] > 0, f"tfs.{tf}.depth", "> 0 reads", p["depth"])
        r(p["kd"] > 0, f"tfs.{tf}.kd", "> 0", p["kd"])
        r(0 <= p["footprint"] <= 100, f"tfs.{tf}.footprint", "between 0 and 100 bp", p["footprint"])
        r(p["sigma"] > 0, f"tfs.{tf}.sigma", "> 0 bp", p["sigma"])
        r(p["background"] >= 0, f"tfs.{tf}.background", ">= 0 reads per bp and strand", p["background"])
    s = cfg["shape"]
    r(0 <= s["broad_fraction"] <= 1, "shape.broad_fraction", "between 0 and 1", s["broad_fraction"])
    r(s["broad_scale"] > 0, "shape.broad_scale", "> 0 bp", s["broad_scale"])
    r(10 <= s["radius"] <= 300, "shape.radius", "between 10 and 300 bp", s["radius"])
    r(cfg["cut_bias_sd"] >= 0, "cut_bias_sd", ">= 0", cfg["cut_bias_sd"])
    o = cfg["open_chromatin"]
    for k in ("tf_reads", "patchcap_reads", "patchcap_background"):
        r(o[k] >= 0, f"open_chromatin.{k}", ">= 0", o[k])
    r(0 < o["width"] <= 100, "open_chromatin.width", "between 0 and 100 bp", o["width"])
    r(cfg["noise"]["dispersion"] > 0, "noise.dispersion", "> 0", cfg["noise"]["dispersion"])
    r(cfg["noise"]["region_cv"] >= 0, "noise.region_cv", ">= 0", cfg["noise"]["region_cv"])
    pk = cfg["peaks"]
    r(1 <= pk["window"] <= 2000, "peaks.window", "between 1 and 2000 bp", pk["window"])
    r(pk["min_log10p"] > 0, "peaks.min_log10p", "> 0", pk["min_log10p"])
    r(pk["merge_gap"] >= 0, "peaks.merge_gap", ">= 0 bp", pk["merge_gap"])
    return cfg


# --------------------------------------------------------------------------------------------
# Motifs
# --------------------------------------------------------------------------------------------


def load_motifs() -> dict[str, np.ndarray]:
    """The five OSKN PFMs ``(width, 4)`` of the package's ``data/oskn_motifs.meme``, keyed by
    :data:`MOTIFS` (read with :func:`bpnet.motifs.read_meme_motifs`)."""
    from bpnet.motifs import read_meme_motifs

    with resources.as_file(resources.files("bpnet").joinpath("data/oskn_motifs.meme")) as path:
        by_id = read_meme_motifs(path)
    return {name: by_id[jaspar_id] for name, jaspar_id in MOTIF_IDS.items()}


def background_probs(gc: float) -> np.ndarray:
    """Base probabilities ``(4,)`` A, C, G, T of a genome with GC content ``gc``."""
    return np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])


def affinity(codes: np.ndarray, pfm: np.ndarray, background: np.ndarray, temperature: float) -> np.ndarray:
    """Relative affinity ``(n,)`` of sequences ``codes`` ``(n, width)`` (motif orientation).

    ``exp(-(LLR_max - LLR) / (temperature * D))``: LLR is the log-odds of the PFM against the
    background (pseudocount 0.001), so the consensus has affinity 1; ``D`` is the mean deficit
    ``LLR_max - LLR`` of sequences drawn from the PFM, so a typical PFM sample has affinity about
    ``exp(-1 / temperature)`` whatever the motif's length and information content.
    """
    logodds = np.log((pfm + 1e-3) / (1 + 4e-3)) - np.log(background)[None, :]
    deficit_per_base = logodds.max(axis=1, keepdims=True) - logodds
    mean_deficit = float((pfm / pfm.sum(axis=1, keepdims=True) * deficit_per_base).sum())
    deficit = deficit_per_base[np.arange(pfm.shape[0])[None, :], codes].sum(axis=1)
    return np.exp(-deficit / (temperature * mean_deficit))


def sample_pwm(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """``n`` sequences ``(n, width)`` uint8 codes drawn column by column from ``probs`` ``(width, 4)``."""
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random((n, probs.shape[0]))
    return np.minimum((u[:, :, None] > cum[None, :, :]).sum(axis=2), 3).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Genome
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Loci and planted motif instances
# --------------------------------------------------------------------------------------------


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


def plant_instances(rng: np.random.Generator, seq: np.ndarray, starts: np.ndarray, inst: pd.DataFrame,
                    pfms: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    """Sample each instance from its PWM and write it into ``seq``.

    Strong instances are drawn from the PFM raised to ``motif_sharpness`` (renormalised per
    column: instances near the consensus, motifs a CNN learns from a few thousand windows);
    decoys from the PFM mixed with background (``decoy_weakening``).

    ``starts`` ``(n,)`` are global start positions. Returns the affinity ``(n,)`` of every planted
    sequence (against the intended motif, read in the motif's orientation).
    """
    bg = background_probs(cfg["gc_content"])
    aff = np.zeros(len(inst))
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
            oriented = np.where(minus[rows, None], (3 - codes)[:, ::-1], codes)
            seq[starts[rows, None] + np.arange(pfm.shape[0])[None, :]] = oriented
    return aff


# --------------------------------------------------------------------------------------------
# Binding: accessibility, syntax, occupancy
# --------------------------------------------------------------------------------------------


def helical(d: np.ndarray, period: float, decay: float) -> np.ndarray:
    """Helical-phase partner weight ``exp(-d / decay) * (1 + cos(2 pi d / period)) / 2``."""
    return np.exp(-d / decay) * (1 + np.cos(2 * np.pi * d / period)) / 2


def occupancy(locus: np.ndarray, center: np.ndarray, motif: np.ndarray, aff: np.ndarray,
              cfg: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-TF occupancy of every instance, from the motifs of its locus alone.

    Args:
        locus: ``(n,)`` locus id of each instance (instances of a locus interact).
        center: ``(n,)`` motif centre (bp; any origin shared within a locus).
        motif: ``(n,)`` motif index (:data:`MOTIFS`).
        aff: ``(n,)`` affinity in (0, 1].
        cfg: the resolved simulation config.

    Returns:
        ``(occ, access)``: occupancy ``(n, len(TFS))`` in [0, 1) and the accessibility ``(n,)``
        of each instance's locus.
    """
    n = len(locus)
    syn = cfg["syntax"]
    loci, inv = np.unique(locus, return_inverse=True)
    # Pad instances into a (loci, k) grid so that all pairs of a locus are one array operation.
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv, minlength=len(loci))
    k = int(counts.max()) if n else 0
    slot = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    grid = np.full((len(loci), k), -1)
    grid[inv[order], slot] = order
    valid = grid >= 0
    g_center = np.where(valid, center[grid], 0.0)
    g_motif = np.where(valid, motif[grid], -1)
    g_aff = np.where(valid, aff[grid], 0.0)
    dist = np.abs(g_center[:, :, None] - g_center[:, None, :])
    partner = valid[:, None, :] & ~np.eye(k, dtype=bool)[None]  # j != i, j real

    def partner_sum(partner_motif: int, weight: np.ndarray) -> np.ndarray:
        ok = partner & (g_motif[:, None, :] == partner_motif)
        return (np.where(ok, g_aff[:, None, :] * weight, 0.0)).sum(axis=2)

    h = helical(dist, syn["helical_period"], syn["helical_decay"])
    boost_nanog = 1 + syn["nanog_nanog"] * partner_sum(NANOG, h) + syn["nanog_sox2"] * partner_sum(SOX2, h)
    boost_os = 1 + syn["oct4sox2"] * partner_sum(OS, np.exp(-dist / syn["oct4sox2_decay"]))

    # Accessibility: collaborative opening by the summed affinity of the locus' motifs.
    total = g_aff.sum(axis=1)
    hill, kacc = cfg["accessibility_hill"], cfg["accessibility_k"]
    access_locus = total**hill / (total**hill + kacc**hill)

    w = SPECIFICITY[:, g_motif.clip(0)] * g_aff[None]  # (TF, loci, k)
    w[T_NANOG] *= boost_nanog * boost_os
    w[T_KLF4] *= boost_os
    kd = np.array([cfg["tfs"][t]["kd"] for t in TFS])[:, None, None]
    g_occ = access_locus[None, :, None] * w / (w + kd)

    occ = np.zeros((n, len(TFS)))
    occ[grid[valid]] = g_occ[:, valid].T
    access = access_locus[inv]
    return occ, access


def planted_syntax(cfg: Mapping[str, Any], distances: np.ndarray) -> pd.DataFrame:
    """The planted syntax: what marginalising motif pairs should find (``truth/syntax.tsv.gz``).

    For every ordered pair of motifs (A, B) and every centre-to-centre distance ``d``: A and B,
    each with affinity 1 (the consensus), alone in a locus, against each of them alone. Per TF,
    ``log2fc_a = log2(occupancy at A with B / at A alone)`` and ``log2fc_b`` likewise at B; the
    read count at a site is ``depth * occupancy``, so these are the noise-free fold changes of
    the reads at A and at B. NaN where the TF does not bind the motif.

    Returns columns motif_a, motif_b, distance, task, log2fc_a, log2fc_b.
    """
    d = np.asarray(distances, dtype=np.float64)
    k = len(MOTIFS)
    a, b = np.repeat(np.arange(k), k), np.tile(np.arange(k), k)
    # One locus per (pair, distance) with A at 0 and B at d, plus one locus per lone motif.
    n_pair = len(a) * len(d)
    locus = np.r_[np.repeat(np.arange(n_pair), 2), n_pair + np.arange(k)]
    center = np.r_[np.column_stack([np.zeros(n_pair), np.tile(d, len(a))]).ravel(), np.zeros(k)]
    motif = np.r_[np.column_stack([np.repeat(a, len(d)), np.repeat(b, len(d))]).ravel(), np.arange(k)]
    occ, _ = occupancy(locus, center, motif, np.ones(len(locus)), cfg)
    alone = occ[2 * n_pair:]  # (motif, TF)
    at_a, at_b = occ[: 2 * n_pair: 2], occ[1: 2 * n_pair: 2]  # (pair x distance, TF)
    with np.errstate(divide="ignore", invalid="ignore"):
        fc_a = np.log2(at_a / alone[np.repeat(a, len(d))])
        fc_b = np.log2(at_b / alone[np.repeat(b, len(d))])
    fc_a[~np.isfinite(fc_a)] = np.nan
    fc_b[~np.isfinite(fc_b)] = np.nan
    n_tf = len(TFS)
    return pd.DataFrame({
        "motif_a": np.repeat(np.array(MOTIFS)[a], len(d) * n_tf),
        "motif_b": np.repeat(np.array(MOTIFS)[b], len(d) * n_tf),
        "distance": np.tile(np.repeat(d.astype(np.int64), n_tf), len(a)),
        "task": np.tile(np.array(TFS), n_pair),
        "log2fc_a": fc_a.ravel(), "log2fc_b": fc_b.ravel(),
    })


# --------------------------------------------------------------------------------------------
# Signal: profiles, cut bias, open chromatin
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Peak calling
# --------------------------------------------------------------------------------------------


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
    from scipy.special import gammaln
    from scipy.stats import poisson

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
    from scipy.stats import poisson

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


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def write_fasta(path: Path, sizes: Mapping[str, int], seq: np.ndarray) -> None:
    """Write the genome ``seq`` (global codes) as FASTA with 60 bp lines, plus ``path.fai``."""
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    fai = []
    offset = 0
    with open(path, "wb") as fh:
        start = 0
        for chrom, length in sizes.items():
            header = f">{chrom}\n".encode()
            fh.write(header)
            offset += len(header)
            fai.append(f"{chrom}\t{length}\t{offset}\t{FASTA_LINE}\t{FASTA_LINE + 1}\n")
            chars = letters[seq[start:start + length]]
            n_full = length // FASTA_LINE
            body = np.empty((n_full, FASTA_LINE + 1), dtype=np.uint8)
            body[:, :FASTA_LINE] = chars[: n_full * FASTA_LINE].reshape(n_full, FASTA_LINE)
            body[:, FASTA_LINE] = ord("\n")
            data = body.tobytes()
            if length % FASTA_LINE:
                data += chars[n_full * FASTA_LINE:].tobytes() + b"\n"
            fh.write(data)
            offset += len(data)
            start += length
    Path(f"{path}.fai").write_text("".join(fai))


def write_gzip_table(path: Path, table: pd.DataFrame, header: bool) -> None:
    """Tab-separated ``table`` gzipped with mtime 0 and no file name, so bytes are reproducible."""
    text = table.to_csv(sep="\t", index=False, header=header, lineterminator="\n")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.encode())


class _SparseTrack(Mapping):
    """``{chrom: dense values}`` built on demand from a sparse global track plus a constant.

    :func:`bpnet.io.tracks.write_bigwig` walks chromosomes in order, so only one dense chromosome
    is in memory at a time.
    """

    def __init__(self, sizes: Mapping[str, int], pos: np.ndarray, vals: np.ndarray,
                 constant: float = 0.0, dtype=np.float64):
        self.sizes = dict(sizes)
        self.offsets = dict(zip(sizes, np.concatenate([[0], np.cumsum(list(sizes.values()))[:-1]])))
        self.pos, self.vals, self.constant, self.dtype = pos, vals, constant, dtype

    def __getitem__(self, chrom: str) -> np.ndarray:
        off, length = int(self.offsets[chrom]), self.sizes[chrom]
        lo, hi = np.searchsorted(self.pos, [off, off + length])
        dense = np.full(length, self.constant, dtype=self.dtype)
        dense[self.pos[lo:hi] - off] += self.vals[lo:hi].astype(self.dtype)
        return dense

    def __iter__(self):
        return iter(self.sizes)

    def __len__(self) -> int:
        return len(self.sizes)


# --------------------------------------------------------------------------------------------
# The whole simulation
# --------------------------------------------------------------------------------------------


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


@dataclass
class Planted:
    """The loci and their motif instances.

    Attributes:
        centers: ``(n_loci,)`` global locus centres, in genome order.
        access: ``(n_loci,)`` accessibility of each locus.
        instances: one row per instance (genome order): locus, gstart, gcenter (global), width,
            motif, kind (indices into :data:`MOTIFS` / :data:`KINDS`), strand (+1/-1), affinity.
        occ: ``(n_instances, len(TFS))`` occupancy.
    """

    centers: np.ndarray
    access: np.ndarray
    instances: pd.DataFrame
    occ: np.ndarray


def output_paths(outdir: str | Path) -> dict[str, Path]:
    """Every file :func:`simulate` writes, keyed by a short name."""
    out = Path(outdir)
    paths = {
        "fasta": out / "genome.fa",
        "fai": out / "genome.fa.fai",
        "chrom_sizes": out / "genome.chrom.sizes",
        "instances": out / "truth" / "instances.tsv.gz",
        "syntax": out / "truth" / "syntax.tsv.gz",
    }
    for tf in TFS + (CONTROL,):
        for s in STRANDS:
            paths[f"{tf}.counts.{s}"] = out / "chip-nexus" / tf / f"counts.{s}.bw"
    for tf in TFS:
        paths[f"{tf}.peaks"] = out / "chip-nexus" / tf / "idr-optimal-set.narrowPeak.gz"
        for s in STRANDS:
            paths[f"{tf}.expected.{s}"] = out / "truth" / tf / f"expected.{s}.bw"
    return paths


def make_genome(cfg: Mapping[str, Any], rng: np.random.Generator, log: logging.Logger | None = None) -> Genome:
    """Chromosome sizes and background sequence (no motifs planted yet); ``log``: progress lines."""
    sizes = chrom_sizes_for(cfg)
    parts = []
    with progress_bar(log, len(sizes), "simulate genome", unit="chrom") as bar:
        for length in sizes.values():
            parts.append(background_sequence(rng, length, cfg["gc_content"], cfg["gc_sd"], cfg["cpg_depletion"]))
            bar.update(1)
    return Genome(sizes, np.concatenate(parts))


def plant_loci(cfg: Mapping[str, Any], genome: Genome, rng_loci: np.random.Generator,
               rng_motifs: np.random.Generator) -> Planted:
    """Place enhancers and isolated sites, plant their motifs into ``genome.seq``, bind TFs."""
    n_enh = max(1, int(round(cfg["enhancers"] * cfg["scale"])))
    n_iso = int(round(cfg["isolated_sites"] * cfg["scale"]))
    n_loci = n_enh + n_iso
    centers = place_loci(rng_loci, genome.sizes, n_loci)
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
    inst["affinity"] = plant_instances(rng_motifs, genome.seq, inst["gstart"].to_numpy(), inst, pfms, cfg)
    occ, inst_access = occupancy(inst["locus"].to_numpy(), inst["gcenter"].to_numpy(),
                                 inst["motif"].to_numpy(), inst["affinity"].to_numpy(), cfg)
    access = np.zeros(n_loci)
    access[inst["locus"].to_numpy()] = inst_access
    return Planted(centers, access, inst.drop(columns="offset"), occ)


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


def truth_table(cfg: Mapping[str, Any], genome: Genome, planted: Planted) -> pd.DataFrame:
    """One row per planted instance: where, which motif, how strong, how bound.

    Columns: chrom, start, end (0-based half-open), center, strand (+/-), motif, kind (strong,
    decoy, pair = member of a planted Nanog pair, isolated), locus, affinity, accessibility,
    occupancy_<TF>, reads_<TF> (expected reads, both strands), bound (any TF's occupancy >=
    bound_threshold), bound_tfs (comma-joined).
    """
    inst, occ = planted.instances, planted.occ
    chrom, start = genome.to_local(inst["gstart"].to_numpy())
    bound = occ >= cfg["bound_threshold"]
    return pd.DataFrame({
        "chrom": chrom,
        "start": start,
        "end": start + inst["width"].to_numpy(),
        "center": start + (inst["width"].to_numpy() - 1) / 2,
        "strand": np.where(inst["strand"].to_numpy() > 0, "+", "-"),
        "motif": np.array(MOTIFS)[inst["motif"].to_numpy()],
        "kind": np.array(KINDS)[inst["kind"].to_numpy()],
        "locus": inst["locus"].to_numpy(),
        "affinity": np.round(inst["affinity"].to_numpy(), 5),
        "accessibility": np.round(planted.access[inst["locus"].to_numpy()], 5),
        **{f"occupancy_{tf}": np.round(occ[:, t], 5) for t, tf in enumerate(TFS)},
        **{f"reads_{tf}": np.round(cfg["tfs"][tf]["depth"] * occ[:, t], 2) for t, tf in enumerate(TFS)},
        "bound": bound.any(axis=1),
        "bound_tfs": [",".join(np.array(TFS)[b]) for b in bound],
    })


def _write_bigwigs(jobs: list[tuple[Path, Mapping[str, np.ndarray]]], sizes: Mapping[str, int],
                   threads: int, progress=None) -> None:
    """Write ``(path, tracks)`` bigWigs, in ``threads`` processes (writing dominates the run time).

    Each file's bytes depend only on its own track, so the output is the same for any ``threads``.
    ``progress``: optional object with ``update(1)`` per file written (in the order of ``jobs``).
    """
    def done() -> None:
        if progress is not None:
            progress.update(1)

    if threads <= 1:
        for path, track in jobs:
            write_bigwig(path, sizes, track)
            done()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=threads, mp_context=ctx) as pool:
        for future in [pool.submit(write_bigwig, path, sizes, track) for path, track in jobs]:
            future.result()
            done()


def write_dataset(paths: Mapping[str, Path], genome: Genome, expected: Mapping, observed: Mapping,
                  peak_tables: Mapping[str, pd.DataFrame], truth: pd.DataFrame, syntax: pd.DataFrame,
                  threads: int = 1, log: logging.Logger | None = None) -> None:
    """Write every output file (:func:`output_paths`); ``log``: progress lines (one unit per file)."""
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    # FASTA (with its index) and chrom sizes, the bigWigs, the peak files, the two truth tables
    n_files = 2 + len(observed) + len(expected) + len(peak_tables) + 2
    with progress_bar(log, n_files, "write dataset", unit="file") as bar:
        write_fasta(paths["fasta"], genome.sizes, genome.seq)
        paths["chrom_sizes"].write_text("".join(f"{c}\t{n}\n" for c, n in genome.sizes.items()))
        bar.update(2)
        sizes = genome.sizes
        jobs = [(paths[f"{name.replace('.', '.counts.')}"], _SparseTrack(sizes, pos, cnt, 0, np.int64))
                for name, (pos, cnt) in observed.items()]
        jobs += [(paths[f"{name.replace('.', '.expected.')}"],
                  _SparseTrack(sizes, pos, vals.astype(np.float32), np.float32(bg), np.float32))
                 for name, (pos, vals, bg) in expected.items()]
        _write_bigwigs(jobs, sizes, threads, bar)
        for tf, table in peak_tables.items():
            write_gzip_table(paths[f"{tf}.peaks"], table, header=False)
            bar.update(1)
        write_gzip_table(paths["instances"], truth, header=True)
        write_gzip_table(paths["syntax"], syntax.round(5), header=True)
        bar.update(2)


def simulate(user_cfg: Mapping[str, Any] | None, outdir: str | Path,
             log: logging.Logger | None = None, threads: int = 1) -> dict[str, Any]:
    """Generate the dataset into ``outdir`` (layout in the module docstring).

    Args:
        user_cfg: the ``simulation`` config section (defaults fill missing keys).
        outdir: output directory (created).
        log: optional logger for progress and summary figures.
        threads: processes that write the bigWigs (the output does not depend on it).

    Returns:
        A summary dict: per TF ``peaks`` (number), ``reads_per_peak`` (median two-strand reads in
        the 1 kb window at each summit), ``false_peak_share`` (summit > 50 bp from every bound
        site of the TF), ``missed_share`` (bound sites of the TF outside all its peaks);
        ``oracle`` (DataFrame of :func:`oracle_check`), ``seconds`` (generation and writing),
        ``config`` (resolved), ``truth`` and ``peak_tables`` (the written tables).
    """
    t0 = time.perf_counter()
    log = log or logging.getLogger("bpnet.simulate")
    cfg = resolve_config(user_cfg)
    rng_genome, rng_loci, rng_motifs, rng_bias, rng_noise, rng_control = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg["seed"]).spawn(6)
    )
    genome = make_genome(cfg, rng_genome, log)
    planted = plant_loci(cfg, genome, rng_loci, rng_motifs)
    expected, observed = signal_tracks(cfg, genome, planted, rng_bias, rng_noise, rng_control, log)
    peak_tables = call_all_peaks(cfg, genome, observed, log)
    truth = truth_table(cfg, genome, planted)
    syntax = planted_syntax(cfg, np.arange(1, SYNTAX_MAX_BP + 1))
    write_dataset(output_paths(outdir), genome, expected, observed, peak_tables, truth, syntax, threads, log)
    seconds = time.perf_counter() - t0

    summary = summarize(truth, peak_tables, observed, genome.sizes, cfg["bound_threshold"])
    summary["oracle"] = oracle_check(observed, expected, peak_tables, genome.sizes)
    summary.update(seconds=seconds, config=cfg, truth=truth, peak_tables=peak_tables)
    is_enh = truth.groupby("locus")["kind"].agg(lambda k: (k != "isolated").any())
    log.info("simulated %d chromosomes (%.1f Mb), %d enhancers, %d isolated sites, %d motif "
             "instances (%d bound) in %.1f s", len(genome.sizes), genome.length / 1e6,
             int(is_enh.sum()), int((~is_enh).sum()), len(truth), int(truth["bound"].sum()), seconds)
    for tf in TFS:
        log.info("%-5s %5d peaks, median %5.0f reads per peak window, %4.1f%% of peaks not near a "
                 "bound site, %4.1f%% of bound sites without a peak", tf, summary["peaks"][tf],
                 summary["reads_per_peak"][tf], 100 * summary["false_peak_share"][tf],
                 100 * summary["missed_share"][tf])
    for row in summary["oracle"].itertuples():
        log.info("oracle on %d test windows (%s), %-5s: count Pearson %.3f, Spearman %.3f; profile "
                 "auPRC (binsize 1, %d regions) %.3f", row.windows, ",".join(TEST_CHROMS), row.task,
                 row.count_pearson, row.count_spearman, row.auprc_regions, row.auprc)
    return summary


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
    from bpnet.steps.metrics import count_metrics, profile_auprc, profile_to_probs

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


def main(smk: Any, log: logging.Logger) -> None:
    """Rule ``simulate_dataset``: params.simulation -> the dataset under the outputs' directory."""
    outdir = Path(smk.output.fasta).parent
    simulate(dict(smk.params.simulation), outdir, log, threads=max(1, int(smk.threads)))
    written = {str(p) for p in output_paths(outdir).values()}
    missing = [str(p) for p in smk.output if str(Path(p)) not in written]
    if missing:
        raise RuntimeError(f"rule outputs not written by bpnet.simulate: {missing}")
