"""Evaluation of predicted tracks against the observed counts: tidy table, JSON summary, plot.

Inputs (formats of the team contract):

* ``dataset.npz`` (loaded with :func:`bpnet.data.dataset.load_dataset`): ``counts`` ``(N, W + 2C, 2T)``,
  ``split``, ``tasks``, ``width`` = W, ``extra_context`` = C. Only the core window
  ``counts[:, C:C + W]`` is scored; task ``t`` is channels ``2t`` (+ strand) and ``2t + 1`` (one
  channel ``t`` when the tasks are unstranded).
* ``predictions/{name}.npz``: ``index`` ``(M,)`` rows of the dataset, ``profile`` ``(M, W, 2T)``
  predicted expected counts, ``tasks`` ``(T,)``. ``name`` is ``model`` or ``oracle`` (the true
  expected-rate tracks of the simulated dataset: what a perfect model would predict, so the
  reference ceiling beside the model; only the read sampling noise separates it from the data).

Output: a tidy table with columns ``model, split, task, metric, binsize, value``. Metrics (see
:mod:`bpnet.steps.metrics` for the definitions):

==================  =======  ==========================================================
metric              binsize  meaning
==================  =======  ==========================================================
auprc               b        profile auPRC, the paper's definition
random_auprc        b        the same with shuffled predictions (official baseline)
n_positive_bins     b        positive bins behind the auPRC (kept regions, both strands)
n_negative_bins     b        negative bins behind the auPRC
n_regions_kept      -        windows passing the auPRC read-count filter
count_spearman      -        Spearman of log(1 + total) observed vs predicted
count_pearson       -        Pearson of the same
count_mse           -        mean squared error of the same
jsd                 -        mean Jensen-Shannon distance (ChromBPNet style, natural log)
nll                 -        mean multinomial NLL per window and strand (nats)
n_windows           -        windows of the split scored
==================  =======  ==========================================================
"""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bpnet.data.dataset import load_dataset, strands_per_task
from bpnet.errors import BPNetInputError
from bpnet.io.npz import load_predictions, release_pages, save_predictions
from bpnet.io.tracks import read_windows
from bpnet.progress import FILE_ONLY
from bpnet.steps import metrics as M
from bpnet.steps import metrics_streamed as MS

BINNED_METRICS = ("auprc", "random_auprc", "n_positive_bins", "n_negative_bins")
UNBINNED_METRICS = (
    "n_regions_kept", "count_spearman", "count_pearson", "count_mse", "jsd", "nll", "n_windows",
)
COLUMNS = ["model", "split", "task", "metric", "binsize", "value"]

# Avsec et al. 2021, from the manuscript notebooks (the figures behind its Fig. 1 and Extended Data). Real mouse ESC
# ChIP-nexus data, not the simulated dataset: shown beside our numbers for orientation only.
PAPER_REAL_DATA = {
    "note": (
        "The paper's numbers (Avsec et al. 2021, manuscript notebooks) for BPNet-OSKN on the REAL "
        "mouse ESC ChIP-nexus data. They are not computed by this pipeline and are not comparable "
        "to a simulated dataset; they are given for orientation only."
    ),
    "valid": {
        "chromosomes": ["chr2", "chr3", "chr4"],
        "model": "multi-task BPNet without bias correction",
        "profile_auprc_binsize_1": {
            "Oct4": 0.183, "Sox2": 0.380, "Nanog": 0.449, "Klf4": 0.157, "mean": 0.292,
        },
        "count_spearman": {
            "Oct4": 0.479, "Sox2": 0.442, "Nanog": 0.601, "Klf4": 0.577, "mean": 0.525,
        },
    },
    "test": {
        "chromosomes": ["chr1", "chr8", "chr9"],
        "count_pearson": {"Oct4": 0.627, "Sox2": 0.612, "Nanog": 0.595, "Klf4": 0.643},
        "count_pearson_replicate_concordance": {
            "Oct4": 0.955, "Sox2": 0.874, "Nanog": 0.980, "Klf4": 0.930,
        },
    },
}


# ---------------------------------------------------------------------------------------------
# Input checks


def _strands(dataset: Any) -> int:
    """Channels per task of a dataset (2, or 1 for unstranded tasks)."""
    return strands_per_task(np.asarray(dataset.counts).shape[-1], len(np.asarray(dataset.tasks).ravel()))


def check_dataset_tasks(dataset: Any, dataset_path: str, tasks: Sequence[str]) -> None:
    """The dataset's tasks and channels must be the config's ``data.tasks``, in order."""
    ds_tasks = [str(t) for t in np.asarray(dataset.tasks).ravel()]
    if ds_tasks != list(tasks):
        raise BPNetInputError(
            f"{dataset_path} holds tasks {ds_tasks} but config key data.tasks lists "
            f"{list(tasks)}; rebuild the dataset for this config"
        )
    strands_per_task(np.asarray(dataset.counts).shape[-1], len(tasks), f"{dataset_path}: counts")


def check_thresholds(evaluation: Mapping[str, Any]) -> None:
    """The auPRC thresholds must satisfy 0 <= neg_max_threshold <= pos_min_threshold."""
    pos = evaluation.get("pos_min_threshold", M.POS_MIN_THRESHOLD)
    neg = evaluation.get("neg_max_threshold", M.NEG_MAX_THRESHOLD)
    if not 0 <= neg <= pos:
        raise BPNetInputError(
            f"config key evaluation.neg_max_threshold ({neg}) must lie between 0 and "
            f"evaluation.pos_min_threshold ({pos})"
        )


# ---------------------------------------------------------------------------------------------
# Evaluation


def _split_rows(dataset: Any, index: np.ndarray, split: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Dataset rows ``(n,)`` of one split (increasing) and the prediction rows ``(n,)`` of the
    same windows; a window without a prediction is an error."""
    splits = np.asarray(dataset.split).astype(str)
    rows = np.flatnonzero(splits == split)
    lookup = np.full(len(splits), -1, dtype=np.int64)
    lookup[index] = np.arange(len(index))
    prow = lookup[rows]
    if (prow < 0).any():
        raise BPNetInputError(
            f"predictions {name!r} lack {int((prow < 0).sum())} of the {len(rows)} {split} "
            f"windows (first: dataset row {rows[prow < 0][0]})"
        )
    return rows, prow


# Mapped bytes a task reads before it releases them (bpnet.io.npz.release_pages).
RELEASE_BYTES = 256 * 2**20


class _TaskRows:
    """Observed core counts and predictions of one task at some windows, read a chunk at a time
    (the dataset and the predictions stay memory-mapped, #17).

    ``counts(i)`` / ``profile(i)`` / ``probs(i)`` give ``(k, W, S)`` float64 of windows ``i``
    (positions in ``rows``); task ``t`` is channels ``S t .. S t + S - 1``.
    """

    def __init__(self, dataset: Any, profile: np.ndarray, rows: np.ndarray, prow: np.ndarray, t: int):
        self.dataset, self.pred, self.rows, self.prow = dataset, profile, rows, prow
        self.core = slice(int(dataset.extra_context), int(dataset.extra_context) + int(dataset.width))
        s = _strands(dataset)
        self.channels = slice(s * t, s * t + s)
        self._mapped = 0  # bytes of mapped pages read since they were last released

    def _release(self, rows: int, row_bytes: int) -> None:
        # the pages read stay mapped, and count as this process's memory, until released
        self._mapped += rows * row_bytes
        if self._mapped > RELEASE_BYTES:
            release_pages(self.dataset.counts, self.pred)
            self._mapped = 0

    def counts(self, i: np.ndarray) -> np.ndarray:
        out = np.asarray(self.dataset.counts[self.rows[i], self.core, self.channels], dtype=np.float64)
        self._release(len(out), self.dataset.counts[0].nbytes)
        return out

    def profile(self, i: np.ndarray) -> np.ndarray:
        out = np.asarray(self.pred[self.prow[i], :, self.channels], dtype=np.float64)
        self._release(len(out), self.pred[0].nbytes)
        return out

    def probs(self, i: np.ndarray) -> np.ndarray:
        return M.profile_to_probs(self.profile(i))

    def window_scores(
        self, which: np.ndarray, shapes: bool = True, pos_min_threshold: float = M.POS_MIN_THRESHOLD,
        required_min_pos_counts: float = M.REQUIRED_MIN_POS_COUNTS, chunk: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Per-window numbers of windows ``which`` (positions in ``rows``), one chunk at a time:
        ``obs_total`` and ``pred_total`` ``(n,)`` (reads summed over positions and strands) and,
        with ``shapes``, ``jsd`` and ``nll`` ``(n, 2)`` and the auPRC region filter ``keep``
        ``(n,)`` (:func:`bpnet.steps.metrics.regions_kept`)."""
        keys = ("obs_total", "pred_total") + (("jsd", "nll", "keep") if shapes else ())
        out: dict[str, list] = {k: [] for k in keys}
        chunk = chunk or MS.CHUNK_ROWS
        for lo in range(0, len(which), chunk):
            i = which[lo:lo + chunk]
            obs, pred = self.counts(i), self.profile(i)
            out["obs_total"].append(obs.sum(axis=(1, 2)))
            out["pred_total"].append(pred.sum(axis=(1, 2)))
            if shapes:
                probs = M.profile_to_probs(pred)
                out["jsd"].append(M.jsd_per_window(obs, probs))
                out["nll"].append(M.multinomial_nll_per_window(obs, probs))
                out["keep"].append(M.regions_kept(obs, pos_min_threshold, required_min_pos_counts))
        s = self.channels.stop - self.channels.start
        empty = {"jsd": np.zeros((0, s)), "nll": np.zeros((0, s)), "keep": np.zeros(0, bool)}
        return {k: np.concatenate(v) if v else empty.get(k, np.zeros(0)) for k, v in out.items()}


def evaluate(
    dataset: Any,
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    splits: Sequence[str],
    binsizes: Sequence[int],
    tasks: Sequence[str],
    seed: int = 0,
    pos_min_threshold: float = M.POS_MIN_THRESHOLD,
    neg_max_threshold: float = M.NEG_MAX_THRESHOLD,
    required_min_pos_counts: float = M.REQUIRED_MIN_POS_COUNTS,
    log: logging.Logger | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Score every prediction set on every split and task.

    Args:
        dataset: loaded ``dataset.npz`` (``counts`` ``(N, W + 2C, 2T)``, ``split`` ``(N,)``,
            ``tasks``, ``width``, ``extra_context``).
        predictions: ``{name: (index (M,), profile (M, W, 2T))}``, checked by
            :func:`load_predictions`.
        splits: splits to score, e.g. ``["test", "valid"]``.
        binsizes: auPRC bin sizes, e.g. ``[1, 2, 5, 10]``.
        tasks: task names in channel order (task ``t`` is channels ``2t, 2t + 1``).
        seed: seed of the random auPRC baseline.
        threads: tasks scored at once (the table does not depend on it).

    Returns:
        Tidy DataFrame ``model, split, task, metric, binsize, value`` (binsize is a nullable
        integer, missing for unbinned metrics). Why an auPRC is NaN is listed in
        ``table.attrs["notes"]``. A split without windows gives ``n_windows = 0`` and NaN metrics.

    Background windows (``windows.background``: no task) are left out of the peak metrics
    above. With background in a split, each task also gets ``background_auroc`` /
    ``background_auprc`` / ``background_random_auprc`` (predicted totals separating the task's
    peak windows from background windows, :func:`bpnet.steps.metrics.separation_metrics`),
    ``count_spearman_all`` / ``count_pearson_all`` (totals over peaks and background together)
    and ``n_background``.
    """
    log = log or logging.getLogger("bpnet")
    check_dataset_tasks(dataset, "the dataset", tasks)
    rows: list[tuple] = []
    notes: list[str] = []

    def score_task(name, split, t, task, reader, window_tasks):
        """Rows, notes and the log line of one task (the unit run in parallel), read from
        ``reader`` (:class:`_TaskRows` over the split's windows) a chunk at a time."""
        out, task_notes = [], []

        def add(metric, binsize, value):
            out.append((name, split, task, metric, binsize, float(value)))

        is_bg = window_tasks == ""
        peaks = np.flatnonzero(~is_bg)  # peak metrics: peak windows only
        n = len(peaks)
        per_window = reader.window_scores(
            np.arange(len(window_tasks)), True, pos_min_threshold, required_min_pos_counts,
        )
        auprcs = MS.profile_auprc_streamed(
            lambda i: reader.counts(peaks[i]), lambda i: reader.probs(peaks[i]), n, binsizes,
            per_window["keep"][peaks],
            pos_min_threshold=pos_min_threshold, neg_max_threshold=neg_max_threshold, seed=seed,
        )
        for b, res in auprcs.items():
            add("auprc", b, res.auprc)
            add("random_auprc", b, res.random_auprc)
            add("n_positive_bins", b, res.n_positives)
            add("n_negative_bins", b, res.n_negatives)
            if res.reason and n:  # an empty split has its own note
                task_notes.append(f"{name}/{split}/{task}/binsize {b}: {res.reason}")
        # Negative predicted totals cannot occur (profiles are checked >= 0).
        cm = M.count_metrics(per_window["obs_total"][peaks], per_window["pred_total"][peaks])
        jsd, nll = per_window["jsd"][peaks], per_window["nll"][peaks]
        add("n_regions_kept", None, per_window["keep"][peaks].sum())
        add("count_spearman", None, cm["spearman"])
        add("count_pearson", None, cm["pearson"])
        add("count_mse", None, cm["mse"])
        # as M.jensen_shannon / M.multinomial_nll: mean over windows and strands (with reads)
        add("jsd", None, np.mean(jsd[np.isfinite(jsd)]) if np.isfinite(jsd).any() else np.nan)
        add("nll", None, nll.mean() if nll.size else np.nan)
        add("n_windows", None, n)
        if is_bg.any():
            # the task's peaks against the background (other tasks' peaks left out)
            is_peak = np.array([task in wt.split(",") for wt in window_tasks])
            both_sel = is_peak | is_bg
            obs_total, pred_total = per_window["obs_total"][both_sel], per_window["pred_total"][both_sel]
            sep = M.separation_metrics(pred_total, is_peak[both_sel])
            add("background_auroc", None, sep["auroc"])
            add("background_auprc", None, sep["auprc"])
            add("background_random_auprc", None, sep["random_auprc"])
            both = M.count_metrics(obs_total, pred_total)
            add("count_spearman_all", None, both["spearman"])
            add("count_pearson_all", None, both["pearson"])
            add("n_background", None, int(is_bg.sum()))
        first = next(iter(auprcs.values()), None)
        line = "%s %s %s: %d windows, auPRC %s (random %s) at binsize %s, count Pearson %.3f" % (
            name, split, task, n, *(
                (f"{first.auprc:.3f}", f"{first.random_auprc:.3f}", binsizes[0]) if first else ("-", "-", "-")
            ), cm["pearson"],
        )
        return out, task_notes, line

    # Tasks are scored in parallel threads: the time goes to numpy sorts and reductions, which
    # release the GIL. Results are gathered in task order. Each task reads its windows a chunk
    # at a time, so memory is bounded by the scored bins of one task per thread (#17).
    all_window_tasks = np.asarray(dataset.window_tasks).astype(str)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for name, (index, profile) in predictions.items():
            for split in splits:
                split_rows, prow = _split_rows(dataset, np.asarray(index), split, name)
                window_tasks = all_window_tasks[split_rows]
                if not (window_tasks != "").any():
                    notes.append(f"{name}/{split}: the dataset has no {split} windows")
                    log.warning("%s", notes[-1])
                jobs = [pool.submit(score_task, name, split, t, task,
                                    _TaskRows(dataset, profile, split_rows, prow, t), window_tasks)
                        for t, task in enumerate(tasks)]
                for job in jobs:
                    task_rows, task_notes, line = job.result()
                    rows.extend(task_rows)
                    for note in task_notes:
                        notes.append(note)
                        log.warning("auPRC is NaN for %s", note)
                    log.info("%s", line, extra=FILE_ONLY)

    table = pd.DataFrame(rows, columns=COLUMNS)
    table["binsize"] = table["binsize"].astype("Int64")
    table.attrs["notes"] = notes
    return table


def log_totals(
    dataset: Any,
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    split: str,
    tasks: Sequence[str],
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``{model: {task: (observed, predicted)}}`` log(1 + total) per peak window ``(n,)`` of a split."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    window_tasks = np.asarray(dataset.window_tasks).astype(str)
    for name, (index, profile) in predictions.items():
        split_rows, prow = _split_rows(dataset, np.asarray(index), split, name)
        # background windows (no task) are left out, as in evaluate
        peaks = np.flatnonzero(window_tasks[split_rows] != "")
        out[name] = {}
        for t, task in enumerate(tasks):
            totals = _TaskRows(dataset, profile, split_rows, prow, t).window_scores(peaks, shapes=False)
            out[name][task] = (np.log1p(totals["obs_total"]), np.log1p(totals["pred_total"]))
    return out


# ---------------------------------------------------------------------------------------------
# Outputs


def _clean(value: float) -> float | None:
    """JSON has no NaN: missing numbers become null."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def summarize(table: pd.DataFrame) -> dict:
    """JSON-ready summary: per model, split and task the headline numbers, plus task means.

    ``{"models": {model: {split: {task | "mean": {metric: value | {binsize: value}}}}},
    "notes": [...], "paper_real_data": PAPER_REAL_DATA}``; NaN becomes null. The paper's numbers
    are there only when a task is one of the paper's (Oct4, Sox2, Nanog, Klf4).
    """
    models: dict = {}
    for (model, split), part in table.groupby(["model", "split"], sort=False):
        per_task: dict = {}
        for task, rows in part.groupby("task", sort=False):
            entry: dict = {}
            for metric in ("auprc", "random_auprc"):
                sel = rows[rows.metric == metric]
                entry[metric] = {str(int(b)): _clean(float(v)) for b, v in zip(sel.binsize, sel.value)}
            for metric in ("count_spearman", "count_pearson", "count_mse", "jsd", "nll",
                           "n_windows", "n_regions_kept"):
                sel = rows[rows.metric == metric]
                value = _clean(float(sel.value.iloc[0])) if len(sel) else None
                entry[metric] = int(value) if metric.startswith("n_") and value is not None else value
            per_task[str(task)] = entry
        # Task means, like the official average_profile / average_counts (NaN tasks skipped).
        mean: dict = {}
        for metric in ("auprc", "random_auprc"):
            sel = part[part.metric == metric]
            mean[metric] = {
                str(int(b)): _clean(float(g.value.mean())) for b, g in sel.groupby("binsize")
            }
        for metric in ("count_spearman", "count_pearson", "count_mse", "jsd", "nll"):
            mean[metric] = _clean(float(part[part.metric == metric].value.mean()))
        per_task["mean"] = mean
        models.setdefault(str(model), {})[str(split)] = per_task
    summary = {
        "description": (
            "Metrics of this pipeline's predictions (models) on its own dataset; 'oracle' scores "
            "the true expected-rate tracks (simulated data only), the ceiling for any model. "
            "Full table: metrics.tsv."
        ),
        "models": models,
        "notes": list(table.attrs.get("notes", [])),
    }
    # The paper's numbers only beside the paper's factors (#19: not in a yeast MNase-seq summary).
    if set(map(str, table.task)) & set(PAPER_REAL_DATA["valid"]["count_spearman"]):
        summary["paper_real_data"] = PAPER_REAL_DATA
    return summary


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write the tidy table as TSV: empty binsize for unbinned metrics, ``NaN`` for no value."""
    out = table.copy()
    out["binsize"] = out["binsize"].astype(object).where(out["binsize"].notna(), "")
    out.to_csv(path, sep="\t", index=False, na_rep="NaN")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a metrics.tsv back (binsize as a nullable integer)."""
    table = pd.read_csv(path, sep="\t")
    table["binsize"] = table["binsize"].astype("Int64")
    return table


def plot_metrics(
    table: pd.DataFrame,
    totals: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    split: str,
    path: str | Path,
) -> None:
    """Two rows of panels, one column per task, for one split.

    Top: auPRC against bin size for each model (solid) and its random baseline (dotted).
    Bottom: observed vs predicted log(1 + total counts) per window, one colour per model.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table.task))
    models = list(dict.fromkeys(table.model))
    colors = {m: f"C{i}" for i, m in enumerate(models)}
    fig, axes = plt.subplots(2, max(len(tasks), 1), figsize=(3.6 * max(len(tasks), 1), 7),
                             squeeze=False)
    part = table[table.split == split]
    for j, task in enumerate(tasks):
        ax = axes[0, j]
        for m in models:
            for metric, style, label in (("auprc", "-o", m), ("random_auprc", ":", f"{m} random")):
                sel = part[(part.model == m) & (part.task == task) & (part.metric == metric)]
                ax.plot(sel.binsize.astype(float), sel.value, style, color=colors[m], label=label)
        binsizes = sorted({int(b) for b in part[part.metric == "auprc"].binsize.dropna()})
        if binsizes:
            ax.set_xscale("log")
            ax.set_xticks(binsizes, [str(b) for b in binsizes])
            ax.minorticks_off()
        ax.set_title(f"{task} ({split})")
        ax.set_xlabel("bin size (bp)")
        ax.set_ylabel("profile auPRC")
        ax.set_ylim(0, 1)
        ax = axes[1, j]
        lo, hi = np.inf, -np.inf
        for m in models:
            obs, pred = totals.get(m, {}).get(task, (np.array([]), np.array([])))
            sel = part[(part.model == m) & (part.task == task) & (part.metric == "count_pearson")]
            r = float(sel.value.iloc[0]) if len(sel) else np.nan
            ax.scatter(obs, pred, s=4 if obs.size > 500 else 12, alpha=0.4, color=colors[m],
                       label=f"{m} (r={r:.2f})")
            if obs.size:
                lo = min(lo, obs.min(), pred.min())
                hi = max(hi, obs.max(), pred.max())
        if np.isfinite(lo):
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_xlabel("observed log(1 + total)")
        ax.set_ylabel("predicted log(1 + total)")
        ax.legend(fontsize=7, loc="best")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def top_peak_rows(dataset: Any, index: np.ndarray, split: str, n: int) -> np.ndarray:
    """The ``n`` distinct windows of ``split`` with the most observed reads, per task.

    Args:
        dataset: the loaded dataset (``counts`` ``(N, W + 2C, S T)``, ``split`` ``(N,)``).
        index: ``(M,)`` dataset rows that have predictions; only these are candidates.
        split: the split to pick from.
        n: windows per task.

    Returns:
        int64 ``(T, k)`` dataset rows, ``k = min(n, windows of the split)``, most reads first (the
        task's core window summed over positions and strands; ties keep dataset order). A window
        whose core overlaps one already picked for the task is passed over (peaks of several
        tasks, or summits a few bp apart, make overlapping windows with the same reads); a task
        with fewer distinct windows is padded with -1.
    """
    splits = np.asarray(dataset.split).astype(str)
    index = np.asarray(index, dtype=np.int64)
    rows = np.sort(index[splits[index] == split])
    c, w = int(dataset.extra_context), int(dataset.width)
    counts = np.asarray(dataset.counts)
    s = _strands(dataset)
    n_tasks = counts.shape[-1] // s
    chrom, start = np.asarray(dataset.chrom).astype(str)[rows], np.asarray(dataset.start, dtype=np.int64)[rows]
    # (m, W, T, S) summed over positions and strands; int64 so that negating cannot wrap
    totals = counts[rows, c:c + w].reshape(len(rows), w, n_tasks, s).sum(axis=(1, 3), dtype=np.int64)
    k = min(n, len(rows))
    out = np.full((n_tasks, k), -1, dtype=np.int64)
    for t in range(n_tasks):
        picked: list[int] = []
        for i in np.argsort(-totals[:, t], kind="stable"):
            if len(picked) == k:
                break
            if any(chrom[j] == chrom[i] and abs(start[j] - start[i]) < w for j in picked):
                continue
            picked.append(int(i))
        out[t, :len(picked)] = rows[picked]
    return out


def _robust_max(values: np.ndarray, keep: int = 3) -> float:
    """The largest value once the ``keep`` largest are set aside (spikes of a base or two)."""
    if len(values) <= keep:
        return float(values.max(initial=0))
    return float(np.partition(values, len(values) - keep - 1)[len(values) - keep - 1])


# Line styles of the prediction sets in the profile plots: the model solid on top, the oracle dashed.
_PRED_STYLES = [("C3", "-", 1.3, 4), ("0.15", "--", 1.0, 3), ("C2", ":", 1.0, 3), ("C4", "-.", 1.0, 3)]
# + and - strand of the observed reads
_STRAND_COLOURS = ("#4C72B0", "#DD8452")


def draw_top_peaks(
    dataset: Any,
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    tasks: Sequence[str],
    split: str,
    n: int,
    flank: int = 100,
):
    """The figure of :func:`plot_top_peaks` and its rows: ``(matplotlib Figure, rows (T, k))``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(predictions)
    common = np.asarray(predictions[names[0]][0], dtype=np.int64)
    for name in names[1:]:
        common = np.intersect1d(common, predictions[name][0])
    top = top_peak_rows(dataset, common, split, n)
    lookups = {}
    for name, (index, _) in predictions.items():
        lookup = np.full(len(dataset.split), -1, dtype=np.int64)
        lookup[index] = np.arange(len(index))
        lookups[name] = lookup
    c, w = int(dataset.extra_context), int(dataset.width)
    counts = np.asarray(dataset.counts)
    chrom, start = np.asarray(dataset.chrom).astype(str), np.asarray(dataset.start)
    k = max(top.shape[1], 1)
    s = _strands(dataset)
    centre = w // 2  # windows are centred on the summit
    lo, hi = max(0, centre - flank), min(w, centre + flank)
    edges = np.arange(lo, hi + 1) - centre
    x = np.arange(lo, hi) - centre + 0.5  # base centres
    fig, axes = plt.subplots(k, len(tasks), figsize=(3.4 * len(tasks), 2.3 * k), squeeze=False, sharex=True)
    for j, task in enumerate(tasks):
        for i in range(k):
            ax = axes[i, j]
            row = top[j, i] if i < top.shape[1] else -1
            if row < 0:
                ax.set_axis_off()
                continue
            obs = counts[row, c + lo:c + hi, s * j:s * j + s].astype(np.float32)
            preds = [predictions[name][1][lookups[name][row], lo:hi, s * j:s * j + s] for name in names]
            for strand in range(s):
                sign = -1.0 if strand == 1 else 1.0
                label = ("observed +", "observed -")[strand] if s == 2 else "observed"
                ax.stairs(sign * obs[:, strand], edges, fill=True, color=_STRAND_COLOURS[strand], alpha=0.45,
                          lw=0, label=label)
                for m, (name, pred) in enumerate(zip(names, preds)):
                    colour, style, width, z = _PRED_STYLES[m % len(_PRED_STYLES)]
                    ax.plot(x, sign * pred[:, strand], color=colour, ls=style, lw=width, zorder=z,
                            label=name if strand == 0 else None)
            # the scale of the predictions and of the observed reads without their few single-base
            # spikes (which would flatten everything else); clipped spikes get a tick at the edge
            limits = [max(_robust_max(obs[:, st]), *(float(p[:, st].max()) for p in preds), 1.0) * 1.15
                      for st in range(s)]
            for st in range(s):
                sign = -1.0 if st == 1 else 1.0
                over = np.flatnonzero(obs[:, st] > limits[st])
                if len(over):
                    ax.plot(x[over], np.full(len(over), sign * limits[st]), ls="none",
                            marker="^" if st == 0 else "v", ms=3, color=_STRAND_COLOURS[st], clip_on=False,
                            label="clipped spike" if st == 0 else None)
            ax.set_ylim(-limits[1] if s == 2 else 0, limits[0])
            ax.set_xlim(edges[0], edges[-1])
            ax.axhline(0, color="k", lw=0.5)
            g0 = int(start[row]) + lo
            ax.set_title(f"{task} #{i + 1}  {chrom[row]}:{g0:,}-{g0 + hi - lo:,}  "
                         f"({int(counts[row, c:c + w, s * j:s * j + s].sum())} reads)", fontsize=8)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel("reads per bp" + (" (+ up, - down)" if s == 2 else ""), fontsize=8)
            if i == k - 1:
                ax.set_xlabel(f"bp from the summit ({split} windows)", fontsize=8)
    seen: dict[str, Any] = {}
    for ax in axes.ravel():  # every label once (a clipped spike may be in any panel)
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    handles, labels = list(seen.values()), list(seen)
    order = sorted(range(len(labels)), key=lambda h: (not labels[h].startswith("observed"),
                                                      labels[h] == "clipped spike", h))
    fig.legend([handles[h] for h in order], [labels[h] for h in order], loc="lower center", ncol=len(labels),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig, top


def plot_top_peaks(
    dataset: Any,
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    tasks: Sequence[str],
    split: str,
    n: int,
    path: str | Path,
    flank: int = 100,
) -> np.ndarray:
    """Observed vs predicted profiles at the ``n`` distinct windows of ``split`` with the most reads.

    One panel per task (columns) and rank (rows), zoomed to +-``flank`` bp around the summit (the
    window centre), the window's coordinates in the title. Observed 5'-end counts are filled
    steps, + strand up (blue) and - strand mirrored down (orange); each prediction set
    (``{name: (index (M,), profile (M, W, S T))}``) is a line on the same scale, the model solid and
    on top, the oracle dashed. Windows are chosen among the rows every prediction set covers.

    Returns:
        the plotted dataset rows, int64 ``(T, k)`` as :func:`top_peak_rows`.
    """
    import matplotlib.pyplot as plt

    fig, top = draw_top_peaks(dataset, predictions, tasks, split, n, flank)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return top


def load_scored(
    dataset_path: str,
    predictions: Mapping[str, str],
    tasks: Sequence[str],
    splits: Sequence[str],
    log: logging.Logger = logging.getLogger(__name__),
) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The dataset and ``{name: (index, profile)}`` of every predictions file, each checked
    against the dataset (tasks, and a prediction for every window of ``splits``)."""
    dataset = load_dataset(dataset_path)
    check_dataset_tasks(dataset, dataset_path, list(tasks))
    scored = {}
    for name, path in predictions.items():
        scored[name] = load_predictions(path, dataset, dataset_path, list(splits))
        log.info("read %s: %d windows from %s", name, len(scored[name][0]), path)
    return dataset, scored


def _plot_split(dataset: Any, splits: Sequence[str]) -> str:
    """The first of ``splits`` that has windows (test by default)."""
    present = set(np.asarray(dataset.split).astype(str))
    return next((s for s in splits if s in present), splits[0])


def evaluate_predictions(
    dataset_path: str,
    predictions: Mapping[str, str],
    tasks: Sequence[str],
    evaluation: Mapping[str, Any],
    metrics_path: str,
    summary_path: str,
    plot_path: str,
    seed: int = 0,
    threads: int = 1,
    log: logging.Logger = logging.getLogger(__name__),
) -> pd.DataFrame:
    """Rule ``evaluate``: metrics.tsv, summary.json and metrics.png of every prediction set.

    Args:
        dataset_path: dataset.npz.
        predictions: ``{name: predictions file}`` (``model``, and ``oracle`` with truth tracks).
        tasks: task names, in the dataset's order.
        evaluation: the config's ``evaluation`` section (splits, binsizes, thresholds).
        metrics_path, summary_path, plot_path: the outputs.
        seed: the seed of the random-baseline auPRC.
        threads: tasks scored in parallel.

    Returns the metrics table.
    """
    evaluation = dict(evaluation)
    check_thresholds(evaluation)
    splits = list(evaluation["splits"])
    dataset, scored = load_scored(dataset_path, predictions, tasks, splits, log)

    table = evaluate(
        dataset, scored, splits, list(evaluation["binsizes"]), list(tasks),
        seed=int(seed),
        pos_min_threshold=evaluation.get("pos_min_threshold", M.POS_MIN_THRESHOLD),
        neg_max_threshold=evaluation.get("neg_max_threshold", M.NEG_MAX_THRESHOLD),
        required_min_pos_counts=evaluation.get(
            "required_min_pos_counts", M.REQUIRED_MIN_POS_COUNTS
        ),
        log=log,
        threads=threads,
    )
    write_table(table, metrics_path)
    summary = summarize(table)
    Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    plot_split = _plot_split(dataset, splits)
    totals = log_totals(dataset, scored, plot_split, list(tasks))
    plot_metrics(table, totals, plot_split, plot_path)
    for line in summary_lines(summary):
        log.info("%s", line)
    return table


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The headline numbers of :func:`summarize` as a small table, task means rounded to 3
    decimals: one row per model and split, auPRC per bin size, count Spearman and Pearson, JSD."""
    rows = []
    for name, per_split in summary["models"].items():
        for split, per_task in per_split.items():
            m = per_task["mean"]
            auprc = {f"auPRC@{b}": v for b, v in m["auprc"].items()}
            rows.append({"model": name, "split": split, **auprc, "count Spearman": m["count_spearman"],
                         "count Pearson": m["count_pearson"], "JSD": m["jsd"]})
    if not rows:
        return []
    table = pd.DataFrame(rows)
    text = table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
    return ["metrics, mean over tasks (metrics.tsv has every task and bin size):", *text.splitlines()]


def oracle_predictions(
    dataset_path: str,
    truth_bigwigs: Sequence[str],
    tasks: Sequence[str],
    splits: Sequence[str],
    out_path: str,
    log: logging.Logger = logging.getLogger(__name__),
) -> None:
    """Rule ``oracle_predictions``: the true expected-rate tracks at the evaluation windows.

    Reads ``truth_bigwigs`` (task1 +, task1 -, task2 +, ...) over the core window of every
    dataset row of ``splits`` and writes them in the predictions format.
    """
    tasks, truth, splits = list(tasks), [str(p) for p in truth_bigwigs], list(splits)
    if len(truth) != 2 * len(tasks):
        raise BPNetInputError(
            f"config key data.truth: expected a pos and a neg bigWig for each of the tasks "
            f"{tasks} ({2 * len(tasks)} files), got {len(truth)}"
        )
    dataset = load_dataset(dataset_path)
    check_dataset_tasks(dataset, dataset_path, tasks)
    rows = np.flatnonzero(np.isin(np.asarray(dataset.split).astype(str), splits))
    log.info("reading %d truth tracks over %d windows of %s", len(truth), len(rows), splits)
    profile = read_windows(
        truth, np.asarray(dataset.chrom)[rows], np.asarray(dataset.start)[rows],
        int(dataset.width), dtype=np.float32,
    )
    if (profile < 0).any():
        raise BPNetInputError(
            f"truth bigWigs {truth} hold negative values; expected rates must be >= 0"
        )
    save_predictions(out_path, rows, profile, tasks)
    log.info("wrote oracle predictions for %d windows to %s", len(rows), out_path)


def profile_plots(
    dataset_path: str,
    predictions: Mapping[str, str],
    tasks: Sequence[str],
    splits: Sequence[str],
    n_windows: int,
    plot_path: str,
    log: logging.Logger = logging.getLogger(__name__),
    flank: int = 100,
) -> None:
    """Rule ``profile_plots``: observed vs predicted profiles at the top peaks of each task,
    in the first of ``splits`` that has windows (test by default), +-``flank`` bp around the summit."""
    dataset, scored = load_scored(dataset_path, predictions, tasks, splits, log)
    split = _plot_split(dataset, list(splits))
    top = plot_top_peaks(dataset, scored, list(tasks), split, int(n_windows), plot_path, int(flank))
    for task, rows in zip(tasks, top):
        log.info("%s: top %s windows are dataset rows %s", task, split, rows.tolist())
