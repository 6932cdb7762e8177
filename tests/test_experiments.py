"""Experiments: the experiments of one config (folds, task subsets, ensembles), ensemble averaging
and the comparison table."""

import copy

import numpy as np
import pandas as pd
import pytest

from bpnet.errors import BPNetInputError
from bpnet.experiments import expand_ensembles, expand_experiments
from bpnet.io.npz import save_predictions
from bpnet.steps.compare import average_predictions, comparison_table


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


# ------------------------------------------------------------- the experiments of one config


def _config(**extra):
    """A minimal validated-looking config: two tasks, truth tracks, three window sections."""
    cfg = {
        "experiment": "base",
        "seed": 1,
        "data": {
            "tasks": {"A": {"pos": "a+.bw", "neg": "a-.bw"}, "B": {"pos": "b+.bw", "neg": "b-.bw"}},
            "truth": {"A": {"pos": "ta+.bw", "neg": "ta-.bw"}, "B": {"pos": "tb+.bw", "neg": "tb-.bw"}},
        },
        "windows": {"width": 1000, "valid_chroms": ["chr2"], "test_chroms": ["chr1"]},
        "dataset": {"extra_context": 0},
        "training": {"lr": 0.004, "epochs": 10},
    }
    cfg.update(extra)
    return cfg


def test_one_experiment_without_an_experiments_section():
    exps = expand_experiments(_config())
    assert list(exps) == ["base"]
    assert exps["base"]["experiment"] == "base" and exps["base"]["training"]["lr"] == 0.004


def test_experiments_deep_merge_their_overrides_and_leave_the_config_untouched():
    config = _config(experiments={"fast": {"training": {"lr": 0.01}}, "slow": {"seed": 7}})
    before = copy.deepcopy(config)
    exps = expand_experiments(config)
    assert list(exps) == ["fast", "slow"]
    assert exps["fast"]["training"] == {"lr": 0.01, "epochs": 10}  # merged, not replaced
    assert exps["slow"]["seed"] == 7 and exps["slow"]["training"]["lr"] == 0.004
    assert all("experiments" not in c for c in exps.values())
    assert config == before
    exps["fast"]["data"]["tasks"]["A"]["pos"] = "changed"  # no shared dicts between experiments
    assert exps["slow"]["data"]["tasks"]["A"]["pos"] == "a+.bw"


def test_task_subsets_keep_the_listed_order_and_their_truth():
    exps = expand_experiments(_config(experiments={"b_only": {"tasks": ["B"]}, "swapped": {"tasks": ["B", "A"]}}))
    assert list(exps["b_only"]["data"]["tasks"]) == ["B"]
    assert list(exps["b_only"]["data"]["truth"]) == ["B"]
    assert list(exps["swapped"]["data"]["tasks"]) == ["B", "A"]
    with pytest.raises(BPNetInputError, match=r"experiments\.bad\.tasks: \['C'\] not in data\.tasks"):
        expand_experiments(_config(experiments={"bad": {"tasks": ["A", "C"]}}))


def test_folds_give_one_experiment_per_fold_with_its_chromosomes():
    folds = [{"valid_chroms": ["chr3"], "test_chroms": ["chr4"]}, {"valid_chroms": ["chr5"], "test_chroms": ["chr6"]}]
    exps = expand_experiments(_config(experiments={"x": {}, "y": {"seed": 2}}, cross_validation={"folds": folds}))
    assert list(exps) == ["x_fold1", "x_fold2", "y_fold1", "y_fold2"]
    assert exps["x_fold2"]["windows"] == {"width": 1000, "valid_chroms": ["chr5"], "test_chroms": ["chr6"]}
    assert exps["y_fold1"]["seed"] == 2 and exps["y_fold1"]["experiment"] == "y_fold1"


def test_each_merged_experiment_is_validated():
    seen = []
    expand_experiments(_config(experiments={"a": {}, "b": {"seed": 3}}), validate=lambda c: seen.append(c["seed"]))
    assert seen == [1, 3]


def test_ensembles_need_known_members_sharing_one_dataset():
    exps = expand_experiments(_config(experiments={"s1": {"seed": 1}, "s2": {"seed": 2}, "wide": {"windows": {"width": 2000}}}))
    assert expand_ensembles({"ensembles": {"ens": ["s1", "s2"]}}, exps) == {"ens": ["s1", "s2"]}
    assert expand_ensembles({}, exps) == {}
    with pytest.raises(BPNetInputError, match=r"ensembles\.ens: unknown experiment\(s\) \['s3'\]"):
        expand_ensembles({"ensembles": {"ens": ["s1", "s3"]}}, exps)
    with pytest.raises(BPNetInputError, match=r"ensembles\.s1: the name is already an experiment"):
        expand_ensembles({"ensembles": {"s1": ["s1", "s2"]}}, exps)
    with pytest.raises(BPNetInputError, match=r"members s1 and wide differ in section 'windows'"):
        expand_ensembles({"ensembles": {"ens": ["s1", "wide"]}}, exps)


def test_comparison_plot_draws_the_oracle_once_with_labelled_axes():
    import matplotlib.pyplot as plt
    import pandas as pd

    from bpnet.steps.compare import draw_comparison

    rows = [{"experiment": e, "model": m, "split": "test", "task": t, "profile_auprc_bin1": v, "count_spearman": v}
            for e in ("a", "b", "c") for m, v in (("model", 0.3), ("oracle", 0.6)) for t in ("Oct4", "Sox2")]
    fig = draw_comparison(pd.DataFrame(rows))
    for ax in fig.axes:
        assert ax.get_ylabel()
        assert len(ax.patches) == 3 * 2  # a bar per experiment and task
        assert len(ax.collections) == 1  # the oracle once
        assert ax.get_legend() is None  # one legend, below the panels
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["a", "b", "c", "oracle (the truth)"]
    plt.close(fig)
