"""In-silico marginalisation: layout, insertion, periodicity, a model with known syntax, the rule."""

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from bpnet.errors import BPNetInputError
from bpnet.interpret.syntax import (
    consensus_codes,
    insert_motif,
    marginalize_motif_pairs,
    marginalize_pair,
    pair_layout,
    periodicity,
    summarize,
)
from bpnet.io.sequence import decode, encode
from bpnet.model.network import BPNet, BPNetConfig, init_weights
from bpnet.model.weights import save_checkpoint

LOG = logging.getLogger("test_syntax")
MEME = str(resources.files("bpnet").joinpath("data/oskn_motifs.meme"))
NANOG = encode("GCAATCA")


def test_consensus_and_insert():
    pfm = np.array([[0.1, 0.7, 0.1, 0.1], [0.9, 0.0, 0.05, 0.05], [0.2, 0.2, 0.2, 0.4]])
    assert decode(consensus_codes(pfm)) == "CAT"
    bg = np.zeros((2, 10), dtype=np.uint8)
    out = insert_motif(bg, encode("CGT"), np.array([1, 6]))
    assert [decode(r) for r in out] == ["ACGTAAAAAA", "AAAAAACGTA"]
    assert (bg == 0).all()  # a copy
    with pytest.raises(BPNetInputError, match="does not fit"):
        insert_motif(bg, encode("CGT"), 8)


def test_pair_layout():
    centre, start_a, d = pair_layout(7, 8, 1000, 150)
    assert centre == 500 and start_a == 497
    # at the smallest distance B starts right where A ends
    assert centre + d[0] - 8 // 2 == start_a + 7 and d[-1] == 150 and (np.diff(d) == 1).all()
    with pytest.raises(BPNetInputError, match="max_distance"):
        pair_layout(7, 8, 300, 160)
    with pytest.raises(BPNetInputError, match="do not overlap"):
        pair_layout(15, 15, 1000, 10)


def test_periodicity():
    d = np.arange(12, 151)
    for period in (10.5, 7.0, 16.0):
        curve = 1 + 2 * np.exp(-d / 40) * (1 + np.cos(2 * np.pi * d / period)) / 2 + 0.003 * d
        got, share = periodicity(curve)
        assert got == pytest.approx(period, abs=0.25) and share > 0.7
    _, share = periodicity(np.random.default_rng(0).normal(size=len(d)))
    assert share < 0.5
    assert np.isnan(periodicity(np.ones(10))[0])


class SpacingModel(nn.Module):
    """A stand-in for BPNet with planted syntax, reading its input like a network would.

    Task 0 predicts ``100 * (1 + 0.8 exp(-d / 40) cos(2 pi d / 10.5))`` reads per strand, ``d`` the
    distance between the first and the last exact Nanog consensus in the sequence (no effect with
    fewer than two), in a Gaussian peak (sd 5 bp) on the first one; task 1 predicts 10 reads per
    strand everywhere, whatever the sequence.
    """

    def __init__(self):
        super().__init__()
        self.config = BPNetConfig(tasks=("x", "y"))
        self.kernel = nn.Parameter(torch.nn.functional.one_hot(torch.as_tensor(NANOG).long(), 4).T[None].float(),
                                   requires_grad=False)

    def forward(self, x, control=None):
        b, length, _ = x.shape
        score = torch.nn.functional.conv1d(x.transpose(1, 2), self.kernel)[:, 0]  # (B, L - 6)
        pos = torch.arange(score.shape[1], dtype=torch.float32).expand_as(score)
        exact = score == len(NANOG)
        first = torch.where(exact, pos, torch.full_like(pos, 1e9)).min(dim=1).values
        last = torch.where(exact, pos, torch.full_like(pos, -1e9)).max(dim=1).values
        d = torch.where(exact.sum(dim=1) >= 2, last - first, torch.full_like(first, 1e9))
        boost = 1 + 0.8 * torch.exp(-d / 40) * torch.cos(2 * np.pi * d / 10.5)
        counts = torch.stack([torch.log1p(100 * boost)] * 2 + [torch.full_like(d, np.log1p(10.0))] * 2, dim=1)
        centre = first + len(NANOG) // 2
        positions = torch.arange(length, dtype=torch.float32)[None]
        bump = -((positions - centre[:, None]) ** 2) / 50
        profile = torch.stack([bump, bump, torch.zeros_like(bump), torch.zeros_like(bump)], dim=2)
        return {"profile_logits": profile, "count_logits": counts}


def test_marginalize_recovers_planted_syntax():
    rng = np.random.default_rng(0)
    backgrounds = rng.choice([0, 3], size=(4, 400)).astype(np.uint8)  # A/T only: no chance Nanog site
    table = marginalize_pair(SpacingModel(), backgrounds, NANOG, NANOG, max_distance=150, height_window=10)
    assert sorted(table["task"].unique()) == [0, 1]
    x, y = table[table["task"] == 0], table[table["task"] == 1]
    assert x["distance"].min() == 7 and x["distance"].max() == 150
    assert np.allclose(x["counts_a"], 200, rtol=1e-4)  # A alone: 100 reads per strand
    d = x["distance"].to_numpy()
    expected = np.log2(1 + 0.8 * np.exp(-d / 40) * np.cos(2 * np.pi * d / 10.5))
    assert np.allclose(x["log2fc_counts"], expected, atol=1e-3)
    assert np.allclose(x["log2fc_a"], expected, atol=1e-3)  # the peak sits on A, scaled by the counts
    assert np.allclose(y[["log2fc_a", "log2fc_counts"]], 0, atol=1e-5)  # task 1 ignores the sequence
    period, share = periodicity(x["log2fc_a"].to_numpy())
    assert period == pytest.approx(10.5, abs=0.3) and share > 0.5
    summary = summarize(table.assign(pair="Nanog__Nanog"), near=50).set_index(["task", "measure"])
    assert summary.loc[(0, "log2fc_a"), "period_bp"] == pytest.approx(10.5, abs=0.3)
    assert summary.loc[(0, "log2fc_a"), "mean_log2fc_near"] == pytest.approx(expected[d <= 50].mean(), abs=1e-3)


def tiny_checkpoint(tmp_path, tasks=("Nanog", "Sox2")):
    cfg = BPNetConfig(hidden_size=4, stem_kernel=5, num_dilated_layers=2, profile_kernel=5, tasks=tuple(tasks))
    model = BPNet(cfg)
    init_weights(model, 0)
    with torch.no_grad():  # about e^3 reads per strand, so that no task predicts zero reads
        for head in model.count_heads:
            head.bias.fill_(3.0)
    path = tmp_path / "model.safetensors"
    save_checkpoint(model, path)
    return path


def tiny_dataset(tmp_path, n=5, width=300, tasks=("Nanog", "Sox2")):
    rng = np.random.default_rng(1)
    path = tmp_path / "dataset.npz"
    np.savez(path, sequence=rng.integers(0, 4, (n, width)).astype(np.uint8),
             counts=np.zeros((n, width, 2 * len(tasks)), dtype=np.uint8), chrom=np.array(["chr1"] * n),
             start=np.arange(n, dtype=np.int64) * 1000, split=np.array(["test"] * n), window_tasks=np.array(["Nanog"] * n),
             tasks=np.array(tasks), width=np.int64(width), extra_context=np.int64(0))
    return path


def run_marginalize(tmp_path, pairs, max_distance=60):
    """marginalize_motif_pairs as rule marginalize calls it; returns the paths of its outputs
    (table, summary, plots)."""
    cfg = {
        "splits": ["test"], "motifs": {"Nanog": "MA2339.1", "Sox2": "MA0143.5", "Oct4-Sox2": "MA0142.1"},
        "syntax": {"pairs": pairs, "n_backgrounds": 3, "max_distance": max_distance, "height_window": 10, "near": 30,
                   "batch_size": 64},
    }
    table, summary, plots = str(tmp_path / "syntax.tsv"), str(tmp_path / "syntax_summary.tsv"), str(tmp_path / "syntax")
    marginalize_motif_pairs(str(tiny_checkpoint(tmp_path)), str(tiny_dataset(tmp_path)), MEME, table, summary, plots,
                            ["Nanog", "Sox2"], cfg, seed=1, device="cpu", kernels="auto", threads=1, log=LOG)
    return table, summary, plots


def test_rule_writes_tables_and_plots(tmp_path):
    pairs = [["Nanog", "Nanog"], ["Oct4-Sox2", "Sox2"]]
    table_path, summary_path, plots_dir = run_marginalize(tmp_path, pairs)
    table = pd.read_csv(table_path, sep="\t")
    assert set(table["pair"]) == {"Nanog__Nanog", "Oct4-Sox2__Sox2"} and set(table["task"]) == {"Nanog", "Sox2"}
    nn_pair = table[(table["pair"] == "Nanog__Nanog") & (table["task"] == "Nanog")]
    assert nn_pair["distance"].tolist() == list(range(7, 61))
    assert np.allclose(nn_pair["log2fc_counts"], np.log2(nn_pair["counts_ab"] / nn_pair["counts_a"]), atol=1e-4)
    summary = pd.read_csv(summary_path, sep="\t")
    assert len(summary) == 2 * 2 * 3 and set(summary["measure"]) == {"log2fc_a", "log2fc_b", "log2fc_counts"}
    plots = sorted(Path(plots_dir).iterdir())
    assert [p.name for p in plots] == sorted(f"{a}__{b}.png" for a, b in pairs)
    for plot in plots:
        with open(plot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # deterministic
    (tmp_path / "again").mkdir()
    table_again, _, _ = run_marginalize(tmp_path / "again", pairs)
    assert pd.read_csv(table_again, sep="\t").equals(table)


def test_rule_errors(tmp_path):
    with pytest.raises(BPNetInputError, match="'Klf4' is not a motif label"):
        run_marginalize(tmp_path, [["Nanog", "Klf4"]])
    with pytest.raises(BPNetInputError, match="max_distance"):
        run_marginalize(tmp_path, [["Nanog", "Sox2"]], max_distance=200)


def test_syntax_plot_overlays_the_planted_curve(tmp_path):
    import matplotlib.pyplot as plt
    import pandas as pd

    from bpnet.interpret.syntax import draw_pair
    from bpnet.interpret.truth import plot_against_planted

    d = np.arange(10, 60)
    model = pd.DataFrame({"motif_a": "Nanog", "motif_b": "Sox2", "distance": np.tile(d, 2),
                          "task": np.repeat(["Nanog", "Sox2"], len(d)), "log2fc_a": 0.1, "log2fc_b": 0.2,
                          "log2fc_counts": 0.3})
    planted = pd.DataFrame({"motif_a": "Nanog", "motif_b": "Sox2", "distance": np.tile(d, 2),
                            "task": np.repeat(["Nanog", "Sox2"], len(d)), "log2fc_a": np.cos(np.tile(d, 2) / 1.7),
                            "log2fc_b": 0.5})
    fig = draw_pair(model, "t", planted)
    a_panel = fig.axes[0]
    dashed = [ln for ln in a_panel.lines if ln.get_linestyle() == "--"]
    solid = [ln for ln in a_panel.lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) == len(d)]
    assert len(dashed) == 2 and len(solid) == 2
    assert dashed[0].get_color() == solid[0].get_color()  # a task's planted curve in its colour
    np.testing.assert_allclose(dashed[0].get_ydata(), np.cos(d / 1.7))
    assert len([ln for ln in fig.axes[2].lines if ln.get_linestyle() == "--"]) == 0  # no planted total counts
    assert all(ax.get_ylabel() == "log2 fold change" for ax in fig.axes)
    plt.close(fig)
    model.to_csv(tmp_path / "syntax.tsv", sep="\t", index=False)
    planted.to_csv(tmp_path / "planted.tsv.gz", sep="\t", index=False)
    assert plot_against_planted(tmp_path / "syntax.tsv", tmp_path / "planted.tsv.gz", tmp_path / "out") == 1
    assert (tmp_path / "out" / "Nanog__Sox2.png").stat().st_size > 5000
