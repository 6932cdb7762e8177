"""Variant effects: every allele of a VCF scored by the trained model(s) (rule ``score_variants``).

For each variant, the reference and alternative windows of :func:`bpnet.data.variants.variant_windows`
(``W`` bp, the variant at ``W // 2``) are predicted in batches through the same path as rule
predict (:func:`bpnet.steps.predict.predict_profile`: expected 5'-end counts, reverse-complement
averaged when ``predict.reverse_complement_average`` is on; an ensemble's members averaged). Per
variant and task, with ``ref`` / ``alt`` the predicted expected counts ``(W, S)`` of the task:

- ``ref_log_counts`` / ``alt_log_counts``: ``log(1 + total)`` of the predicted reads of the window
  (all positions and strands); ``log_counts_diff`` = alt - ref (the count head's effect; the paper's
  count target is ``log(1 + total)``);
- ``jsd``: Jensen-Shannon distance (natural log) between the ref and alt profiles, each normalised
  over positions and strands: the change of shape, whatever the change of total;
- ``max_abs_diff``: the largest change of expected reads at one base and strand;
- ``p_counts`` / ``p_jsd``: empirical p-values of ``|log_counts_diff|`` and ``jsd`` against
  ``null_variants`` background SNVs (random positions of the genome without N, a random other
  base, seeded), scored the same way: ``(1 + #null >= observed) / (1 + n_null)``.

Windows are built :data:`WINDOW_CHUNK` variants at a time and predicted ``CHUNK_VARIANTS`` pairs
at a time, so memory stays bounded for any VCF (its table of variants aside: ~200 bytes each).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from bpnet.data.dataset import read_padded, strands_per_task
from bpnet.data.variants import read_vcf, variant_windows
from bpnet.errors import BPNetInputError
from bpnet.hardware import setup_inference
from bpnet.io.npz import read_npz
from bpnet.io.sequence import N_CODE, open_fasta, read_fasta_windows
from bpnet.io.tracks import read_chrom_sizes, read_windows
from bpnet.model.weights import load_checkpoint
from bpnet.progress import progress_bar
from bpnet.steps.predict import predict_profile

CHUNK_VARIANTS = 512
# Variants whose windows are built at a time: 8192 x (ref + alt) x 1000 bp = 16 MB of codes.
WINDOW_CHUNK = 8192
SCORE_COLUMNS = ["ref_log_counts", "alt_log_counts", "log_counts_diff", "jsd", "max_abs_diff"]
# pseudocount of the profiles compared by the JSD, in reads per window (a profile of 0 reads is uniform)
_JSD_PSEUDOCOUNT = 1e-3


def effect_scores(ref: np.ndarray, alt: np.ndarray, n_tasks: int) -> dict[str, np.ndarray]:
    """Scores of predicted expected counts ``ref`` and ``alt`` ``(n, W, S T)``: each of
    :data:`SCORE_COLUMNS` as ``(n, T)`` float64 (see the module docstring)."""
    n, width, channels = ref.shape
    s = strands_per_task(channels, n_tasks, "predicted profiles")
    r = ref.astype(np.float64).reshape(n, width, n_tasks, s).transpose(0, 2, 1, 3).reshape(n, n_tasks, width * s)
    a = alt.astype(np.float64).reshape(n, width, n_tasks, s).transpose(0, 2, 1, 3).reshape(n, n_tasks, width * s)
    ref_log, alt_log = np.log1p(r.sum(axis=2)), np.log1p(a.sum(axis=2))
    rp = (r + _JSD_PSEUDOCOUNT / r.shape[2])
    ap = (a + _JSD_PSEUDOCOUNT / a.shape[2])
    jsd = jensenshannon(rp, ap, axis=2)  # scipy normalises each distribution
    return {"ref_log_counts": ref_log, "alt_log_counts": alt_log, "log_counts_diff": alt_log - ref_log,
            "jsd": np.nan_to_num(jsd), "max_abs_diff": np.abs(a - r).max(axis=2)}


def predict_windows(models: Sequence[Any], codes: np.ndarray, device, rc_average: bool,
                    control: np.ndarray | None = None) -> np.ndarray:
    """Expected counts ``(n, W, C)`` of ``codes`` ``(n, W)`` (and the control ``(n, W, S)`` of models
    that use one): the mean over ``models`` (an ensemble)."""
    out = None
    for model in models:
        prof = predict_profile(model, codes, control if model.config.use_control else None, device=device,
                               rc_average=rc_average)
        out = prof if out is None else out + prof
    return out / len(models)


def score_alleles(models: Sequence[Any], ref_codes: np.ndarray, alt_codes: np.ndarray, n_tasks: int, device,
                  rc_average: bool = False, progress=None, control: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`effect_scores` of every ref/alt window pair, :data:`CHUNK_VARIANTS` pairs at a time;
    ``progress.update(k)`` after each chunk. ``control`` ``(n, W, S)``: the control track at each
    variant's window, the same for both alleles (a property of the locus, not of the allele)."""
    parts: dict[str, list[np.ndarray]] = {c: [] for c in SCORE_COLUMNS}
    for lo in range(0, len(ref_codes), CHUNK_VARIANTS):
        sl = slice(lo, lo + CHUNK_VARIANTS)
        both = np.concatenate([ref_codes[sl], alt_codes[sl]])  # one pass over ref and alt windows
        ctl = None if control is None else np.concatenate([control[sl], control[sl]])
        pred = predict_windows(models, both, device, rc_average, ctl)
        k = len(ref_codes[sl])
        for name, value in effect_scores(pred[:k], pred[k:], n_tasks).items():
            parts[name].append(value)
        if progress is not None:
            progress.update(k)
    return {name: np.concatenate(v) if v else np.zeros((0, n_tasks)) for name, v in parts.items()}


def _score_table(models, fa, sizes: Mapping[str, int], variants: pd.DataFrame, width: int, n_tasks: int, device,
                 rc_average: bool, progress, control: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """:func:`score_alleles` of a variants table, its windows built :data:`WINDOW_CHUNK` variants at
    a time (a VCF of millions of variants never holds all its windows); ``control``: the control
    bigWigs read at the windows, for models that use them."""
    parts: dict[str, list[np.ndarray]] = {c: [] for c in SCORE_COLUMNS}
    for lo in range(0, len(variants), WINDOW_CHUNK):
        chunk = variants.iloc[lo:lo + WINDOW_CHUNK]
        ref_codes, alt_codes, starts = variant_windows(fa, sizes, chunk, width)
        ctl = control_windows(control, sizes, chunk["chrom"].to_numpy().astype(str), starts, width) if control else None
        for name, value in score_alleles(models, ref_codes, alt_codes, n_tasks, device, rc_average, progress,
                                         ctl).items():
            parts[name].append(value)
    return {name: np.concatenate(v) if v else np.zeros((0, n_tasks)) for name, v in parts.items()}


def control_windows(paths: Sequence[str], sizes: Mapping[str, int], chroms: np.ndarray, starts: np.ndarray,
                    width: int) -> np.ndarray:
    """The control track ``(n, W, S)`` float32 over the windows (0 past the chromosome ends)."""
    chrom_len = np.array([sizes[c] for c in chroms], dtype=np.int64)
    return read_padded(lambda c, s, n: read_windows(list(paths), c, s, n, dtype=np.float32), chroms, starts, width,
                       chrom_len, 0.0)


def background_snvs(fasta, chrom_sizes: Mapping[str, int], n: int, width: int, seed: int) -> pd.DataFrame:
    """``n`` random SNVs (variants table as :func:`bpnet.data.variants.read_vcf`): positions drawn
    uniformly over the genome (chromosomes of at least ``width`` bp, at least ``width`` from their
    ends) at a base that is not N, the alt a random other base; seeded."""
    rng = np.random.default_rng(seed)
    chroms = [c for c, size in chrom_sizes.items() if size > 3 * width]
    if not chroms:
        raise BPNetInputError(f"no chromosome longer than {3 * width} bp to draw background variants from")
    lengths = np.array([chrom_sizes[c] - 2 * width for c in chroms], dtype=np.float64)
    rows: list[tuple] = []
    bases = "ACGT"
    for _ in range(20):  # redraw positions that hit N
        need = n - len(rows)
        if need <= 0:
            break
        which = rng.choice(len(chroms), size=2 * need, p=lengths / lengths.sum())
        offsets = (rng.random(2 * need) * lengths[which]).astype(np.int64) + width
        shifts = rng.integers(1, 4, size=2 * need)
        for c, off, shift in zip(which, offsets, shifts):
            code = int(read_fasta_windows(fasta, chroms[c], np.array([off]), 1)[0, 0])
            if code == N_CODE:
                continue
            ref, alt = bases[code], bases[(code + int(shift)) % 4]
            rows.append((chroms[c], int(off) + 1, f"null{len(rows)}", ref, alt, 0))
            if len(rows) == n:
                break
    if len(rows) < n:
        raise BPNetInputError(f"could not draw {n} background variants outside N bases")
    return pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt", "line"])


def empirical_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(1 + #null >= observed) / (1 + n_null)`` per column: ``observed`` ``(n, T)``, ``null`` ``(m, T)``."""
    out = np.empty(observed.shape, dtype=np.float64)
    for t in range(observed.shape[1]):
        ranked = np.sort(null[:, t])
        out[:, t] = (1 + len(ranked) - np.searchsorted(ranked, observed[:, t], side="left")) / (1 + len(ranked))
    return out


def score_variants(
    vcf: str,
    fasta_path: str,
    chrom_sizes_path: str,
    models: Sequence[str],
    dataset: str,
    tasks: Sequence[str],
    out_tsv: str,
    out_plot: str,
    settings: Mapping[str, Any],
    control: Sequence[str] = (),
    seed: int = 1,
    device: str = "auto",
    kernels: str = "auto",
    threads: int = 1,
    rc_average: bool = False,
    log: logging.Logger = logging.getLogger(__name__),
) -> pd.DataFrame:
    """Rule ``score_variants``: every allele of ``vcf`` scored by ``models`` (one, or an ensemble's
    members) -> ``out_tsv`` (one row per variant and task) and ``out_plot`` (the top variants'
    ref and alt profiles). ``settings``: the ``variant_scoring`` section (``null_variants``,
    ``plot_variants``, ``plot_flank``). ``control``: the control bigWigs of models that use a
    control track, read at each variant's window for both alleles."""
    tasks = list(tasks)
    sizes = read_chrom_sizes(chrom_sizes_path)
    width = int(read_npz(dataset, ["width"], "dataset", "build_dataset")["width"])
    nets = []
    for path in models:
        net = load_checkpoint(path, tasks=tasks)
        if net.config.use_control and len(control) != net.config.num_strands:
            raise BPNetInputError(f"checkpoint {path} uses a control track, but no control bigWigs reach the rule: "
                                  "set model.use_control: true and data.control")
        nets.append(net)
    dev = None
    for net in nets:
        dev = setup_inference(net, device, kernels, threads, log if dev is None else None)
    fa = open_fasta(fasta_path)
    try:
        variants = read_vcf(vcf, sizes, fa, log)
        n_null = int(settings.get("null_variants", 1000))
        null = background_snvs(fa, sizes, n_null, width, seed) if n_null else None
        n = len(variants) + n_null
        t0 = time.perf_counter()
        with progress_bar(log, n, "score variants", unit="variant") as bar:
            control = list(control) if any(net.config.use_control for net in nets) else []
            scores = _score_table(nets, fa, sizes, variants, width, len(tasks), dev, rc_average, bar, control)
            null_scores = (_score_table(nets, fa, sizes, null, width, len(tasks), dev, rc_average, bar, control)
                           if null is not None else None)
    finally:
        fa.close()
    seconds = time.perf_counter() - t0
    log.info("scored %d variants and %d background variants with %d model(s) in %.1f s: %.1f variants/s "
             "(ref and alt windows of %d bp%s)", len(variants), n_null, len(nets), seconds, n / seconds,
             width, ", reverse-complement averaged" if rc_average else "")
    table = variant_table(variants, tasks, scores, null_scores)
    table.to_csv(out_tsv, sep="\t", index=False, float_format="%.6g")
    plot_top_variants(nets, fasta_path, sizes, variants, table, tasks, width, dev, rc_average, out_plot,
                      int(settings.get("plot_variants", 6)), int(settings.get("plot_flank", 100)), control)
    return table


def variant_table(variants: pd.DataFrame, tasks: Sequence[str], scores: Mapping[str, np.ndarray],
                  null_scores: Mapping[str, np.ndarray] | None) -> pd.DataFrame:
    """One row per variant and task (variant-major, tasks in order), with the p-values."""
    n, t = len(variants), len(tasks)
    table = variants.drop(columns=["line"]).loc[np.repeat(np.arange(n), t)].reset_index(drop=True)
    table.insert(5, "task", np.tile(np.asarray(tasks, dtype=object), n))
    for name in SCORE_COLUMNS:
        table[name] = scores[name].reshape(-1)
    if null_scores is not None:
        table["p_counts"] = empirical_p(np.abs(scores["log_counts_diff"]), np.abs(null_scores["log_counts_diff"])).reshape(-1)
        table["p_jsd"] = empirical_p(scores["jsd"], null_scores["jsd"]).reshape(-1)
    return table


def plot_top_variants(models, fasta_path: str, sizes: Mapping[str, int], variants: pd.DataFrame,
                      table: pd.DataFrame, tasks: Sequence[str], width: int, device, rc_average: bool,
                      path: str | Path, n: int, flank: int, control: Sequence[str] = ()) -> None:
    """Ref and alt predicted profiles of the ``n`` variants with the largest ``|log_counts_diff|``
    (any task): one row per variant, one column per task, +-``flank`` bp around the variant, the
    + strand up and the - strand down."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = len(tasks)
    effect = np.abs(table["log_counts_diff"].to_numpy().reshape(len(variants), t)).max(axis=1)
    top = np.argsort(-effect, kind="stable")[:max(n, 1)]
    fa = open_fasta(fasta_path)
    try:
        chosen = variants.iloc[top].reset_index(drop=True)
        ref_codes, alt_codes, starts = variant_windows(fa, sizes, chosen, width)
    finally:
        fa.close()
    ctl = (control_windows(control, sizes, chosen["chrom"].to_numpy().astype(str), starts, width)
           if control else None)
    pred = predict_windows(models, np.concatenate([ref_codes, alt_codes]), device, rc_average,
                           None if ctl is None else np.concatenate([ctl, ctl]))
    ref, alt = pred[:len(top)], pred[len(top):]
    s = ref.shape[2] // t
    centre = width // 2
    lo, hi = max(0, centre - flank), min(width, centre + flank + 1)
    x = np.arange(lo, hi) - centre
    fig, axes = plt.subplots(len(top), t, figsize=(3.6 * t, 2.2 * len(top)), squeeze=False, sharex=True)
    for i, row in enumerate(top):
        v = variants.iloc[row]
        for j, task in enumerate(tasks):
            ax = axes[i, j]
            for k in range(s):
                sign = -1 if k == 1 else 1
                ax.plot(x, sign * ref[i, lo:hi, s * j + k], color="0.45", lw=1, label="ref" if k == 0 else None)
                ax.plot(x, sign * alt[i, lo:hi, s * j + k], color="C3", lw=1, label="alt" if k == 0 else None)
            ax.axvline(0, color="C0", lw=0.6, ls=":")
            ax.axhline(0, color="k", lw=0.4)
            d = table["log_counts_diff"].iat[row * t + j]
            ax.set_title(f"{task}: {v['chrom']}:{v['pos']} {v['ref'][:6]}>{v['alt'][:6]}  "
                         f"log-count change {d:+.2f}", fontsize=8)
            if j == 0:
                ax.set_ylabel("predicted reads" + (" (+ up, - down)" if s == 2 else ""), fontsize=8)
            if i == len(top) - 1:
                ax.set_xlabel("bp from the variant", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Checked against planted effects (the simulated truth)
# --------------------------------------------------------------------------------------------

TRUTH_KEYS = ["chrom", "pos", "ref", "alt", "task"]
# A motif-breaking variant "breaks" binding for a task when it lowers the task's planted reads by
# more than this (natural log: 10 %).
BREAK_EFFECT = 0.1


def truth_check(scores: pd.DataFrame, effects: pd.DataFrame, effects_name: str = "the effects table") -> pd.DataFrame:
    """Predicted against planted variant effects, per task and over all tasks (``task`` ``all``).

    Args:
        scores: rule score_variants' table.
        effects: one row per variant and task with :data:`TRUTH_KEYS`, ``kind`` and
            ``planted_effect`` (``log((1 + alt) / (1 + ref))`` of the noise-free expected reads).

    Returns:
        rows ``task``, ``n``, ``pearson`` and ``spearman`` (predicted ``log_counts_diff`` vs
        ``planted_effect``), ``auroc_break`` (``-log_counts_diff`` separating variants that break a
        motif for the task, i.e. whose kind names ``break`` or ``destroy`` and whose planted effect
        on the task is below ``-BREAK_EFFECT``, from neutral ones; NaN without both),
        ``n_break``, ``n_neutral``.
    """
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import roc_auc_score

    missing = [c for c in [*TRUTH_KEYS, "kind", "planted_effect"] if c not in effects.columns]
    if missing:
        raise BPNetInputError(f"{effects_name} lacks the column(s) {missing}")
    merged = scores.merge(effects[[*TRUTH_KEYS, "kind", "planted_effect"]], on=TRUTH_KEYS, how="inner")
    if merged.empty:
        raise BPNetInputError(f"no scored variant is in {effects_name} (matched on {', '.join(TRUTH_KEYS)})")
    rows = []
    for task, part in [*merged.groupby("task", sort=False), ("all", merged)]:
        pred, planted = part["log_counts_diff"].to_numpy(), part["planted_effect"].to_numpy()
        kind = part["kind"].astype(str).str.lower()
        # breaking for this task: a motif-breaking kind that lowers the task's planted reads by
        # more than BREAK_EFFECT (a Klf4 motif broken in a locus Oct4 does not bind is neutral for Oct4)
        breaks = kind.str.contains("break|destroy").to_numpy() & (planted < -BREAK_EFFECT)
        neutral = kind.str.startswith("neutral").to_numpy()
        varied = len(part) > 2 and np.ptp(pred) > 0 and np.ptp(planted) > 0
        sel = breaks | neutral
        auroc = (roc_auc_score(breaks[sel], -pred[sel]) if breaks.any() and neutral.any() else np.nan)
        rows.append({"task": task, "n": len(part),
                     "pearson": pearsonr(pred, planted)[0] if varied else np.nan,
                     "spearman": spearmanr(pred, planted)[0] if varied else np.nan,
                     "auroc_break": auroc, "n_break": int(breaks.sum()), "n_neutral": int(neutral.sum())})
    return pd.DataFrame(rows)


def write_truth_check(scores_path: str, effects_path: str, out_path: str,
                      log: logging.Logger = logging.getLogger(__name__)) -> pd.DataFrame:
    """Rule ``variant_truth_check``: :func:`truth_check` of a scores table against an effects table."""
    scores = pd.read_csv(scores_path, sep="\t")
    effects = pd.read_csv(effects_path, sep="\t")
    table = truth_check(scores, effects, str(effects_path))
    table.to_csv(out_path, sep="\t", index=False, float_format="%.4f")
    for row in table.itertuples():
        log.info("%-6s n %5d  Pearson %.3f  Spearman %.3f  auROC (motif-breaking vs neutral) %.3f", row.task,
                 row.n, row.pearson, row.spearman, row.auroc_break)
    return table
