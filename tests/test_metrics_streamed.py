"""The chunked metrics of #17 equal the in-memory ones: bpnet.steps.metrics_streamed against
bpnet.steps.metrics / sklearn, and evaluate() with tiny chunks against its default."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score
from test_evaluate import TASKS, _load_all, files  # noqa: F401 (fixture)

from bpnet.errors import BPNetInputError
from bpnet.io.npz import CHECK_ROWS, load_predictions, save_predictions
from bpnet.steps import metrics as M
from bpnet.steps import metrics_streamed as MS
from bpnet.steps.evaluate import evaluate


@pytest.mark.parametrize("chunk", [1, 3, 64, 1 << 20])
def test_average_precision_equals_sklearn_with_ties_across_chunks(chunk):
    rng = np.random.default_rng(1)
    y = rng.random(5000) < 0.1
    # Few distinct scores: tie groups much longer than a chunk, and mixed labels inside them.
    scores = np.round(rng.random(5000) + 0.3 * y, 1)
    assert len(np.unique(scores)) < 20
    assert MS.average_precision(y, scores, chunk=chunk) == pytest.approx(
        average_precision_score(y, scores), rel=1e-12)
    distinct = rng.random(5000) + 0.2 * y
    assert MS.average_precision(y, distinct, chunk=chunk) == pytest.approx(
        average_precision_score(y, distinct), rel=1e-12)


def test_average_precision_edge_cases():
    assert np.isnan(MS.average_precision(np.zeros(5, bool), np.arange(5.0)))
    assert MS.average_precision(np.ones(4, bool), np.arange(4.0)) == 1.0
    # all tied: precision is the positive share at the only threshold
    assert MS.average_precision(np.array([1, 0, 0, 1], bool), np.ones(4)) == pytest.approx(0.5)


def _windows(rng, n=37, length=25):
    counts = rng.poisson(0.4, size=(n, length, 2)).astype(np.float64)
    summit = rng.integers(0, length, size=n)
    counts[np.arange(n), summit, :] += rng.poisson(30, size=(n, 2))
    counts[::5] = 0.0  # windows without reads (left out by the region filter)
    pred = counts + rng.gamma(1.0, 2.0, size=counts.shape)
    pred[3, :, 1] = 0.0  # a strand with no predicted reads: uniform probabilities
    return counts, M.profile_to_probs(pred)


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_streamed_profile_auprc_equals_the_in_memory_one(chunk):
    rng = np.random.default_rng(2)
    counts, probs = _windows(rng)
    kw = dict(pos_min_threshold=0.05, neg_max_threshold=0.01, seed=7)
    plain = M.profile_auprc_binsizes(counts, probs, [1, 2, 5, 30], required_min_pos_counts=0.5, **kw)
    keep = M.regions_kept(counts, kw["pos_min_threshold"], 0.5)
    assert 0 < keep.sum() < len(keep)
    streamed = MS.profile_auprc_streamed(
        lambda i: counts[i], lambda i: probs[i], len(counts), [1, 2, 5, 30], keep, chunk=chunk, **kw
    )
    assert streamed.keys() == plain.keys()
    for b in plain:
        p, s = plain[b], streamed[b]
        assert (s.n_positives, s.n_negatives, s.n_ambiguous, s.n_regions) == (
            p.n_positives, p.n_negatives, p.n_ambiguous, p.n_regions)
        assert s.reason == p.reason
        np.testing.assert_allclose([s.auprc, s.random_auprc], [p.auprc, p.random_auprc], rtol=1e-12)
    assert np.isnan(streamed[30].auprc) and "exceeds" in streamed[30].reason
    assert plain[1].random_auprc < plain[1].auprc  # the shuffle is not the identity


def test_streamed_profile_auprc_without_kept_regions_or_positives():
    counts = np.zeros((6, 10, 2))
    probs = np.full((6, 10, 2), 0.1)
    none = MS.profile_auprc_streamed(lambda i: counts[i], lambda i: probs[i], 6, [1], np.zeros(6, bool))
    assert np.isnan(none[1].auprc) and none[1].n_regions == 0 and none[1].reason
    flat = np.ones((6, 10, 2))  # every position holds 10% of its strand: all ambiguous here
    res = MS.profile_auprc_streamed(
        lambda i: flat[i], lambda i: probs[i], 6, [1], np.ones(6, bool), pos_min_threshold=0.5,
        neg_max_threshold=0.01,
    )
    assert np.isnan(res[1].auprc) and res[1].n_positives == 0 and "no positive bin" in res[1].reason


def test_evaluate_in_tiny_chunks_equals_the_default(files, monkeypatch):  # noqa: F811
    ds, preds = _load_all(files)
    whole = evaluate(ds, preds, ["test", "valid"], [1, 2, 5], TASKS, seed=3)
    monkeypatch.setattr(MS, "CHUNK_ROWS", 1)
    chunked = evaluate(ds, preds, ["test", "valid"], [1, 2, 5], TASKS, seed=3, threads=2)
    pd.testing.assert_frame_equal(whole, chunked, rtol=1e-12, atol=0)
    counts = whole.metric.str.startswith("n_")
    assert (whole[counts].value.to_numpy() == chunked[counts].value.to_numpy()).all()


def test_predictions_stay_on_disk_and_are_checked_in_every_chunk(files, tmp_path, monkeypatch):  # noqa: F811
    ds, preds = _load_all(files)
    assert isinstance(preds["model"][1], np.memmap)  # not read into memory
    bad = np.array(files.model)
    bad[-1, -1, -1] = np.nan  # in the last chunk only
    save_predictions(tmp_path / "bad.npz", files.index, bad, TASKS)
    monkeypatch.setattr("bpnet.io.npz.CHECK_ROWS", 1)
    assert CHECK_ROWS > 1
    with pytest.raises(BPNetInputError, match="finite"):
        load_predictions(tmp_path / "bad.npz", ds, files.dir / "dataset.npz", ["test"])
