"""Motif discovery with TF-MoDISco lite, and the patterns it finds (rule ``motif_discovery``).

**Discovery** (one job per task). :func:`run_modisco` runs ``modiscolite.tfmodisco.TFMoDISco`` on
the one-hot windows and the hypothetical contributions of one task and head
(``interpretation.modisco.head``, default the profile head, as in the paper), cropped to the
central ``modisco.window`` bp where the summit-centred windows hold their motifs. Its result is
saved with modisco-lite's own writer (``modisco.h5``). Each pattern is then trimmed to the
positions whose total absolute contribution reaches ``trim_threshold`` x its maximum
(modisco-lite's report does the same; :func:`read_modisco_h5`) and written as

- ``motifs.meme``: position frequency matrices (PFMs, MEME minimal format),
- ``cwms.meme``: contribution weight matrices (CWMs: the mean contribution per position and base
  of the pattern's seqlets) in the same layout (values are contributions, not probabilities, as in
  ``modisco meme -t CWM``),
- ``logos/{pattern}.png``: the CWM logo above the PFM's information-content logo (logomaker),
- ``patterns.tsv``: one row per pattern (seqlets, width, consensus, best known motif: the known
  motif most similar by :func:`bpnet.interpret.meme.motif_similarity`, :func:`best_matches`).

modisco-lite, logomaker and matplotlib are imported where they are used: they take about a second
to import and only this rule needs them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import pandas as pd

from bpnet.errors import BPNetInputError
from bpnet.interpret.contributions import load_contributions
from bpnet.interpret.meme import (
    ALPHABET,
    consensus,
    ic_weighted,
    motif_similarity,
    read_meme_motifs,
    resolve_known_motifs,
)
from bpnet.progress import heartbeat

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


# --------------------------------------------------------------------------------------------
# Patterns and known motifs
# --------------------------------------------------------------------------------------------


def similarity_table(patterns: Sequence[Pattern], known: Mapping[str, np.ndarray]) -> pd.DataFrame:
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
# Rule motif_discovery
# --------------------------------------------------------------------------------------------


def discover_motifs(
    contrib_path: str | Path,
    known_motifs_path: str | Path,
    h5_path: str | Path,
    pfm_meme_path: str | Path,
    cwm_meme_path: str | Path,
    patterns_path: str | Path,
    logos_dir: str | Path,
    task: str,
    interpretation: Mapping[str, Any],
    threads: int = 1,
    log: logging.Logger = logging.getLogger(__name__),
) -> pd.DataFrame:
    """Rule ``motif_discovery`` (one task): contrib.npz -> modisco.h5, motifs.meme, cwms.meme,
    patterns.tsv, logos/.

    Args:
        contrib_path: contrib.npz of rule contrib_scores.
        known_motifs_path: MEME file of the known motifs (``interpretation.motifs`` names them).
        h5_path, pfm_meme_path, cwm_meme_path, patterns_path: the outputs (module docstring).
        logos_dir: folder of the logos ``{pattern}.png``, made here.
        task: the task whose contributions are searched.
        interpretation: the config's ``interpretation`` section (``modisco``, ``motifs``,
            ``scan.min_similarity``).
        threads: the cores the job may use (numba's threads).

    Returns the patterns table written to ``patterns_path``.
    """
    cfg = interpretation
    mcfg = cfg["modisco"]
    c = load_contributions(contrib_path)
    sl = central_slice(c.sequence.shape[1], int(mcfg["window"]))
    one_hot = c.one_hot()[:, sl]
    hyp = c.hyp(task, mcfg["head"])[:, sl]
    log.info("TF-MoDISco on %s (%s head): %d windows x central %d bp, settings %s", task, mcfg["head"],
             len(one_hot), sl.stop - sl.start, {k: mcfg[k] for k in MODISCO_KEYS if k in mcfg})
    try:
        import numba  # modisco-lite's, as slow to import

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover - numba comes with modisco-lite
        pass
    t0 = time.perf_counter()
    with heartbeat(log, f"TF-MoDISco on {task}"):  # no loop of ours inside: elapsed time only
        run_modisco(one_hot, hyp, mcfg, h5_path, log)
    log.info("TF-MoDISco took %.1f s", time.perf_counter() - t0)
    patterns = read_modisco_h5(h5_path, task, float(mcfg["trim_threshold"]))
    known = resolve_known_motifs(read_meme_motifs(known_motifs_path), cfg["motifs"], known_motifs_path)
    matches = best_matches(similarity_table(patterns, known), float(cfg["scan"]["min_similarity"]))
    table = pattern_table(patterns, matches)
    table.to_csv(patterns_path, sep="\t", index=False)
    write_meme(pfm_meme_path, patterns, "pfm")
    write_meme(cwm_meme_path, patterns, "cwm")
    logos = Path(logos_dir)
    logos.mkdir(parents=True, exist_ok=True)
    for p, row in zip(patterns, table.itertuples()):
        match = f"; best known: {row.best_motif} ({row.similarity:.2f})" if isinstance(row.best_motif, str) else ""
        plot_logo(p, logos / f"{p.name}.png", f"{p.name}: {p.n_seqlets} seqlets{match}")
    for row in table.itertuples():
        log.info("pattern %-14s %5d seqlets  %-24s best known %s (similarity %.3f)", row.pattern, row.n_seqlets,
                 row.consensus, row.best_motif, row.similarity)
    return table
