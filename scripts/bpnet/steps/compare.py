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


def plot_comparison(table: pd.DataFrame, path: str | Path, split: str = "test") -> None:
    """Bars of profile auPRC (bin 1) and count Spearman per task, one bar per experiment/model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = table[table["split"] == split]
    if sub.empty:
        sub = table
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, column, title in zip(axes, ("profile_auprc_bin1", "count_spearman"), ("profile auPRC (bin 1)", "count Spearman")):
        wide = sub.pivot_table(index="task", columns=["experiment", "model"], values=column, sort=False)
        wide.plot.bar(ax=ax, rot=0, width=0.8)
        ax.set_title(f"{title}, {split} split")
        ax.legend(fontsize=7, title=None)
    fig.tight_layout()
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
