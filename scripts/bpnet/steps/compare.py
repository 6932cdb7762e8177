"""Several experiments in one config: seed-ensemble predictions and the comparison table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bpnet.errors import BPNetInputError
from bpnet.io.npz import read_npz, write_npz

# The headline numbers of the comparison: (metric, binsize) -> column name.
HEADLINE = {
    ("auprc", 1): "profile_auprc_bin1",
    ("auprc", 10): "profile_auprc_bin10",
    ("count_spearman", None): "count_spearman",
    ("count_pearson", None): "count_pearson",
    ("jsd", None): "jsd",
    ("n_windows", None): "n_windows",
}


def average_predictions(paths: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Mean of several ``predictions/model.npz`` over the same windows.

    Returns the predictions arrays (``index``, ``profile`` ``(M, W, C)`` averaged, ``tasks``).
    Members that predict other windows or tasks are an error naming both files.
    """
    first = read_npz(paths[0], ["index", "profile", "tasks"], "predictions", "predict")
    total = first["profile"].astype(np.float64)
    for path in paths[1:]:
        other = read_npz(path, ["index", "profile", "tasks"], "predictions", "predict")
        for key in ("index", "tasks"):
            if not np.array_equal(other[key], first[key]):
                raise BPNetInputError(f"predictions {path} and {paths[0]} differ in {key}: an ensemble needs the same windows and tasks")
        total += other["profile"]
    return {"index": first["index"], "profile": (total / len(paths)).astype(np.float32), "tasks": first["tasks"]}


def comparison_table(metrics: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per experiment, model, split and task with the headline metrics as columns.

    Args:
        metrics: ``{experiment: metrics.tsv table}`` (columns model, split, task, metric, binsize, value).
    """
    rows = []
    for exp, table in metrics.items():
        t = table.copy()
        t["binsize"] = pd.to_numeric(t["binsize"], errors="coerce")
        for (model, split, task), group in t.groupby(["model", "split", "task"], sort=False):
            row = {"experiment": exp, "model": model, "split": split, "task": task}
            for (metric, binsize), column in HEADLINE.items():
                sel = group["metric"] == metric
                sel &= group["binsize"].isna() if binsize is None else group["binsize"] == binsize
                row[column] = group.loc[sel, "value"].iloc[0] if sel.any() else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def draw_comparison(table: pd.DataFrame, split: str = "test"):
    """Profile auPRC (bin 1) and count Spearman per task (a matplotlib Figure): one bar per
    experiment or ensemble (its model), the oracle (the truth, the same for every experiment on
    one dataset) once, as a black tick over each task; labelled axes, the legend below the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = table[table["split"] == split]
    if sub.empty:
        sub = table
    models = sub[sub["model"] != "oracle"]
    oracle = sub[sub["model"] == "oracle"]
    experiments = list(pd.unique(models["experiment"]))
    tasks = list(pd.unique(sub["task"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / max(len(experiments), 1)
    x = np.arange(len(tasks))
    panels = (("profile_auprc_bin1", "profile auPRC (bin 1)"), ("count_spearman", "count Spearman"))
    for ax, (column, label) in zip(axes, panels):
        for k, exp in enumerate(experiments):
            rows = models[models["experiment"] == exp].set_index("task")[column]
            ax.bar(x - 0.4 + width * (k + 0.5), [rows.get(t, np.nan) for t in tasks], width, label=exp,
                   color=f"C{k}")
        if len(oracle):
            first = oracle[oracle["experiment"] == oracle["experiment"].iloc[0]].set_index("task")[column]
            ax.hlines([first.get(t, np.nan) for t in tasks], x - 0.42, x + 0.42, colors="k", lw=2,
                      label="oracle (the truth)")
        ax.set_xticks(x, tasks)
        ax.set_ylabel(label)
        ax.set_title(f"{label}, {split} split", fontsize=10)
        ax.set_ylim(bottom=min(0, float(np.nanmin(sub[column])) if sub[column].notna().any() else 0))
    handles, labels = axes[0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda h: (labels[h].startswith("oracle"), h))  # the oracle last
    handles, labels = [handles[h] for h in order], [labels[h] for h in order]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_comparison(table: pd.DataFrame, path: str | Path, split: str = "test") -> None:
    """:func:`draw_comparison` saved to ``path``."""
    import matplotlib.pyplot as plt

    fig = draw_comparison(table, split)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_ensemble(
    members: Sequence[str | Path], out_path: str | Path, log: logging.Logger = logging.getLogger(__name__)
) -> None:
    """Rule ``ensemble_predictions``: the members' predictions averaged into ``out_path``."""
    log.info("averaging %d members: %s", len(members), ", ".join(map(str, members)))
    write_npz(out_path, average_predictions(list(members)))


def compare_experiments(
    metrics: Mapping[str, str | Path],
    table_path: str | Path,
    plot_path: str | Path,
    log: logging.Logger = logging.getLogger(__name__),
) -> pd.DataFrame:
    """Rule ``compare_experiments``: the comparison table and plot of ``{name: metrics.tsv}``."""
    tables = {name: pd.read_csv(path, sep="\t") for name, path in metrics.items()}
    table = comparison_table(tables)
    table.to_csv(table_path, sep="\t", index=False, float_format="%.4f")
    plot_comparison(table, plot_path)
    log.info("compared %d experiments:\n%s", len(tables), table.to_string(index=False))
    return table
