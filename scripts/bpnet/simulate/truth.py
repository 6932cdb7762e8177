"""The ground truth: every planted motif instance (``truth/instances.tsv.gz``) and the planted
syntax, the effect of every motif pair against distance (``truth/syntax.tsv.gz``)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from bpnet.simulate.binding import TFS, occupancy
from bpnet.simulate.genome import Genome
from bpnet.simulate.loci import KINDS, Planted
from bpnet.simulate.motifs import MOTIFS

SYNTAX_MAX_BP = 500  # truth/syntax.tsv.gz covers motif distances 1..500 bp (half a 1 kb window)


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
