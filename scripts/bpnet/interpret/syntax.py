"""Motif syntax by in-silico marginalisation (rule ``marginalize``).

For a pair of motifs (A, B) (``interpretation.syntax.pairs``, labels of ``interpretation.motifs``),
the consensus sequence of A (most likely base of its PFM) is inserted at the centre of background
sequences, and the consensus of B downstream of it with its centre ``d`` bp from A's centre, for
every ``d`` from the smallest distance at which the two do not overlap up to
``syntax.max_distance``. Backgrounds are dinucleotide-shuffled windows of the dataset
(``syntax.n_backgrounds`` windows of ``interpretation.splits``, one shuffle each, seeded), so the
result is averaged over sequence contexts while the inserted motifs are the only shared signal.

For every task the model's predictions are summarised per sequence by

- ``counts``: predicted total reads (both strands, ``expm1`` of the count head),
- ``height_a`` / ``height_b``: the maximum of the predicted profile (sum of both strands) within
  ``syntax.height_window`` bp of A's / B's centre,

for three kinds of sequence: A and B together (``_ab``), A alone, and B alone at the same place,
each averaged over backgrounds. ``syntax.tsv`` has one row per (pair, distance, task) with those
means and the log2 fold changes

- ``log2fc_a = log2(height_a_ab / height_a)``: effect of B on the binding at A,
- ``log2fc_b = log2(height_b_ab / height_b)``: effect of A on the binding at B,
- ``log2fc_counts = log2(counts_ab / counts_a)``: change of the window's total reads over A alone.

``syntax_summary.tsv`` has per (pair, task, measure) the mean log2 fold change over distances up to
``syntax.near`` bp and the dominant period of the curve (:func:`periodicity`: the curve minus its
moving average over ``DETREND_BP`` bp, Hann-windowed, zero-padded FFT; the period of the highest
peak between ``MIN_PERIOD`` and ``MAX_PERIOD`` bp and that peak's share of the power in this band).
One plot per pair, ``syntax/{A}__{B}.png``, shows the three fold changes against distance.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import uniform_filter1d

from bpnet.data.dataset import load_dataset
from bpnet.errors import BPNetInputError
from bpnet.hardware import setup_inference
from bpnet.interpret.contributions import dinucleotide_shuffle, select_windows
from bpnet.interpret.meme import read_meme_motifs, resolve_known_motifs
from bpnet.model.network import BPNet, postprocess
from bpnet.model.weights import load_checkpoint
from bpnet.progress import FILE_ONLY, progress_bar
from bpnet.steps.predict import predict_outputs

DETREND_BP = 21  # moving-average window removed before the FFT (two helical turns)
MIN_PERIOD, MAX_PERIOD = 4.0, 30.0  # period band searched (bp)
FFT_POINTS = 2048  # zero padding: period resolution ~0.05 bp at 10 bp
MEASURES = ("log2fc_a", "log2fc_b", "log2fc_counts")


def consensus_codes(pfm: np.ndarray) -> np.ndarray:
    """uint8 codes ``(w,)`` of the most likely base at each position of a PFM ``(w, 4)``."""
    return np.argmax(np.asarray(pfm), axis=1).astype(np.uint8)


def insert_motif(codes: np.ndarray, motif: np.ndarray, starts: np.ndarray | int) -> np.ndarray:
    """Copy of ``codes`` ``(n, L)`` with ``motif`` ``(w,)`` written at ``starts`` (scalar or ``(n,)``)."""
    out = np.array(codes, dtype=np.uint8, copy=True)
    starts = np.broadcast_to(np.asarray(starts, dtype=np.int64), (len(out),))
    if starts.min(initial=0) < 0 or starts.max(initial=0) + len(motif) > out.shape[1]:
        raise BPNetInputError(
            f"a motif of {len(motif)} bp at positions {starts.min()}..{starts.max()} does not fit sequences "
            f"of {out.shape[1]} bp; lower interpretation.syntax.max_distance"
        )
    out[np.arange(len(out))[:, None], starts[:, None] + np.arange(len(motif))[None, :]] = motif
    return out


def pair_layout(width_a: int, width_b: int, length: int, max_distance: int) -> tuple[int, int, np.ndarray]:
    """Placement of A at the centre and B at distances ``d`` (centre to centre).

    Returns:
        ``(centre, start_a, distances)``: A covers ``[start_a, start_a + width_a)`` with its centre
        at ``centre``; B's centre is at ``centre + d`` for each ``d`` in ``distances`` (ascending,
        from the smallest distance at which B does not overlap A).
    """
    centre = length // 2
    start_a = centre - width_a // 2
    d_min = (start_a + width_a) - centre + width_b // 2  # B's start = A's end
    if centre + max_distance - width_b // 2 + width_b > length:
        raise BPNetInputError(
            f"config key interpretation.syntax.max_distance: {max_distance} bp from the centre leaves "
            f"sequences of {length} bp"
        )
    if max_distance < d_min:
        raise BPNetInputError(
            f"config key interpretation.syntax.max_distance: {max_distance} bp is below {d_min} bp, the "
            f"smallest distance at which motifs of {width_a} and {width_b} bp do not overlap"
        )
    return centre, start_a, np.arange(d_min, max_distance + 1)


def _summaries(model: BPNet, codes: np.ndarray, centres: Sequence[np.ndarray], height_window: int,
               batch_size: int, device) -> tuple[np.ndarray, list[np.ndarray]]:
    """Predicted totals ``(n, T)`` and, for each array of centres ``(n,)``, profile heights ``(n, T)``."""
    s = model.config.num_strands
    # A model with a control track sees no control here (zeros): the bias-free prediction.
    control = np.zeros((*codes.shape, s), dtype=np.float32) if model.config.use_control else None
    out = predict_outputs(model, codes, control, batch_size=batch_size, device=device)
    track = postprocess({k: torch.from_numpy(v) for k, v in out.items()}).numpy()  # (n, L, C)
    n, length, c = track.shape
    by_task = track.reshape(n, length, c // s, s).sum(axis=3)  # (n, L, T)
    totals = np.clip(np.expm1(out["count_logits"]), 0, None).reshape(n, c // s, s).sum(axis=2)
    offsets = np.arange(-height_window, height_window + 1)
    heights = []
    for centre in centres:
        pos = np.clip(np.asarray(centre, dtype=np.int64)[:, None] + offsets[None, :], 0, length - 1)
        heights.append(by_task[np.arange(n)[:, None], pos].max(axis=1))  # (n, T)
    return totals, heights


def marginalize_pair(
    model: BPNet,
    backgrounds: np.ndarray,
    motif_a: np.ndarray,
    motif_b: np.ndarray,
    max_distance: int,
    height_window: int = 20,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    progress=None,
) -> pd.DataFrame:
    """Predicted binding of every task versus the distance of B from A.

    Args:
        model: trained BPNet (a control track, if it has one, is set to zeros: no bias).
        backgrounds: uint8 ``(n, L)`` background sequences.
        motif_a, motif_b: uint8 codes of the inserted sequences.
        max_distance: largest centre-to-centre distance.
        height_window: half-width (bp) of the region around a motif centre for its profile height.
        progress: optional object with ``update(n_distances)`` (e.g. a
            :func:`bpnet.progress.progress_bar` over the distances of all pairs).

    Returns:
        One row per (distance, task): distance, task index ``task``, counts_ab, counts_a, counts_b,
        height_a_ab, height_a, height_b_ab, height_b (means over backgrounds) and the log2 fold
        changes (module doc).
    """
    n, length = backgrounds.shape
    wa, wb = len(motif_a), len(motif_b)
    centre, start_a, distances = pair_layout(wa, wb, length, max_distance)
    with_a = insert_motif(backgrounds, motif_a, start_a)
    totals_a, (height_a,) = _summaries(model, with_a, [np.full(n, centre)], height_window, batch_size, device)
    counts_a, height_a = totals_a.mean(axis=0), height_a.mean(axis=0)  # (T,)
    # Distances in chunks of about 8 batches: every (distance, background) sequence once with A
    # and once without.
    per_chunk = max(1, (8 * batch_size) // (2 * n))
    rows = []
    for lo in range(0, len(distances), per_chunk):
        d = distances[lo:lo + per_chunk]
        starts_b = np.repeat(centre + d - wb // 2, n)  # (len(d) * n,)
        centre_b = np.repeat(centre + d, n)
        ab = insert_motif(np.tile(with_a, (len(d), 1)), motif_b, starts_b)
        b_only = insert_motif(np.tile(backgrounds, (len(d), 1)), motif_b, starts_b)
        m = len(starts_b)
        totals, (h_a, h_b) = _summaries(
            model, np.concatenate([ab, b_only]), [np.full(2 * m, centre), np.r_[centre_b, centre_b]],
            height_window, batch_size, device,
        )

        def mean(x, part):  # (2m, T) -> (len(d), T) mean over backgrounds of the AB or B part
            x = x[:m] if part == "ab" else x[m:]
            return x.reshape(len(d), n, -1).mean(axis=1)

        rows.append({
            "distance": d, "counts_ab": mean(totals, "ab"), "counts_b": mean(totals, "b"),
            "height_a_ab": mean(h_a, "ab"), "height_b_ab": mean(h_b, "ab"), "height_b": mean(h_b, "b"),
        })
        if progress is not None:
            progress.update(len(d))
    n_tasks = len(counts_a)
    cat = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    table = pd.DataFrame({
        "distance": np.repeat(cat["distance"], n_tasks),
        "task": np.tile(np.arange(n_tasks), len(cat["distance"])),
        "counts_ab": cat["counts_ab"].ravel(), "counts_a": np.tile(counts_a, len(cat["distance"])),
        "counts_b": cat["counts_b"].ravel(),
        "height_a_ab": cat["height_a_ab"].ravel(), "height_a": np.tile(height_a, len(cat["distance"])),
        "height_b_ab": cat["height_b_ab"].ravel(), "height_b": cat["height_b"].ravel(),
    })
    tiny = 1e-12  # a task predicting no reads at all gives a fold change of 1, not a division by 0
    table["log2fc_a"] = np.log2((table["height_a_ab"] + tiny) / (table["height_a"] + tiny))
    table["log2fc_b"] = np.log2((table["height_b_ab"] + tiny) / (table["height_b"] + tiny))
    table["log2fc_counts"] = np.log2((table["counts_ab"] + tiny) / (table["counts_a"] + tiny))
    return table


def detrended(values: np.ndarray, detrend: int = DETREND_BP) -> np.ndarray:
    """The curve ``(n,)`` minus its centred moving average over ``detrend`` bp: its oscillation."""
    y = np.asarray(values, dtype=np.float64)
    return y - uniform_filter1d(y, size=detrend, mode="nearest")


def periodicity(values: np.ndarray, min_period: float = MIN_PERIOD, max_period: float = MAX_PERIOD,
                detrend: int = DETREND_BP) -> tuple[float, float]:
    """Dominant period (bp) of a curve sampled every 1 bp, and that peak's share of the band power.

    The curve minus its centred moving average over ``detrend`` bp is Hann-windowed and
    zero-padded to :data:`FFT_POINTS`; the period is ``1 / f`` at the largest power with
    ``1 / max_period <= f <= 1 / min_period``. The share is the power within +-10 % of that
    frequency over the power in the band (near 1 for a clean oscillation, low for noise).
    Returns ``(nan, nan)`` for a curve shorter than ``2 * detrend`` or without variation.
    """
    y = np.asarray(values, dtype=np.float64)
    if len(y) < 2 * detrend or not np.isfinite(y).all():
        return float("nan"), float("nan")
    resid = detrended(y, detrend)
    resid = (resid - resid.mean()) * np.hanning(len(resid))
    if not np.any(resid):
        return float("nan"), float("nan")
    power = np.abs(np.fft.rfft(resid, n=max(FFT_POINTS, len(resid)))) ** 2
    freqs = np.fft.rfftfreq(max(FFT_POINTS, len(resid)), d=1.0)
    band = (freqs >= 1 / max_period) & (freqs <= 1 / min_period)
    peak = np.flatnonzero(band)[np.argmax(power[band])]
    near = band & (np.abs(freqs - freqs[peak]) <= 0.1 * freqs[peak])
    return float(1 / freqs[peak]), float(power[near].sum() / power[band].sum())


def summarize(table: pd.DataFrame, near: int) -> pd.DataFrame:
    """Per (pair, task, measure): mean log2 fold change over distances <= ``near``, and the period."""
    rows = []
    for (pair, task), g in table.groupby(["pair", "task"], sort=False):
        g = g.sort_values("distance")
        for measure in MEASURES:
            period, share = periodicity(g[measure].to_numpy())
            close = g.loc[g["distance"] <= near, measure]
            rows.append({
                "pair": pair, "task": task, "measure": measure,
                "mean_log2fc_near": round(float(close.mean()), 5) if len(close) else np.nan,
                "max_log2fc": round(float(g[measure].max()), 5), "min_log2fc": round(float(g[measure].min()), 5),
                "period_bp": round(period, 3), "period_power_share": round(share, 4),
            })
    return pd.DataFrame(rows)


def pair_label(a: str, b: str) -> str:
    """File and table name of a pair: ``{A}__{B}``."""
    return f"{a}__{b}"


def draw_pair(table: pd.DataFrame, title: str, planted: pd.DataFrame | None = None):
    """Three panels against distance (a matplotlib Figure): log2 FC at A, at B, and of the total
    counts; one line per task (column ``task_name``, or ``task`` holding names). With ``planted``
    (the simulator's curves of the same pair: distance, task, log2fc_a, log2fc_b), each task's
    planted curve is drawn dashed in the task's colour on the A and B panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharex=True)
    titles = {"log2fc_a": "binding at A (profile height)", "log2fc_b": "binding at B (profile height)",
              "log2fc_counts": "total counts, AB / A alone"}
    task_col = "task_name" if "task_name" in table.columns else "task"
    colours = {task: f"C{k}" for k, task in enumerate(pd.unique(table[task_col]))}
    for ax, measure in zip(axes, MEASURES):
        for task, g in table.groupby(task_col, sort=False):
            ax.plot(g["distance"], g[measure], lw=1.2, color=colours[task], label=f"{task} (model)")
            if planted is not None and measure in planted.columns:
                p = planted[(planted["task"].astype(str) == str(task))
                            & planted["distance"].between(g["distance"].min(), g["distance"].max())]
                p = p.sort_values("distance")  # over the distances marginalised
                if len(p):
                    ax.plot(p["distance"], p[measure], lw=1.0, ls="--", color=colours[task], label=f"{task} (planted)")
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(titles[measure], fontsize=10)
        ax.set_xlabel("distance between motif centres (bp)")
        ax.set_ylabel("log2 fold change")
    axes[0].legend(fontsize=7, ncol=2 if planted is not None else 1)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_pair(table: pd.DataFrame, path: str | Path, title: str, planted: pd.DataFrame | None = None) -> None:
    """:func:`draw_pair` saved to ``path``."""
    import matplotlib.pyplot as plt

    fig = draw_pair(table, title, planted)
    fig.savefig(path, dpi=100)
    plt.close(fig)



# --------------------------------------------------------------------------------------------
# Rule marginalize
# --------------------------------------------------------------------------------------------


def marginalize_motif_pairs(
    model_path: str | Path,
    dataset_path: str | Path,
    known_motifs_path: str | Path,
    table_path: str | Path,
    summary_path: str | Path,
    plots_dir: str | Path,
    tasks: Sequence[str],
    interpretation: Mapping[str, Any],
    seed: int,
    device: str = "auto",
    kernels: str = "auto",
    threads: int = 1,
    log: logging.Logger = logging.getLogger(__name__),
) -> pd.DataFrame:
    """Rule ``marginalize``: model + dataset backgrounds -> syntax.tsv, syntax_summary.tsv, plots.

    Args:
        model_path: the trained (or imported) model.
        dataset_path: dataset.npz of rule build_dataset (the backgrounds are shuffles of its windows).
        known_motifs_path: MEME file of the known motifs (``interpretation.motifs`` names them).
        table_path, summary_path: syntax.tsv and syntax_summary.tsv (module docstring).
        plots_dir: folder of the plots ``{A}__{B}.png``, made here.
        tasks: the config's task names (data.tasks); the model must predict them.
        interpretation: the config's ``interpretation`` section (``syntax``, ``motifs``, ``splits``).
        seed, device, kernels: the config's top-level keys.
        threads: the cores the job may use.

    Returns the summary written to ``summary_path``.
    """
    cfg = interpretation
    scfg = cfg["syntax"]
    tasks, seed = list(tasks), int(seed)
    pairs = [tuple(p) for p in scfg["pairs"]]
    # the plots folder is a directory() output: experiments may differ in their pairs
    Path(plots_dir).mkdir(parents=True, exist_ok=True)
    plots = [Path(plots_dir) / f"{pair_label(a, b)}.png" for a, b in pairs]
    known = resolve_known_motifs(read_meme_motifs(known_motifs_path), cfg["motifs"], known_motifs_path)
    for a, b in pairs:
        for label in (a, b):
            if label not in known:
                raise BPNetInputError(
                    f"config key interpretation.syntax.pairs: {label!r} is not a motif label of "
                    f"interpretation.motifs ({', '.join(known)})"
                )
    model = load_checkpoint(model_path, tasks=tasks)
    device = setup_inference(model, device, kernels, threads, log)
    ds = load_dataset(dataset_path)
    index = select_windows(ds.split, cfg["splits"], int(scfg["n_backgrounds"]), seed + 1)
    backgrounds = dinucleotide_shuffle(ds.sequence[index, ds.core], 1, seed)[:, 0]
    log.info("marginalising %d motif pair(s) over %d dinucleotide-shuffled backgrounds of %d bp, distances up "
             "to %d bp, on %s", len(pairs), len(backgrounds), ds.width, scfg["max_distance"], device)
    tables = []
    n_distances = sum(len(pair_layout(len(known[a]), len(known[b]), backgrounds.shape[1], int(scfg["max_distance"]))[2])
                      for a, b in pairs)
    with progress_bar(log, n_distances, "marginalisation", unit="distance") as bar:
        for (a, b), plot in zip(pairs, plots):
            t = marginalize_pair(model, backgrounds, consensus_codes(known[a]), consensus_codes(known[b]),
                                 int(scfg["max_distance"]), int(scfg["height_window"]), int(scfg["batch_size"]), device,
                                 progress=bar)
            t.insert(0, "pair", pair_label(a, b))
            t.insert(1, "motif_a", a)
            t.insert(2, "motif_b", b)
            t["task_name"] = np.asarray(tasks)[t["task"].to_numpy()]
            plot_pair(t, plot, f"{a} at the centre, {b} at distance d downstream (mean of {len(backgrounds)} backgrounds)")
            tables.append(t)
            log.info("pair %s: %d distances", pair_label(a, b), t["distance"].nunique())
    table = pd.concat(tables, ignore_index=True)
    table["task"] = table.pop("task_name")
    summary = summarize(table, int(scfg["near"]))
    table.round(6).to_csv(table_path, sep="\t", index=False)
    summary.to_csv(summary_path, sep="\t", index=False)
    log.info("pair x task: mean log2 fold change of total counts at distances <= %d bp "
             "(every measure and the periods: syntax_summary.tsv and this log file)", int(scfg["near"]))
    counts = summary[summary["measure"] == "log2fc_counts"]
    if len(counts):
        wide = counts.pivot_table(index="pair", columns="task", values="mean_log2fc_near", sort=False)
        for line in wide.to_string(float_format=lambda v: f"{v:+.2f}").splitlines():
            log.info("%s", line)
    for row in summary.itertuples():
        log.info("%-22s %-6s %-13s mean log2FC (d <= %d) %+.3f, period %.2f bp (power share %.2f)", row.pair,
                 row.task, row.measure, scfg["near"], row.mean_log2fc_near, row.period_bp, row.period_power_share,
                 extra=FILE_ONLY)
    return summary
