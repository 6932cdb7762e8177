"""Motif discovery (TF-MoDISco lite), MEME files, logos, CWM scanning and similarity to known motifs.

Rules ``motif_discovery`` (one job per task) and ``motif_instances``.

**Discovery.** :func:`run_modisco` runs ``modiscolite.tfmodisco.TFMoDISco`` on the one-hot windows
and the hypothetical contributions of one task and head (``interpretation.modisco.head``,
default the profile head, as in the paper), cropped to the central ``modisco.window`` bp where the
summit-centred windows hold their motifs. Its result is saved with modisco-lite's own writer
(``modisco.h5``). Each pattern is then trimmed to the positions whose total absolute contribution
reaches ``trim_threshold`` x its maximum (modisco-lite's report does the same) and written as

- ``motifs.meme``: position frequency matrices (PFMs, MEME minimal format),
- ``cwms.meme``: contribution weight matrices (CWMs: the mean contribution per position and base
  of the pattern's seqlets) in the same layout (values are contributions, not probabilities, as in
  ``modisco meme -t CWM``),
- ``logos/{pattern}.png``: the CWM logo above the PFM's information-content logo (logomaker),
- ``patterns.tsv``: one row per pattern (seqlets, width, consensus, best known motif).

**Similarity to a known motif** (:func:`motif_similarity`), TOMTOM-like: both PFMs are weighted
by their per-position information content (bits against a uniform background), the discovered
motif is slid along the known one in both orientations, and at every offset with at least
``min(4, widths)`` overlapping columns the **Pearson correlation** of the two flattened weighted
matrices is computed over the union of their columns (a column outside a motif counts as zero,
i.e. no information, so unmatched informative columns lower the score). The similarity is the
maximum over offsets and orientations: 1 for identical motifs, about 0 or below for unrelated ones.

**CWM scanning** (:func:`scan_cwms`, the BPNet paper's instance calling): every trimmed CWM (and its
reverse complement) is slid over the contribution scores of the observed bases (``hyp * one-hot``,
``(L, 4)`` per window). At each offset the *match* is the cosine similarity between the CWM and
the contribution window, the *contrib* the window's total contribution. Both are turned into
quantiles of the same scores of the pattern's own seqlets; an instance is called where the match
quantile reaches ``scan.match_quantile`` and the contrib quantile ``scan.contrib_quantile``, keeping
the best-scoring offset within a motif width (non-maximum suppression). Hits in the overlap of two
windows are kept from the window whose centre is nearer (as for the tracks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bpnet.errors import BPNetInputError
from bpnet.progress import heartbeat, progress_bar

ALPHABET = "ACGT"
PSEUDOCOUNT = 1e-3  # added to PFMs before logs (information content)


# --------------------------------------------------------------------------------------------
# Motif matrices
# --------------------------------------------------------------------------------------------


def read_meme_motifs(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MEME file into ``{name: PFM (width, 4)}`` (A, C, G, T), in file order.

    ``name`` is the MOTIF line's identifier (e.g. ``MA0142.1``); the alternate name (e.g.
    ``Pou5f1::Sox2``), when present, is a second key for the same matrix. Parsing uses memelite's
    reader; a missing file, a file without motifs or rows that are not probabilities are errors.
    """
    from memelite.io import read_meme

    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"motif file {path} does not exist")
    try:
        raw = read_meme(str(path))
    except (ValueError, AttributeError, IndexError) as err:
        raise BPNetInputError(f"cannot read {path} as a MEME motif file: {err}") from err
    if not raw:
        raise BPNetInputError(f"motif file {path} holds no motif (expected MEME format: MOTIF lines "
                              "followed by a 'letter-probability matrix' block)")
    motifs: dict[str, np.ndarray] = {}
    for key, pwm in raw.items():
        pfm = np.asarray(pwm, dtype=np.float64).T  # memelite gives (4, width)
        if pfm.shape[1] != 4 or np.any(pfm < 0) or not np.allclose(pfm.sum(axis=1), 1, atol=0.02):
            raise BPNetInputError(
                f"{path}, motif {key!r}: expected rows of 4 probabilities (A, C, G, T) summing to 1"
            )
        for name in key.split(" ")[:2]:
            motifs.setdefault(name, pfm)
    return motifs


def resolve_known_motifs(meme: Mapping[str, np.ndarray], labels: Mapping[str, str], path: str) -> dict[str, np.ndarray]:
    """``{label: PFM}`` for the ``interpretation.motifs`` mapping ``label -> motif id or name``."""
    out = {}
    for label, name in labels.items():
        if name not in meme:
            raise BPNetInputError(
                f"config key interpretation.motifs.{label}: motif {name!r} is not in {path} "
                f"(it has {', '.join(list(meme)[:10])})"
            )
        out[label] = meme[name]
    if not out:
        raise BPNetInputError("config key interpretation.motifs: name at least one known motif")
    return out


def information_content(pfm: np.ndarray) -> np.ndarray:
    """Bits per position ``(width,)`` of a PFM ``(width, 4)`` against a uniform background."""
    p = pfm + PSEUDOCOUNT
    p = p / p.sum(axis=1, keepdims=True)
    return 2.0 + (p * np.log2(p)).sum(axis=1)


def ic_weighted(pfm: np.ndarray) -> np.ndarray:
    """The PFM ``(width, 4)`` with every row scaled by its information content (a logo's heights)."""
    return pfm * information_content(pfm)[:, None]


def reverse_complement_matrix(m: np.ndarray) -> np.ndarray:
    """Reverse complement of a ``(width, 4)`` A, C, G, T matrix."""
    return m[::-1, ::-1]


def consensus(pfm: np.ndarray) -> str:
    """The most likely base at each position."""
    return "".join(np.array(list(ALPHABET))[np.argmax(pfm, axis=1)])


def motif_similarity(query: np.ndarray, target: np.ndarray) -> tuple[float, int, str]:
    """Similarity of two PFMs ``(w, 4)``: max Pearson correlation of IC-weighted matrices (see module doc).

    Returns:
        ``(similarity, offset, orientation)``: the best score, the column of ``target`` where the
        first column of the (oriented) query lies (may be negative), and ``+`` or ``-`` (the query
        reverse-complemented).
    """
    t = ic_weighted(np.asarray(target, dtype=np.float64))
    wt = len(t)
    best = (-np.inf, 0, "+")
    q_fwd = ic_weighted(np.asarray(query, dtype=np.float64))
    wq = len(q_fwd)
    min_overlap = min(4, wq, wt)
    for orientation, q in (("+", q_fwd), ("-", reverse_complement_matrix(q_fwd))):
        for offset in range(min_overlap - wq, wt - min_overlap + 1):
            lo, hi = min(0, offset), max(wt, offset + wq)
            a = np.zeros((hi - lo, 4))
            b = np.zeros((hi - lo, 4))
            a[offset - lo:offset - lo + wq] = q
            b[-lo:-lo + wt] = t
            a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
            denom = np.sqrt((a * a).sum() * (b * b).sum())
            r = float((a * b).sum() / denom) if denom > 0 else 0.0
            if r > best[0]:
                best = (r, offset, orientation)
    return best


def similarity_table(patterns: Sequence["Pattern"], known: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Similarity of every pattern to every known motif: columns pattern, task, motif, similarity,
    offset, orientation."""
    rows = []
    for p in patterns:
        for label, pfm in known.items():
            sim, offset, orient = motif_similarity(p.pfm, pfm)
            rows.append({"pattern": p.name, "task": p.task, "motif": label, "similarity": round(sim, 4),
                         "offset": offset, "orientation": orient})
    return pd.DataFrame(rows, columns=["pattern", "task", "motif", "similarity", "offset", "orientation"])


def best_matches(similarity: pd.DataFrame, min_similarity: float) -> pd.DataFrame:
    """Per pattern, the most similar known motif; ``motif`` is empty below ``min_similarity``."""
    cols = ["pattern", "best_motif", "similarity", "orientation", "motif"]
    if similarity.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "similarity" else object) for c in cols})
    top = similarity.sort_values(["pattern", "similarity"], ascending=[True, False], kind="stable")
    top = top.groupby("pattern", sort=False).head(1)
    top = top.rename(columns={"motif": "best_motif"})
    top["motif"] = np.where(top["similarity"] >= min_similarity, top["best_motif"], "")
    return top[cols].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# TF-MoDISco
# --------------------------------------------------------------------------------------------

MODISCO_KEYS = (
    "sliding_window_size", "flank_size", "min_metacluster_size", "max_seqlets_per_metacluster",
    "target_seqlet_fdr", "n_leiden_runs", "final_min_cluster_size", "trim_to_window_size",
    "initial_flank_to_add", "final_flank_to_add",
)


def central_slice(length: int, window: int) -> slice:
    """The central ``window`` positions of ``length`` (all of them when ``window >= length``)."""
    window = min(window, length)
    lo = (length - window) // 2
    return slice(lo, lo + window)


def run_modisco(one_hot: np.ndarray, hypothetical: np.ndarray, settings: Mapping, h5_path: str | Path,
                log: logging.Logger | None = None) -> None:
    """Run TF-MoDISco lite and save its result (modisco-lite's h5 layout) to ``h5_path``.

    Args:
        one_hot: ``(N, L, 4)`` windows.
        hypothetical: ``(N, L, 4)`` hypothetical contributions.
        settings: ``interpretation.modisco``; the keys of :data:`MODISCO_KEYS` go to
            ``TFMoDISco`` (everything else at modisco-lite's defaults).
    """
    import modiscolite

    one_hot = np.ascontiguousarray(one_hot, dtype=np.float32)
    hypothetical = np.ascontiguousarray(hypothetical, dtype=np.float32)
    if one_hot.shape != hypothetical.shape or one_hot.ndim != 3 or one_hot.shape[2] != 4:
        raise BPNetInputError(f"modisco: one-hot {one_hot.shape} and contributions {hypothetical.shape} "
                              "must both be (n, length, 4)")
    kwargs = {k: settings[k] for k in MODISCO_KEYS if k in settings}
    pos, neg = modiscolite.tfmodisco.TFMoDISco(one_hot=one_hot, hypothetical_contribs=hypothetical, **kwargs)
    modiscolite.io.save_hdf5(str(h5_path), pos, neg, int(kwargs.get("sliding_window_size", 21)))
    if log is not None:
        log.info("TF-MoDISco found %d positive and %d negative patterns", len(pos or []), len(neg or []))


@dataclass
class Pattern:
    """One TF-MoDISco pattern, trimmed (w = trimmed width).

    Attributes:
        name: ``{task}.{pos|neg}.{i}``.
        pfm, cwm, hcwm: ``(w, 4)`` frequencies, contributions, hypothetical contributions.
        seqlet_contrib: ``(n_seqlets, w, 4)`` the contributions of the pattern's seqlets, aligned.
    """

    name: str
    task: str
    metacluster: str
    pfm: np.ndarray
    cwm: np.ndarray
    hcwm: np.ndarray
    seqlet_contrib: np.ndarray
    trim: tuple[int, int] = (0, 0)
    extra: dict = field(default_factory=dict)

    @property
    def n_seqlets(self) -> int:
        return len(self.seqlet_contrib)

    @property
    def width(self) -> int:
        return len(self.cwm)


def trim_bounds(cwm: np.ndarray, threshold: float) -> tuple[int, int]:
    """``[start, end)`` of the positions from the first to the last whose total |contribution|
    reaches ``threshold`` x the maximum."""
    score = np.abs(cwm).sum(axis=1)
    keep = np.flatnonzero(score >= threshold * score.max()) if score.max() > 0 else np.arange(len(score))
    return int(keep.min()), int(keep.max()) + 1


def read_modisco_h5(path: str | Path, task: str, trim_threshold: float = 0.3) -> list[Pattern]:
    """The patterns of a modisco-lite h5 file, trimmed; positive patterns first."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"TF-MoDISco result {path} does not exist; run rule motif_discovery")
    patterns = []
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise BPNetInputError(f"cannot open {path} as an HDF5 file: {err}") from err
    with f:
        for group, short in (("pos_patterns", "pos"), ("neg_patterns", "neg")):
            if group not in f:
                continue
            names = sorted(f[group].keys(), key=lambda n: int(n.rsplit("_", 1)[-1]))
            for name in names:
                g = f[group][name]
                seq = np.asarray(g["sequence"][:], dtype=np.float64)
                cwm = np.asarray(g["contrib_scores"][:], dtype=np.float64)
                lo, hi = trim_bounds(cwm, trim_threshold)
                pfm = seq / np.maximum(seq.sum(axis=1, keepdims=True), 1e-12)
                patterns.append(Pattern(
                    name=f"{task}.{short}.{name.rsplit('_', 1)[-1]}", task=task, metacluster=short,
                    pfm=pfm[lo:hi], cwm=cwm[lo:hi],
                    hcwm=np.asarray(g["hypothetical_contribs"][:], dtype=np.float64)[lo:hi],
                    seqlet_contrib=np.asarray(g["seqlets"]["contrib_scores"][:], dtype=np.float32)[:, lo:hi],
                    trim=(lo, hi),
                ))
    return patterns


def write_meme(path: str | Path, patterns: Sequence[Pattern], kind: str = "pfm") -> None:
    """Write the patterns' PFMs (``kind="pfm"``) or CWMs (``"cwm"``) in MEME minimal format."""
    from modiscolite.meme_writer import MEMEWriter, MEMEWriterMotif

    writer = MEMEWriter(memesuite_version="5", motifs=[], alphabet=ALPHABET, strands="+ -",
                        background_frequencies="A 0.25 C 0.25 G 0.25 T 0.25")
    for p in patterns:
        matrix = p.pfm if kind == "pfm" else p.cwm
        writer.add_motif(MEMEWriterMotif(name=p.name, probability_matrix=np.asarray(matrix),
                                         source_sites=p.n_seqlets, alphabet=ALPHABET))
    writer.write(str(path))


def plot_logo(pattern: Pattern, path: str | Path, title: str = "") -> None:
    """The CWM logo above the PFM information-content logo, as one PNG."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(max(4.0, 0.35 * pattern.width + 1.5), 4.2), sharex=True)
    cwm = pd.DataFrame(pattern.cwm, columns=list(ALPHABET))
    logomaker.Logo(cwm, ax=axes[0])
    axes[0].axhline(0, color="grey", lw=0.5)
    axes[0].set_ylabel("contribution")
    axes[0].set_title(title or f"{pattern.name} ({pattern.n_seqlets} seqlets)", fontsize=10)
    logomaker.Logo(pd.DataFrame(ic_weighted(pattern.pfm), columns=list(ALPHABET)), ax=axes[1])
    axes[1].set_ylim(0, 2)
    axes[1].set_ylabel("bits")
    axes[1].set_xlabel("position")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pattern_table(patterns: Sequence[Pattern], matches: pd.DataFrame) -> pd.DataFrame:
    """One row per pattern: name, task, metacluster, seqlets, width, consensus, best known motif."""
    base = pd.DataFrame({
        "pattern": pd.Series([p.name for p in patterns], dtype=object),
        "task": pd.Series([p.task for p in patterns], dtype=object),
        "metacluster": pd.Series([p.metacluster for p in patterns], dtype=object),
        "n_seqlets": [p.n_seqlets for p in patterns],
        "width": [p.width for p in patterns],
        "consensus": [consensus(p.pfm) for p in patterns],
        "total_contribution": [round(float(p.cwm.sum()), 5) for p in patterns],
    })
    return base.merge(matches, on="pattern", how="left")


# --------------------------------------------------------------------------------------------
# CWM scanning
# --------------------------------------------------------------------------------------------


def _scores(contrib, cwm: np.ndarray):
    """Match (cosine) and window sum of ``contrib`` ``(M, L, 4)`` against ``cwm`` ``(w, 4)`` and its
    reverse complement: two ``(M, 2, L - w + 1)`` tensors (orientation 0 = +, 1 = -)."""
    import torch
    import torch.nn.functional as F

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
    import torch
    import torch.nn.functional as F

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
    from bpnet.steps.export import owned_intervals

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
# Comparison with planted (true) instances
# --------------------------------------------------------------------------------------------


def _read_truth_table(path: str | Path, columns: Sequence[str], key: str, what: str) -> pd.DataFrame:
    """A table the simulator wrote under ``truth/``: it must exist and have ``columns``."""
    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"{what} file {path} does not exist (config key {key})")
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise BPNetInputError(f"{path}: columns {missing} missing; expected the simulator's {what} table (config key {key})")
    return table


def read_truth_instances(path: str | Path) -> pd.DataFrame:
    """The simulator's ``truth/instances.tsv.gz`` (columns chrom, start, end, motif, bound, ...)."""
    return _read_truth_table(path, ("chrom", "start", "end", "motif", "bound"),
                             "interpretation.truth_instances", "truth instances")


def read_planted_syntax(path: str | Path) -> pd.DataFrame:
    """The simulator's ``truth/syntax.tsv.gz`` (:func:`bpnet.simulate.planted_syntax`)."""
    return _read_truth_table(path, ("motif_a", "motif_b", "distance", "task", "log2fc_a", "log2fc_b"),
                             "interpretation.truth_syntax", "planted syntax")


def _interval_hits(a: pd.DataFrame, b: pd.DataFrame, tolerance: int) -> np.ndarray:
    """bool ``(len(a),)``: interval ``a[i]`` lies within ``tolerance`` bp of some interval of ``b``
    (``bedtools window -u``)."""
    import pybedtools

    if a.empty or b.empty:
        return np.zeros(len(a), dtype=bool)
    a_bed = pd.DataFrame({"chrom": a["chrom"].astype(str), "start": a["start"].astype(int),
                          "end": a["end"].astype(int), "name": np.arange(len(a))})
    b_bed = b[["chrom", "start", "end"]].astype({"chrom": str, "start": int, "end": int})
    found = pybedtools.BedTool.from_dataframe(a_bed).window(
        pybedtools.BedTool.from_dataframe(b_bed), w=tolerance, u=True)
    names = [int(f.name) for f in found]
    out = np.zeros(len(a), dtype=bool)
    out[names] = True
    pybedtools.cleanup()
    return out


def instance_recovery(instances: pd.DataFrame, truth: pd.DataFrame, windows: pd.DataFrame,
                      labels: Sequence[str], tolerance: int = 5) -> pd.DataFrame:
    """Precision and recall of scanned instances against the planted bound instances, per motif.

    Args:
        instances: located instances with a ``motif`` column (the known motif their pattern was
            assigned to, empty when none).
        truth: planted instances (chrom, start, end, motif, bound).
        windows: scanned regions (chrom, start, end); only planted instances inside them count.
        labels: known motif labels (the truth's motif names).
        tolerance: bp allowed between a hit and a planted instance.

    Returns:
        One row per label: n_hits, n_bound (planted bound instances inside the windows),
        precision (hits within ``tolerance`` of a bound planted instance of the motif),
        precision_any (... of any planted instance of the motif, bound or not), recall (bound
        planted instances with a hit of the motif).
    """
    import pybedtools

    win = windows[["chrom", "start", "end"]].astype({"chrom": str, "start": int, "end": int})
    inside = np.zeros(len(truth), dtype=bool)
    if not truth.empty and not win.empty:
        t_bed = pd.DataFrame({"chrom": truth["chrom"].astype(str), "start": truth["start"].astype(int),
                              "end": truth["end"].astype(int), "name": np.arange(len(truth))})
        found = pybedtools.BedTool.from_dataframe(t_bed).intersect(
            pybedtools.BedTool.from_dataframe(win), u=True, f=1.0)
        inside[[int(f.name) for f in found]] = True
        pybedtools.cleanup()
    truth = truth[inside]
    rows = []
    for label in labels:
        hits = instances[instances["motif"] == label]
        planted = truth[truth["motif"] == label]
        bound = planted[planted["bound"].astype(bool)]
        hit_bound = _interval_hits(hits, bound, tolerance)
        hit_any = _interval_hits(hits, planted, tolerance)
        found = _interval_hits(bound, hits, tolerance)
        rows.append({
            "motif": label, "n_hits": len(hits), "n_bound": len(bound),
            "precision": float(hit_bound.mean()) if len(hits) else np.nan,
            "precision_any": float(hit_any.mean()) if len(hits) else np.nan,
            "recall": float(found.mean()) if len(bound) else np.nan,
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Rule entry points
# --------------------------------------------------------------------------------------------


def discovery_main(smk, log) -> None:
    """Rule ``motif_discovery`` (one task): contrib.npz -> modisco.h5, motifs.meme, cwms.meme,
    patterns.tsv, logos/."""
    import time

    from bpnet.interpret import load_contributions

    cfg = smk.params.interpretation
    mcfg = cfg["modisco"]
    task = smk.wildcards.task
    c = load_contributions(smk.input.contrib)
    sl = central_slice(c.sequence.shape[1], int(mcfg["window"]))
    one_hot = c.one_hot()[:, sl]
    hyp = c.hyp(task, mcfg["head"])[:, sl]
    log.info("TF-MoDISco on %s (%s head): %d windows x central %d bp, settings %s", task, mcfg["head"],
             len(one_hot), sl.stop - sl.start, {k: mcfg[k] for k in MODISCO_KEYS if k in mcfg})
    try:
        import numba

        numba.set_num_threads(max(1, min(int(smk.threads), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover - numba comes with modisco-lite
        pass
    t0 = time.perf_counter()
    with heartbeat(log, f"TF-MoDISco on {task}"):  # no loop of ours inside: elapsed time only
        run_modisco(one_hot, hyp, mcfg, smk.output.h5, log)
    log.info("TF-MoDISco took %.1f s", time.perf_counter() - t0)
    patterns = read_modisco_h5(smk.output.h5, task, float(mcfg["trim_threshold"]))
    known = resolve_known_motifs(read_meme_motifs(smk.input.known), cfg["motifs"], smk.input.known)
    matches = best_matches(similarity_table(patterns, known), float(cfg["scan"]["min_similarity"]))
    table = pattern_table(patterns, matches)
    table.to_csv(smk.output.patterns, sep="\t", index=False)
    write_meme(smk.output.meme, patterns, "pfm")
    write_meme(smk.output.cwms, patterns, "cwm")
    logos = Path(smk.output.logos)
    logos.mkdir(parents=True, exist_ok=True)
    for p, row in zip(patterns, table.itertuples()):
        match = f"; best known: {row.best_motif} ({row.similarity:.2f})" if isinstance(row.best_motif, str) else ""
        plot_logo(p, logos / f"{p.name}.png", f"{p.name}: {p.n_seqlets} seqlets{match}")
    for row in table.itertuples():
        log.info("pattern %-14s %5d seqlets  %-24s best known %s (similarity %.3f)", row.pattern, row.n_seqlets,
                 row.consensus, row.best_motif, row.similarity)


def instances_main(smk, log) -> None:
    """Rule ``motif_instances``: CWM scanning of every task's patterns -> instances.tsv, motifs.tsv."""
    from bpnet.interpret import load_contributions

    cfg = smk.params.interpretation
    scfg, mcfg = cfg["scan"], cfg["modisco"]
    tasks = list(smk.params.tasks)
    c = load_contributions(smk.input.contrib)
    known = resolve_known_motifs(read_meme_motifs(smk.input.known), cfg["motifs"], smk.input.known)
    one_hot = c.one_hot()
    located, tables = [], []
    per_task = [(task, [p for p in read_modisco_h5(h5, task, float(mcfg["trim_threshold"])) if p.metacluster == "pos"])
                for task, h5 in zip(tasks, smk.input.h5)]
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
    instances.to_csv(smk.output.instances, sep="\t", index=False)
    pd.concat(tables, ignore_index=True).to_csv(smk.output.motifs, sep="\t", index=False)
    log.info("wrote %d instances to %s", len(instances), smk.output.instances)


# A planted curve "has a period" when its peak holds this share of the band power: 0.96 for the
# helical Nanog rules, 0.14 for the monotone Oct4-Sox2 boost (whose "period" is meaningless).
PLANTED_PERIOD_SHARE = 0.5


def truth_check(patterns: Sequence[Pattern], known: Mapping[str, np.ndarray], instances: pd.DataFrame,
                truth: pd.DataFrame, windows: pd.DataFrame, syntax_summary: pd.DataFrame, tasks: Sequence[str],
                tolerance: int, syntax: pd.DataFrame | None = None, planted: pd.DataFrame | None = None,
                near: int = 50) -> pd.DataFrame:
    """Score the interpretation of a simulated dataset against its planted truth.

    Returns a tidy table (check, subject, metric, value, detail):

    - ``motif_recovery``: per known motif label, the similarity of the most similar positive
      pattern of any task (detail: the pattern);
    - ``instances``: per label, precision, precision_any, recall, n_hits, n_bound of the scanned
      instances (:func:`instance_recovery`);
    - ``syntax``: per pair (A, B) of the summary, for the task named like B the effect of A on the
      binding at B (``log2fc_b``) and for the task named like A the effect of B on the binding at A
      (``log2fc_a``): mean log2 fold change over near distances, period and its power share;
      with the curves (``syntax``, the rows of ``syntax.tsv``) and the simulator's planted syntax
      (``planted``, ``truth/syntax.tsv.gz``) also the planted curve's mean log2 fold change over
      near distances (``planted_log2fc_near``), its period (``planted_period_bp``, by the same
      :func:`bpnet.syntax.periodicity`; NaN when the planted curve does not oscillate, i.e. the
      peak holds less than :data:`PLANTED_PERIOD_SHARE` of the band power), the Pearson correlation of the model's curve with the
      planted one over the same distances (``corr_planted``: the shape, since the model's fold
      changes are of profile heights, not occupancies) and that of their oscillations
      (``corr_planted_oscillation``: both curves minus their moving average, as the period is
      found; near 1 only when the model's peaks fall where the planted ones do).
    """
    from bpnet.syntax import detrended, periodicity

    rows = []
    sim = similarity_table([p for p in patterns if p.metacluster == "pos"], known)
    for label in known:
        s = sim[sim["motif"] == label].sort_values("similarity", ascending=False, kind="stable")
        best = s.iloc[0] if len(s) else None
        rows.append({"check": "motif_recovery", "subject": label, "metric": "similarity",
                     "value": float(best["similarity"]) if best is not None else np.nan,
                     "detail": f"{best['pattern']} ({best['orientation']})" if best is not None else "no pattern"})
    rec = instance_recovery(instances, truth, windows, list(known), tolerance)
    for r in rec.itertuples():
        for metric in ("precision", "precision_any", "recall", "n_hits", "n_bound"):
            rows.append({"check": "instances", "subject": r.motif, "metric": metric, "value": getattr(r, metric),
                         "detail": f"tolerance {tolerance} bp"})
    for r in syntax_summary.itertuples():
        a, b = r.pair.split("__", 1)
        if (r.measure == "log2fc_b" and r.task == b) or (r.measure == "log2fc_a" and r.task == a):
            site = "B" if r.measure == "log2fc_b" else "A"
            detail = f"{r.task} binding at {site} ({r.measure})"
            for metric in ("mean_log2fc_near", "period_bp", "period_power_share"):
                rows.append({"check": "syntax", "subject": f"{r.pair}:{r.task}", "metric": metric,
                             "value": getattr(r, metric), "detail": detail})
            if syntax is None or planted is None:
                continue
            model = syntax[(syntax["pair"] == r.pair) & (syntax["task"] == r.task)].sort_values("distance")
            truth_curve = planted[(planted["motif_a"] == a) & (planted["motif_b"] == b) & (planted["task"] == r.task)]
            truth_curve = truth_curve.set_index("distance")[r.measure].reindex(model["distance"]).to_numpy()
            model_curve = model[r.measure].to_numpy()
            ok = np.isfinite(truth_curve) & np.isfinite(model_curve)
            if ok.sum() < 3:
                continue  # a pair of motifs the simulator does not plant, or distances it does not cover
            close = ok & (model["distance"].to_numpy() <= near)
            planted_period, planted_share = periodicity(truth_curve[ok])
            values = {
                "planted_log2fc_near": float(truth_curve[close].mean()) if close.any() else np.nan,
                "planted_period_bp": planted_period if planted_share >= PLANTED_PERIOD_SHARE else np.nan,
                "corr_planted": _pearson(model_curve[ok], truth_curve[ok]),
                "corr_planted_oscillation": _pearson(detrended(model_curve[ok]), detrended(truth_curve[ok])),
            }
            for metric, value in values.items():
                rows.append({"check": "syntax", "subject": f"{r.pair}:{r.task}", "metric": metric,
                             "value": value, "detail": f"{detail} vs the planted syntax"})
    return pd.DataFrame(rows, columns=["check", "subject", "metric", "value", "detail"])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r, NaN when either side is constant (a flat planted curve has no shape to match)."""
    if len(x) < 3 or np.ptp(x) < 1e-12 or np.ptp(y) < 1e-12:
        return float("nan")
    from scipy.stats import pearsonr

    return float(pearsonr(x, y)[0])


def _optional_input(value) -> str | None:
    """A rule input given as ``path or []`` (an unset config key): the path, or None."""
    return value if isinstance(value, str) else next(iter(value), None)


def check_main(smk, log) -> None:
    """Rule ``interpretation_check``: interpretation outputs vs. the simulator's planted instances."""
    from bpnet.interpret import load_contributions

    cfg = smk.params.interpretation
    tasks = list(smk.params.tasks)
    known = resolve_known_motifs(read_meme_motifs(smk.input.known), cfg["motifs"], smk.input.known)
    patterns = [p for task, h5 in zip(tasks, smk.input.h5)
                for p in read_modisco_h5(h5, task, float(cfg["modisco"]["trim_threshold"]))]
    instances = pd.read_csv(smk.input.instances, sep="\t", keep_default_na=False,
                            dtype={"motif": str, "chrom": str})
    truth_path = _optional_input(smk.input.truth)
    if not truth_path:
        raise BPNetInputError("rule interpretation_check needs config key interpretation.truth_instances "
                              "(the simulator's truth/instances.tsv.gz)")
    truth = read_truth_instances(truth_path)
    unknown = sorted(set(truth["motif"]) - set(known))
    if unknown:
        log.warning("planted motif(s) %s have no label in interpretation.motifs; they are not scored", unknown)
    c = load_contributions(smk.input.contrib)
    windows = pd.DataFrame({"chrom": c.chrom, "start": c.start, "end": c.start + c.sequence.shape[1]})
    summary = pd.read_csv(smk.input.syntax_summary, sep="\t")
    syntax = planted = None
    planted_path = _optional_input(smk.input.truth_syntax)
    if planted_path:
        planted = read_planted_syntax(planted_path)
        syntax = pd.read_csv(smk.input.syntax, sep="\t")
    table = truth_check(patterns, known, instances, truth, windows, summary, tasks, int(cfg["scan"]["tolerance"]),
                        syntax, planted, int(cfg["syntax"]["near"]))
    table.round({"value": 4}).to_csv(smk.output[0], sep="\t", index=False)
    for r in table.itertuples():
        log.info("%-15s %-24s %-19s %10.4f  %s", r.check, r.subject, r.metric, r.value, r.detail)
