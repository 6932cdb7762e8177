"""Motif instances by CWM scanning (rule ``motif_instances``).

**CWM scanning** (:func:`scan_cwms`, the BPNet paper's instance calling): every trimmed CWM (and its
reverse complement) is slid over the contribution scores of the observed bases (``hyp * one-hot``,
``(L, 4)`` per window). At each offset the *match* is the cosine similarity between the CWM and
the contribution window, the *contrib* the window's total contribution. Both are turned into
quantiles of the same scores of the pattern's own seqlets; an instance is called where the match
quantile reaches ``scan.match_quantile`` and the contrib quantile ``scan.contrib_quantile``, keeping
the best-scoring offset within a motif width (non-maximum suppression). Hits in the overlap of two
windows are kept from the window whose centre is nearer (as for the tracks).

The rule (:func:`call_instances`) scans the positive patterns of every task
(:mod:`bpnet.interpret.modisco`) and writes ``instances.tsv`` (one row per instance, with the
known motif its pattern resembles) and ``motifs.tsv`` (the patterns of all tasks).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bpnet.interpret.contributions import load_contributions
from bpnet.interpret.meme import read_meme_motifs, resolve_known_motifs, reverse_complement_matrix
from bpnet.interpret.modisco import Pattern, best_matches, pattern_table, read_modisco_h5, similarity_table
from bpnet.progress import progress_bar
from bpnet.steps.export import owned_intervals

# --------------------------------------------------------------------------------------------
# CWM scanning
# --------------------------------------------------------------------------------------------


def _scores(contrib, cwm: np.ndarray):
    """Match (cosine) and window sum of ``contrib`` ``(M, L, 4)`` against ``cwm`` ``(w, 4)`` and its
    reverse complement: two ``(M, 2, L - w + 1)`` tensors (orientation 0 = +, 1 = -)."""
    x = torch.as_tensor(contrib, dtype=torch.float32).transpose(1, 2)  # (M, 4, L)
    w = len(cwm)
    kernels = np.stack([cwm, reverse_complement_matrix(cwm)])  # (2, w, 4)
    kernels = kernels / np.linalg.norm(kernels.reshape(2, -1), axis=1)[:, None, None]
    weight = torch.as_tensor(np.ascontiguousarray(kernels.transpose(0, 2, 1)), dtype=torch.float32)
    dot = F.conv1d(x, weight)  # (M, 2, L - w + 1)
    ones = torch.ones((1, 4, w))
    norm = F.conv1d(x * x, ones).clamp_min(1e-20).sqrt()
    total = F.conv1d(x, ones)
    return dot / norm, total.expand_as(dot)


def seqlet_scores(pattern: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """Match and contrib scores ``(n_seqlets,)`` of the pattern's own (aligned) seqlets."""
    s = pattern.seqlet_contrib.astype(np.float64)
    c = pattern.cwm / np.linalg.norm(pattern.cwm)
    norms = np.sqrt((s * s).sum(axis=(1, 2))).clip(1e-20)
    return (s * c[None]).sum(axis=(1, 2)) / norms, s.sum(axis=(1, 2))


def _quantile(sorted_ref: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fraction of ``sorted_ref`` at or below each value."""
    return np.searchsorted(sorted_ref, values, side="right") / max(len(sorted_ref), 1)


def scan_cwms(contrib: np.ndarray, patterns: Sequence[Pattern], match_quantile: float = 0.1,
              contrib_quantile: float = 0.1, batch: int = 512, progress=None) -> pd.DataFrame:
    """Call motif instances in contribution scores by CWM scanning (see module doc).

    Args:
        contrib: ``(M, L, 4)`` contributions of the observed bases (``hyp * one-hot``).
        patterns: trimmed patterns (their seqlets set the score scales).
        match_quantile, contrib_quantile: minimal quantiles (among the pattern's seqlets) of an
            instance's match and contribution scores.
        progress: optional object with ``update(n)``, advanced by the windows scanned with each
            pattern (``M * len(patterns)`` in all; a pattern that cannot match counts as scanned).

    Returns:
        DataFrame with one row per instance: ``window`` (row of ``contrib``), ``pos`` (start in the
        window), ``end``, ``strand`` (``+``: the pattern's orientation), ``pattern``, ``task``,
        ``match``, ``contrib``, ``match_quantile``, ``contrib_quantile``.
    """
    cols = ["window", "pos", "end", "strand", "pattern", "task", "match", "contrib", "match_quantile",
            "contrib_quantile"]
    parts = []
    for p in patterns:
        if p.n_seqlets == 0 or p.width > contrib.shape[1]:
            if progress is not None:
                progress.update(len(contrib))
            continue
        ref_match, ref_contrib = (np.sort(a) for a in seqlet_scores(p))
        thr_match = np.quantile(ref_match, match_quantile)
        thr_contrib = np.quantile(ref_contrib, contrib_quantile)
        half = p.width // 2
        for lo in range(0, len(contrib), batch):
            match, total = _scores(contrib[lo:lo + batch], p.cwm)
            best_match, orient = match.max(dim=1)  # (m, L - w + 1)
            tot = total[:, 0]
            ok = (best_match >= thr_match) & (tot >= thr_contrib)
            # Non-maximum suppression: keep an offset if no passing offset within half a motif
            # width has a larger contribution.
            score = torch.where(ok, tot, torch.full_like(tot, -np.inf))
            pooled = F.max_pool1d(score[:, None], 2 * half + 1, stride=1, padding=half)[:, 0]
            keep = ok & (score >= pooled)
            rows, pos = (t.numpy() for t in torch.nonzero(keep, as_tuple=True))
            if progress is not None:
                progress.update(len(best_match))
            if len(rows) == 0:
                continue
            m = best_match[rows, pos].numpy().astype(np.float64)
            c = tot[rows, pos].numpy().astype(np.float64)
            parts.append(pd.DataFrame({
                "window": rows + lo, "pos": pos, "end": pos + p.width,
                "strand": np.where(orient[rows, pos].numpy() == 0, "+", "-"), "pattern": p.name, "task": p.task,
                "match": np.round(m, 4), "contrib": np.round(c, 6),
                "match_quantile": np.round(_quantile(ref_match, m), 4),
                "contrib_quantile": np.round(_quantile(ref_contrib, c), 4),
            }))
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def locate_instances(hits: pd.DataFrame, chrom: np.ndarray, start: np.ndarray, width: int) -> pd.DataFrame:
    """Genomic coordinates of scanned hits; a hit in the overlap of windows is kept once.

    Args:
        hits: :func:`scan_cwms` output (``window`` indexes ``chrom`` / ``start``).
        chrom, start: ``(M,)`` window chromosome and start.

    Returns:
        ``hits`` with ``chrom``, ``start``, ``end`` (genomic, 0-based half-open) in front, without
        hits whose centre lies outside the part of their window nearest to its centre
        (:func:`bpnet.steps.export.owned_intervals`), sorted by chrom, start, pattern.
    """
    chrom = np.asarray(chrom).astype(str)
    start = np.asarray(start, dtype=np.int64)
    lo = np.empty(len(start), dtype=np.int64)
    hi = np.empty(len(start), dtype=np.int64)
    for c in np.unique(chrom):
        idx = np.flatnonzero(chrom == c)
        order = idx[np.argsort(start[idx], kind="stable")]
        lo[order], hi[order] = owned_intervals(start[order], width)
    w = hits["window"].to_numpy(dtype=np.int64)
    g_start = start[w] + hits["pos"].to_numpy(dtype=np.int64)
    g_end = start[w] + hits["end"].to_numpy(dtype=np.int64)
    centre = (g_start + g_end) // 2
    keep = (centre >= lo[w]) & (centre < hi[w])
    out = hits.drop(columns=["pos", "end"]).assign(chrom=chrom[w], start=g_start, end=g_end)[keep]
    front = ["chrom", "start", "end", "strand", "pattern", "task"]
    out = out[front + [c for c in out.columns if c not in front]]
    return out.sort_values(["chrom", "start", "pattern"], kind="stable").reset_index(drop=True)



# --------------------------------------------------------------------------------------------
# Rule motif_instances
# --------------------------------------------------------------------------------------------


def call_instances(
    contrib_path: str | Path,
    modisco_h5: Mapping[str, str | Path],
    known_motifs_path: str | Path,
    instances_path: str | Path,
    motifs_path: str | Path,
    interpretation: Mapping[str, Any],
    log: logging.Logger = logging.getLogger(__name__),
) -> pd.DataFrame:
    """Rule ``motif_instances``: CWM scanning of every task's patterns -> instances.tsv, motifs.tsv.

    Args:
        contrib_path: contrib.npz of rule contrib_scores.
        modisco_h5: ``{task: modisco.h5}`` of rule motif_discovery, in task order.
        known_motifs_path: MEME file of the known motifs (``interpretation.motifs`` names them).
        instances_path: the instances (chrom, start, end, strand, pattern, task, scores,
            ``window_index``, the known ``motif`` of the pattern and its ``similarity``).
        motifs_path: the patterns of all tasks (:func:`bpnet.interpret.modisco.pattern_table`).
        interpretation: the config's ``interpretation`` section (``scan``, ``modisco.head``,
            ``modisco.trim_threshold``, ``motifs``).

    Returns the instances written to ``instances_path``.
    """
    cfg = interpretation
    scfg, mcfg = cfg["scan"], cfg["modisco"]
    c = load_contributions(contrib_path)
    known = resolve_known_motifs(read_meme_motifs(known_motifs_path), cfg["motifs"], known_motifs_path)
    one_hot = c.one_hot()
    located, tables = [], []
    per_task = [(task, [p for p in read_modisco_h5(h5, task, float(mcfg["trim_threshold"])) if p.metacluster == "pos"])
                for task, h5 in modisco_h5.items()]
    n_scans = len(c.index) * sum(len(patterns) for _, patterns in per_task)
    with progress_bar(log, n_scans, "CWM scanning", unit="window-pattern") as bar:
        for task, patterns in per_task:
            matches = best_matches(similarity_table(patterns, known), float(scfg["min_similarity"]))
            tables.append(pattern_table(patterns, matches))
            contrib = c.hyp(task, mcfg["head"]) * one_hot
            hits = scan_cwms(contrib, patterns, float(scfg["match_quantile"]), float(scfg["contrib_quantile"]),
                             progress=bar)
            hits = locate_instances(hits, c.chrom, c.start, c.sequence.shape[1])
            hits["window_index"] = c.index[hits.pop("window").to_numpy(dtype=np.int64)]
            hits = hits.merge(matches[["pattern", "motif", "similarity"]], on="pattern", how="left")
            log.info("%s: %d instances of %d positive patterns in %d windows", task, len(hits), len(patterns),
                     len(c.index))
            located.append(hits)
    instances = pd.concat(located, ignore_index=True).sort_values(["chrom", "start", "pattern"], kind="stable")
    instances["motif"] = instances["motif"].fillna("")
    instances.to_csv(instances_path, sep="\t", index=False)
    pd.concat(tables, ignore_index=True).to_csv(motifs_path, sep="\t", index=False)
    log.info("wrote %d instances to %s", len(instances), instances_path)
    return instances
