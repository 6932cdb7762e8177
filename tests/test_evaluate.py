"""Tests of bpnet.steps.evaluate: the tidy table, the rule entry points, oracle extraction, input checks."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bpnet.data.dataset import load_dataset
from bpnet.errors import BPNetInputError
from bpnet.io.tracks import write_bigwig
from bpnet.runner import get_logger
from bpnet.steps import metrics as M
from bpnet.steps.evaluate import (
    PAPER_REAL_DATA,
    evaluate,
    evaluate_predictions,
    load_predictions,
    oracle_predictions,
    plot_top_peaks,
    read_table,
    save_predictions,
    summarize,
    top_peak_rows,
)

TASKS = ["Oct4", "Nanog"]
W, C = 40, 5  # core width and extra context
SPLITS = np.array(["train", "valid", "test", "test", "valid", "test", "train", "test"])
CHROM_LEN = 2000


def _counts(rng, n):
    """(n, W + 2C, 4) counts: background plus a sharp peak per window and strand inside the core
    and a huge decoy peak in the context, which must never be scored."""
    counts = rng.poisson(0.5, size=(n, W + 2 * C, 2 * len(TASKS)))
    peak = rng.integers(C, C + W, size=(n, 2 * len(TASKS)))
    for k in range(2 * len(TASKS)):
        counts[np.arange(n), peak[:, k], k] += rng.poisson(250, size=n)
    counts[:, 0, :] += 5000  # context only
    return counts.astype(np.uint16)


def make_dataset(path, rng, tasks=TASKS):
    n = len(SPLITS)
    counts = _counts(rng, n)
    np.savez(
        path,
        sequence=rng.integers(0, 4, size=(n, W + 2 * C)).astype(np.uint8),
        counts=counts,
        chrom=np.array(["chr1"] * 4 + ["chr2"] * 4),
        start=np.array([100, 300, 500, 700, 100, 300, 500, 700], dtype=np.int64),
        split=SPLITS,
        window_tasks=np.array(["Oct4"] * n),
        tasks=np.array(tasks),
        width=np.array(W),
        extra_context=np.array(C),
    )
    return counts


def _core(counts):
    return counts[:, C:C + W].astype(np.float32)


@pytest.fixture
def files(tmp_path):
    """dataset.npz plus a model (noisy) and an oracle (exact counts) predictions file, both
    covering the valid and test windows."""
    rng = np.random.default_rng(0)
    counts = make_dataset(tmp_path / "dataset.npz", rng)
    index = np.flatnonzero(np.isin(SPLITS, ["valid", "test"]))
    core = _core(counts)[index]
    model = core + rng.gamma(1.0, 100.0, size=core.shape).astype(np.float32)
    save_predictions(tmp_path / "model.npz", index, model, TASKS)
    save_predictions(tmp_path / "oracle.npz", index, core, TASKS)
    return SimpleNamespace(dir=tmp_path, counts=counts, index=index, model=model, oracle=core)


def _load_all(files, splits=("test", "valid")):
    ds_path = files.dir / "dataset.npz"
    ds = load_dataset(ds_path)
    preds = {n: load_predictions(files.dir / f"{n}.npz", ds, ds_path, splits) for n in ("model", "oracle")}
    return ds, preds


def test_evaluate_tidy_table_rows(files):
    ds, preds = _load_all(files)
    table = evaluate(ds, preds, ["test", "valid"], [1, 2, 5], TASKS, seed=3)
    assert list(table.columns) == ["model", "split", "task", "metric", "binsize", "value"]
    binned = {"auprc", "random_auprc", "n_positive_bins", "n_negative_bins"}
    unbinned = {"n_regions_kept", "count_spearman", "count_pearson", "count_mse", "jsd", "nll", "n_windows"}
    # One row per (model, split, task) and metric, binned metrics once per bin size.
    assert len(table) == 2 * 2 * 2 * (len(binned) * 3 + len(unbinned))
    assert not table.duplicated(["model", "split", "task", "metric", "binsize"]).any()
    assert set(table.metric) == binned | unbinned
    assert table[table.metric.isin(binned)].binsize.notna().all()
    assert table[table.metric.isin(unbinned)].binsize.isna().all()
    assert sorted(table[table.metric == "auprc"].binsize.unique().tolist()) == [1, 2, 5]
    n_win = table[table.metric == "n_windows"].set_index(["model", "split", "task"]).value
    assert (n_win.xs("test", level="split") == 4).all()
    assert (n_win.xs("valid", level="split") == 2).all()


def test_threads_score_tasks_in_parallel_to_the_same_table(files):
    ds, preds = _load_all(files)
    one = evaluate(ds, preds, ["test", "valid"], [1, 2], TASKS, seed=3)
    two = evaluate(ds, preds, ["test", "valid"], [1, 2], TASKS, seed=3, threads=2)
    pd.testing.assert_frame_equal(one, two)  # same rows, same order
    assert one.attrs["notes"] == two.attrs["notes"]


def _value(table, model, split, task, metric, binsize=None):
    sel = table[(table.model == model) & (table.split == split) & (table.task == task)
                & (table.metric == metric)]
    if binsize is not None:
        sel = sel[sel.binsize == binsize]
    assert len(sel) == 1
    return float(sel.value.iloc[0])


def test_evaluate_scores_the_core_window_of_each_task(files):
    ds, preds = _load_all(files)
    table = evaluate(ds, preds, ["test"], [1, 2], TASKS, seed=3)
    rows = np.flatnonzero(SPLITS == "test")
    lookup = {r: i for i, r in enumerate(files.index)}
    prow = [lookup[r] for r in rows]
    for t, task in enumerate(TASKS):
        # Task t is channels 2t, 2t + 1 of the core window (the context decoy is not scored).
        obs = files.counts[rows, C:C + W, 2 * t:2 * t + 2].astype(float)
        pred = files.model[prow][..., 2 * t:2 * t + 2].astype(float)
        probs = M.profile_to_probs(pred)
        for b in (1, 2):
            direct = M.profile_auprc(obs, probs, binsize=b, seed=3)
            assert _value(table, "model", "test", task, "auprc", b) == pytest.approx(direct.auprc)
            assert _value(table, "model", "test", task, "random_auprc", b) == pytest.approx(direct.random_auprc)
            assert _value(table, "model", "test", task, "n_positive_bins", b) == direct.n_positives
        cm = M.count_metrics(obs.sum(axis=(1, 2)), pred.sum(axis=(1, 2)))
        assert _value(table, "model", "test", task, "count_pearson") == pytest.approx(cm["pearson"])
        assert _value(table, "model", "test", task, "count_mse") == pytest.approx(cm["mse"])
        assert _value(table, "model", "test", task, "jsd") == pytest.approx(M.jensen_shannon(obs, probs))
        assert _value(table, "model", "test", task, "nll") == pytest.approx(M.multinomial_nll(obs, probs))
        # The oracle predicts the observed core counts exactly: the ceiling.
        assert _value(table, "oracle", "test", task, "auprc", 1) == pytest.approx(1.0)
        assert _value(table, "oracle", "test", task, "count_pearson") == pytest.approx(1.0)
        assert _value(table, "oracle", "test", task, "count_mse") == pytest.approx(0.0, abs=1e-12)
        assert _value(table, "oracle", "test", task, "jsd") < _value(table, "model", "test", task, "jsd")
        assert _value(table, "oracle", "test", task, "nll") < _value(table, "model", "test", task, "nll")
        assert _value(table, "model", "test", task, "auprc", 1) < 1.0  # the noisy model is not perfect


def test_evaluate_split_without_windows_gives_nan_and_a_note(files):
    ds, preds = _load_all(files)
    ds.split = np.where(ds.split == "valid", "train", ds.split)  # no valid windows left
    table = evaluate(ds, preds, ["valid"], [1], TASKS)
    assert (table[table.metric == "n_windows"].value == 0).all()
    assert table[table.metric == "auprc"].value.isna().all()
    assert any("no valid windows" in note for note in table.attrs["notes"])


def _evaluate(files, tmp_path, names=("model", "oracle"), evaluation=None, tasks=TASKS):
    """Run evaluate_predictions as rule evaluate does; return the output paths."""
    out = tmp_path / "evaluation"
    out.mkdir(exist_ok=True)
    paths = SimpleNamespace(metrics=str(out / "metrics.tsv"), summary=str(out / "summary.json"),
                            plot=str(out / "metrics.png"))
    evaluate_predictions(
        str(files.dir / "dataset.npz"), {n: str(files.dir / f"{n}.npz") for n in names}, list(tasks),
        evaluation or {"splits": ["test", "valid"], "binsizes": [1, 10]},
        paths.metrics, paths.summary, paths.plot, seed=1, threads=2, log=get_logger(None, "test-evaluate"),
    )
    return paths


def test_evaluate_predictions_writes_table_summary_and_plot(files, tmp_path):
    out = _evaluate(files, tmp_path)
    table = read_table(out.metrics)
    raw = pd.read_csv(out.metrics, sep="\t", dtype=str, keep_default_na=False)
    assert list(raw.columns) == ["model", "split", "task", "metric", "binsize", "value"]
    assert (raw[raw.metric == "count_pearson"].binsize == "").all()  # empty for unbinned
    assert set(table.model) == {"model", "oracle"} and set(table.split) == {"test", "valid"}
    summary = json.loads(Path(out.summary).read_text())
    assert set(summary["models"]) == {"model", "oracle"}
    test_oct4 = summary["models"]["model"]["test"]["Oct4"]
    assert test_oct4["auprc"]["1"] == pytest.approx(_value(table, "model", "test", "Oct4", "auprc", 1))
    assert set(test_oct4["auprc"]) == {"1", "10"}
    mean_auprc = np.mean([_value(table, "model", "test", t, "auprc", 1) for t in TASKS])
    assert summary["models"]["model"]["test"]["mean"]["auprc"]["1"] == pytest.approx(mean_auprc)
    # The paper's numbers sit apart from ours, labelled as real-data numbers.
    assert summary["paper_real_data"] == PAPER_REAL_DATA
    assert "REAL" in summary["paper_real_data"]["note"]
    assert summary["paper_real_data"]["valid"]["profile_auprc_binsize_1"]["Nanog"] == 0.449
    png = Path(out.plot).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # another factor's summary does not carry the paper's OSKN numbers
    other = summarize(table.assign(task=table.task.map({"Oct4": "Reb1", "Nanog": "Abf1"})))
    assert "paper_real_data" not in other and set(other["models"]["model"]["test"]) == {"Reb1", "Abf1", "mean"}


def test_evaluate_predictions_is_deterministic(files, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _evaluate(files, a)
    _evaluate(files, b)
    for name in ("metrics.tsv", "summary.json"):
        assert (a / "evaluation" / name).read_bytes() == (b / "evaluation" / name).read_bytes()


def test_summary_json_has_null_for_nan(files, tmp_path):
    # Thresholds no window can meet: every auPRC is NaN, which JSON writes as null.
    out = _evaluate(files, tmp_path, evaluation={"splits": ["test"], "binsizes": [1],
                                                 "required_min_pos_counts": 1e6})
    text = Path(out.summary).read_text()
    assert "NaN" not in text
    summary = json.loads(text)
    assert summary["models"]["model"]["test"]["Oct4"]["auprc"]["1"] is None
    assert any("no region" in note for note in summary["notes"])
    assert "NaN" in Path(out.metrics).read_text()


def test_predictions_with_other_tasks_name_both_files(files):
    save_predictions(files.dir / "bad.npz", files.index, files.model, ["Oct4", "Sox2"])
    ds = load_dataset(files.dir / "dataset.npz")
    with pytest.raises(BPNetInputError) as err:
        load_predictions(files.dir / "bad.npz", ds, files.dir / "dataset.npz", ["test"])
    assert "bad.npz" in str(err.value) and "dataset.npz" in str(err.value)
    assert "Sox2" in str(err.value)


def test_predictions_with_other_width_name_both_files(files):
    save_predictions(files.dir / "bad.npz", files.index, files.model[:, :-1], TASKS)
    ds = load_dataset(files.dir / "dataset.npz")
    with pytest.raises(BPNetInputError) as err:
        load_predictions(files.dir / "bad.npz", ds, files.dir / "dataset.npz", ["test"])
    assert "bad.npz" in str(err.value) and "dataset.npz" in str(err.value)
    assert f"width {W}" in str(err.value)


def test_predictions_missing_split_windows_or_bad_values(files):
    ds = load_dataset(files.dir / "dataset.npz")
    test_only = np.flatnonzero(SPLITS == "test")
    keep = np.isin(files.index, test_only)
    save_predictions(files.dir / "test_only.npz", files.index[keep], files.model[keep], TASKS)
    load_predictions(files.dir / "test_only.npz", ds, "dataset.npz", ["test"])  # enough for test
    with pytest.raises(BPNetInputError, match="no prediction"):
        load_predictions(files.dir / "test_only.npz", ds, "dataset.npz", ["test", "valid"])
    negative = files.model.copy()
    negative[0, 0, 0] = -1.0
    save_predictions(files.dir / "neg.npz", files.index, negative, TASKS)
    with pytest.raises(BPNetInputError, match=">= 0"):
        load_predictions(files.dir / "neg.npz", ds, "dataset.npz", ["test"])
    np.savez(files.dir / "nokeys.npz", profile=files.model)
    with pytest.raises(BPNetInputError, match=r"lacks the array\(s\) \['index', 'tasks'\]"):
        load_predictions(files.dir / "nokeys.npz", ds, "dataset.npz", ["test"])
    with pytest.raises(BPNetInputError, match="does not exist"):
        load_predictions(files.dir / "missing.npz", ds, "dataset.npz", ["test"])


def test_evaluate_predictions_rejects_a_dataset_of_other_tasks(files, tmp_path):
    with pytest.raises(BPNetInputError, match="data.tasks"):
        _evaluate(files, tmp_path, tasks=["Oct4", "Sox2"])


def test_evaluate_predictions_rejects_crossed_thresholds(files, tmp_path):
    with pytest.raises(BPNetInputError, match="evaluation.neg_max_threshold"):
        _evaluate(files, tmp_path, evaluation={"splits": ["test"], "binsizes": [1],
                                               "pos_min_threshold": 0.01, "neg_max_threshold": 0.02})


def test_oracle_predictions_read_truth_bigwigs(tmp_path):
    rng = np.random.default_rng(5)
    make_dataset(tmp_path / "dataset.npz", rng)
    sizes = {"chr1": CHROM_LEN, "chr2": CHROM_LEN}
    truth, dense = [], {}
    for task in TASKS:
        for strand in ("pos", "neg"):
            tracks = {c: rng.gamma(1.0, 1.0, size=CHROM_LEN).round(3) for c in sizes}
            path = tmp_path / f"{task}.{strand}.bw"
            write_bigwig(path, sizes, tracks)
            truth.append(str(path))
            dense[(task, strand)] = tracks
    out = tmp_path / "oracle.npz"

    def run():
        oracle_predictions(str(tmp_path / "dataset.npz"), truth, TASKS, ["test", "valid"], str(out),
                           log=get_logger(None, "test-oracle"))

    run()
    with np.load(out) as npz:
        index, profile, tasks = npz["index"], npz["profile"], npz["tasks"]
    assert index.dtype == np.int64 and profile.dtype == np.float32
    assert tasks.tolist() == TASKS
    # Only the windows of the evaluation splits, in dataset order.
    assert index.tolist() == np.flatnonzero(np.isin(SPLITS, ["test", "valid"])).tolist()
    ds = load_dataset(tmp_path / "dataset.npz")
    assert profile.shape == (len(index), W, 2 * len(TASKS))
    for j, row in enumerate(index):
        chrom, start = str(ds.chrom[row]), int(ds.start[row])
        for t, task in enumerate(TASKS):
            for s, strand in enumerate(("pos", "neg")):
                expected = dense[(task, strand)][chrom][start:start + W]
                np.testing.assert_allclose(profile[j, :, 2 * t + s], expected, rtol=1e-6)
    # The oracle file is valid predictions for the dataset, byte-identical when rebuilt.
    load_predictions(out, ds, tmp_path / "dataset.npz", ["test", "valid"])
    first = out.read_bytes()
    run()
    assert out.read_bytes() == first


def test_oracle_needs_two_truth_tracks_per_task(tmp_path):
    make_dataset(tmp_path / "dataset.npz", np.random.default_rng(6))
    with pytest.raises(BPNetInputError, match="data.truth"):
        oracle_predictions(str(tmp_path / "dataset.npz"), ["a.bw", "b.bw"], TASKS, ["test"],
                           str(tmp_path / "oracle.npz"), log=get_logger(None, "test-oracle"))


def test_top_peak_rows_picks_the_windows_with_most_reads_per_task(files):
    ds, preds = _load_all(files)
    index = preds["model"][0]
    top = top_peak_rows(ds, index, "test", 2)
    test_rows = np.flatnonzero(SPLITS == "test")
    core = _core(files.counts)
    assert top.shape == (len(TASKS), 2)
    for t in range(len(TASKS)):
        totals = core[test_rows, :, 2 * t:2 * t + 2].sum(axis=(1, 2))
        expected = test_rows[np.argsort(-totals, kind="stable")[:2]]
        assert top[t].tolist() == expected.tolist()
    # only predicted windows are candidates, and a split smaller than n gives what it has
    assert set(top_peak_rows(ds, test_rows[:1], "test", 3).ravel()) == {test_rows[0]}


def test_top_peak_rows_are_distinct_windows(files):
    """A window overlapping one already picked (a summit a few bp away, the same reads) is passed over."""
    ds, preds = _load_all(files)
    test_rows = np.flatnonzero(SPLITS == "test")
    best = top_peak_rows(ds, preds["model"][0], "test", 1)[0, 0]
    start = np.asarray(ds.start).copy()
    chrom = np.asarray(ds.chrom).astype(str).copy()
    twin = next(r for r in test_rows if r != best)
    # the twin: 3 bp from the best window, with its reads (as a second task's summit next to it)
    start[twin], chrom[twin] = start[best] + 3, chrom[best]
    counts = np.array(ds.counts)
    counts[twin] = counts[best]
    moved = SimpleNamespace(**{k: getattr(ds, k) for k in ("split", "extra_context", "width", "tasks")},
                            counts=counts, start=start, chrom=chrom)
    top = top_peak_rows(moved, preds["model"][0], "test", 3)
    assert twin not in top[0] and best in top[0]
    for t in range(len(TASKS)):
        picked = [r for r in top[t] if r >= 0]
        for a in picked:
            for b in picked:
                assert a == b or chrom[a] != chrom[b] or abs(start[a] - start[b]) >= ds.width


def test_profile_plot_zooms_on_the_summit_with_both_strands_and_labelled_axes(files):
    import matplotlib.pyplot as plt

    from bpnet.steps.evaluate import draw_top_peaks

    ds, preds = _load_all(files)
    fig, top = draw_top_peaks(ds, preds, TASKS, "test", 2, flank=10)
    axes = np.array(fig.axes[:2 * len(TASKS)]).reshape(2, len(TASKS))
    for ax in axes.ravel():
        assert ax.get_xlim() == (-10, 10)
        fills = [p for p in ax.patches]
        assert len(fills) == 2  # observed + and - strand
        assert fills[0].get_facecolor()[:3] != fills[1].get_facecolor()[:3]
        assert len(ax.lines) >= 4 + 1  # model and oracle, each strand, plus the zero line
        assert ax.get_ylim()[0] < 0 < ax.get_ylim()[1]
        assert ":" in ax.get_title() and "reads" in ax.get_title()
    assert axes[0, 0].get_ylabel() and axes[-1, 0].get_xlabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["observed +", "observed -", "model", "oracle"]
    plt.close(fig)


def test_plot_top_peaks_writes_a_png(files, tmp_path):
    ds, preds = _load_all(files)
    out = tmp_path / "top_peaks.png"
    top = plot_top_peaks(ds, preds, TASKS, "test", 3, out)
    assert top.shape == (len(TASKS), 3)
    assert np.isin(top, np.flatnonzero(SPLITS == "test")).all()
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_background_windows_leave_the_peak_metrics_and_get_their_own(files):
    """Background windows (no task): the peak metrics are those of the peak windows alone, and
    predicted totals separating peaks from background are scored per task."""
    from sklearn.metrics import roc_auc_score

    ds, preds = _load_all(files)
    background = np.array([3, 7])  # two test windows
    ds.window_tasks = np.where(np.isin(np.arange(len(SPLITS)), background), "", "Oct4")
    table = evaluate(ds, preds, ["test"], [1], TASKS, seed=3)
    # the same windows without the background ones, taken out of the scored split
    ds_peaks, _ = _load_all(files)
    ds_peaks.split = np.where(np.isin(np.arange(len(SPLITS)), background), "train", SPLITS)
    peaks_only = evaluate(ds_peaks, preds, ["test"], [1], TASKS, seed=3)
    shared = table.merge(peaks_only, on=["model", "split", "task", "metric", "binsize"], suffixes=("", "_peaks"))
    assert len(shared) == len(peaks_only)
    np.testing.assert_array_equal(shared["value"].to_numpy(), shared["value_peaks"].to_numpy())

    test_rows = np.flatnonzero(SPLITS == "test")
    is_peak = ~np.isin(test_rows, background)
    index, model = preds["model"]
    pred_total = model[np.searchsorted(index, test_rows)][..., 0:2].sum(axis=(1, 2))  # Oct4
    got = table[(table.model == "model") & (table.task == "Oct4")].set_index("metric")["value"]
    assert got["background_auroc"] == pytest.approx(roc_auc_score(is_peak, pred_total))
    assert got["background_random_auprc"] == pytest.approx(is_peak.mean())
    assert got["n_background"] == 2
    assert {"background_auprc", "count_spearman_all", "count_pearson_all"} <= set(got.index)
    # Nanog has no peak windows here: only background and no positives, so its separation is NaN
    nanog = table[(table.model == "model") & (table.task == "Nanog")].set_index("metric")["value"]
    assert np.isnan(nanog["background_auroc"])
    # without background, no such rows at all
    assert not peaks_only["metric"].str.startswith("background").any()


def test_console_summary_is_a_small_rounded_table(files):
    from bpnet.steps.evaluate import summarize, summary_lines

    ds, preds = _load_all(files)
    table = evaluate(ds, preds, ["test", "valid"], [1, 5], TASKS, seed=3)
    lines = summary_lines(summarize(table))
    assert len(lines) == 1 + 1 + 4  # title, header, model/oracle x test/valid
    assert lines[1].split() == ["model", "split", "auPRC@1", "auPRC@5", "count", "Spearman", "count", "Pearson", "JSD"]
    for line in lines[2:]:
        for value in line.split()[2:]:
            assert value == "-" or len(value.split(".")[-1]) == 3  # 3 decimals, no 17-digit floats
