"""Experiments: ensemble averaging and the comparison table."""

import numpy as np
import pandas as pd
import pytest

from bpnet.errors import BPNetInputError
from bpnet.io.npz import save_predictions
from bpnet.steps.experiments import average_predictions, comparison_table


def test_average_predictions(tmp_path):
    g = np.random.default_rng(0)
    a, b = g.random((3, 5, 4)).astype(np.float32), g.random((3, 5, 4)).astype(np.float32)
    save_predictions(tmp_path / "a.npz", [0, 2, 5], a, ["x", "y"])
    save_predictions(tmp_path / "b.npz", [0, 2, 5], b, ["x", "y"])
    avg = average_predictions([tmp_path / "a.npz", tmp_path / "b.npz"])
    np.testing.assert_allclose(avg["profile"], (a + b) / 2, rtol=1e-6)
    assert avg["index"].tolist() == [0, 2, 5]
    save_predictions(tmp_path / "c.npz", [0, 2, 6], b, ["x", "y"])
    with pytest.raises(BPNetInputError, match="differ in index"):
        average_predictions([tmp_path / "a.npz", tmp_path / "c.npz"])


def test_comparison_table_picks_headline_metrics():
    def table(auprc, spearman):
        return pd.DataFrame(
            [
                ("model", "test", "Oct4", "auprc", 1, auprc),
                ("model", "test", "Oct4", "auprc", 2, 0.99),
                ("model", "test", "Oct4", "auprc", 10, auprc + 0.1),
                ("model", "test", "Oct4", "count_spearman", None, spearman),
                ("model", "test", "Oct4", "count_pearson", None, 0.5),
                ("model", "test", "Oct4", "jsd", None, 0.3),
                ("model", "test", "Oct4", "n_windows", None, 10),
            ],
            columns=["model", "split", "task", "metric", "binsize", "value"],
        )

    out = comparison_table({"seed1": table(0.4, 0.7), "seed2": table(0.5, 0.6)})
    assert out["experiment"].tolist() == ["seed1", "seed2"]
    assert out["profile_auprc_bin1"].tolist() == [0.4, 0.5]
    assert out["profile_auprc_bin10"].tolist() == pytest.approx([0.5, 0.6])
    assert out["count_spearman"].tolist() == [0.7, 0.6]
