"""Contribution scores: dinucleotide shuffle, DeepLIFT/DeepSHAP vs Captum, completeness, the rule."""

import itertools
import logging
import warnings

import numpy as np
import pyBigWig
import pytest
import torch
from torch import nn

from bpnet.errors import BPNetInputError
from bpnet.interpret.contributions import (
    HEADS,
    TaskTarget,
    compute_contributions,
    contribution_scores,
    contribution_track_paths,
    deeplift_shap,
    dinucleotide_shuffle,
    load_contributions,
    select_windows,
    target_value,
)
from bpnet.io.sequence import encode
from bpnet.model.network import BPNet, BPNetConfig, codes_to_one_hot, init_weights
from bpnet.model.weights import save_checkpoint

LOG = logging.getLogger("test_interpret")


def tiny_model(tasks=("a", "b"), use_control=False, seed=0):
    cfg = BPNetConfig(hidden_size=6, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3, profile_kernel=5,
                      tasks=tuple(tasks), use_control=use_control)
    model = BPNet(cfg)
    init_weights(model, seed)
    return model.eval()


def dinucleotides(codes):
    """Counts of the 25 dinucleotides (ACGTN x ACGTN) along the last axis."""
    codes = np.asarray(codes, dtype=np.int64)
    pairs = codes[..., :-1] * 5 + codes[..., 1:]
    return np.stack([(pairs == k).sum(axis=-1) for k in range(25)], axis=-1)


# --------------------------------------------------------------------------------------------
# Dinucleotide shuffle
# --------------------------------------------------------------------------------------------


def test_shuffle_keeps_dinucleotides_and_ends():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 4, (40, 300)).astype(np.uint8)
    codes[3, 100:130] = 4  # a run of N
    codes[5] = 0  # a single letter: only one arrangement
    out = dinucleotide_shuffle(codes, 5, seed=7)
    assert out.shape == (40, 5, 300) and out.dtype == np.uint8
    assert (dinucleotides(out) == dinucleotides(codes)[:, None]).all()
    assert (out[:, :, 0] == codes[:, None, 0]).all() and (out[:, :, -1] == codes[:, None, -1]).all()
    assert (out[5] == 0).all()
    # a real shuffle: most positions move, and shuffles of a sequence differ from each other
    assert (out[:4] != codes[:4, None]).mean() > 0.5
    assert (out[0, 0] != out[0, 1]).any()
    # deterministic
    assert (dinucleotide_shuffle(codes, 5, seed=7) == out).all()
    assert (dinucleotide_shuffle(codes, 5, seed=8) != out).any()


def test_shuffle_is_uniform_over_sequences_with_the_same_dinucleotides():
    """Every sequence with the same first letter and dinucleotide counts is equally likely."""
    from scipy.stats import chisquare

    seq = encode("ACAACAGAAG")
    every = np.array(list(itertools.product(range(4), repeat=len(seq))), dtype=np.uint8)
    same = every[(dinucleotides(every) == dinucleotides(seq)).all(axis=1) & (every[:, 0] == seq[0])]
    assert 10 < len(same) < 200  # a meaningful test: many arrangements
    out = dinucleotide_shuffle(seq[None], 6000, seed=3)[0]
    keys = {s.tobytes(): i for i, s in enumerate(same)}
    idx = np.array([keys.get(s.tobytes(), -1) for s in out])
    assert (idx >= 0).all()  # every shuffle is one of them
    counts = np.bincount(idx, minlength=len(same))
    assert counts.min() > 0
    assert chisquare(counts).pvalue > 1e-3


def test_shuffle_rejects_bad_codes():
    with pytest.raises(BPNetInputError, match="codes must be 0..4"):
        dinucleotide_shuffle(np.full((1, 10), 7, dtype=np.uint8), 2, 0)
    with pytest.raises(BPNetInputError, match="shape"):
        dinucleotide_shuffle(np.zeros(10, dtype=np.uint8), 2, 0)


# --------------------------------------------------------------------------------------------
# DeepLIFT / DeepSHAP
# --------------------------------------------------------------------------------------------


def test_deeplift_shap_matches_captum():
    from captum.attr import DeepLift

    model = tiny_model()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (3, 60)).astype(np.uint8)
    k = 4
    x = codes_to_one_hot(torch.as_tensor(codes))
    refs = codes_to_one_hot(torch.as_tensor(dinucleotide_shuffle(codes, k, 1)))
    pairs = [(t, h) for t in range(2) for h in HEADS]
    ours = deeplift_shap(model, x, refs, [lambda o, t=t, h=h: target_value(o, t, h) for t, h in pairs])
    inputs, baselines = x.repeat_interleave(k, dim=0), refs.reshape(-1, 60, 4)
    for i, (t, h) in enumerate(pairs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mult = DeepLift(TaskTarget(model, t, h)).attribute(
                inputs, baselines=baselines, custom_attribution_func=lambda m, *_: m)
        # hypothetical contribution (official projection), averaged over the references
        hyp = (mult - (mult * baselines).sum(-1, keepdim=True)).reshape(3, k, 60, 4).mean(1)
        assert torch.allclose(ours[i], hyp, atol=1e-4, rtol=0), (t, h)
        assert hyp.abs().max() > 1e-3  # not trivially zero


@pytest.mark.parametrize("use_control", [False, True])
def test_completeness(use_control):
    """sum(hyp * x) = target(x) - mean target(references), the profile weights taken from x."""
    model = tiny_model(use_control=use_control, seed=3)
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 4, (4, 80)).astype(np.uint8)
    k = 5
    control = torch.as_tensor(rng.poisson(1.0, (4, 80, 2)), dtype=torch.float32) if use_control else None
    x = codes_to_one_hot(torch.as_tensor(codes))
    refs = codes_to_one_hot(torch.as_tensor(dinucleotide_shuffle(codes, k, 5)))
    targets = [lambda o, t=t, h=h: target_value(o, t, h) for t in range(2) for h in HEADS]
    hyp = deeplift_shap(model, x, refs, targets, control)
    with torch.no_grad():
        out_x = model(x, control)
        ctl_r = None if control is None else control.repeat_interleave(k, dim=0)
        out_r = model(refs.reshape(-1, 80, 4), ctl_r)
    for i, (t, h) in enumerate((t, h) for t in range(2) for h in HEADS):
        total = (hyp[i] * x).sum(dim=(1, 2))
        if h == "counts":
            expected = target_value(out_x, t, h) - target_value(out_r, t, h).reshape(4, k).mean(1)
        else:
            ch = slice(2 * t, 2 * t + 2)
            w = torch.softmax(out_x["profile_logits"][..., ch], dim=1)  # weights of the input
            ref_logits = out_r["profile_logits"][..., ch].reshape(4, k, 80, 2)
            expected = target_value(out_x, t, h) - (w[:, None] * ref_logits).sum(dim=(2, 3)).mean(1)
        assert torch.allclose(total, expected, atol=1e-4, rtol=0), (t, h)


class OneUnit(nn.Module):
    """f(x) = sum over positions of ReLU(w . x + b): small enough to check by hand."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 1, 1)
        self.act = nn.ReLU()
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([2.0, -1.0, 0.5, 0.0]).view(1, 4, 1))
            self.conv.bias.zero_()

    def forward(self, x):
        return self.act(self.conv(x.transpose(1, 2))).sum(dim=(1, 2))


def test_hand_checked_case():
    """Input A, references C and T: z = 2 vs -1 and 0, ReLU 2 vs 0 and 0.

    Multipliers of z: 2/3 (against C) and 1 (against T), so hyp against C is
    (2/3) (w - w_C) = [2, 0, 1, 2/3], against T w - w_T = [2, -1, 0.5, 0]; DeepSHAP averages:
    [2, -0.5, 0.75, 1/3]. The contribution of the A is 2 = f(A) - f(C or T).
    """
    x = torch.tensor([[[1.0, 0, 0, 0]]])
    refs = torch.tensor([[[[0.0, 1, 0, 0]], [[0.0, 0, 0, 1]]]])
    hyp = deeplift_shap(OneUnit(), x, refs, [lambda out: out])[0]
    assert torch.allclose(hyp[0, 0], torch.tensor([2.0, -0.5, 0.75, 1 / 3]), atol=1e-6)
    assert float((hyp * x).sum()) == pytest.approx(2.0)


def test_contribution_scores_shapes_and_head_order():
    model = tiny_model()
    codes = np.random.default_rng(4).integers(0, 4, (5, 40)).astype(np.uint8)
    both = contribution_scores(model, codes, n_references=3, seed=1, batch_size=2)
    assert both.shape == (2, 2, 5, 40, 4)
    counts_only = contribution_scores(model, codes, n_references=3, seed=1, heads=["counts"], tasks=[1], batch_size=5)
    assert np.allclose(counts_only[0, 0], both[1, 1], atol=1e-5)  # batching does not matter
    half = contribution_scores(model, codes, n_references=3, seed=1, batch_size=2, dtype=np.float16)
    assert half.dtype == np.float16  # rounded batch by batch: what a float32 result rounds to
    np.testing.assert_array_equal(half, both.astype(np.float16))
    with pytest.raises(BPNetInputError, match="n_references"):
        contribution_scores(model, codes, n_references=0)
    with pytest.raises(BPNetInputError, match="control"):
        contribution_scores(tiny_model(use_control=True), codes)


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


def make_dataset(tmp_path, n=6, width=50, context=5, tasks=("a", "b")):
    rng = np.random.default_rng(0)
    length = width + 2 * context
    starts = np.array([100, 130, 400, 100, 250, 900])[:n]
    chroms = np.array(["chr1", "chr1", "chr1", "chr2", "chr2", "chr2"])[:n]
    path = tmp_path / "dataset.npz"
    np.savez(
        path, sequence=rng.integers(0, 4, (n, length)).astype(np.uint8),
        counts=rng.poisson(1, (n, length, 2 * len(tasks))).astype(np.uint8),
        chrom=chroms, start=starts.astype(np.int64),
        split=np.array(["test", "test", "train", "test", "valid", "test"])[:n],
        window_tasks=np.array(["a"] * n), tasks=np.array(tasks), width=np.int64(width),
        extra_context=np.int64(context),
    )
    sizes = tmp_path / "chrom.sizes"
    sizes.write_text("chr1\t2000\nchr2\t2000\nchr3\t500\n")
    return path, sizes


def run_contrib_scores(tmp_path, dataset, sizes, model_path, heads=("profile", "counts"), max_windows=None,
                       tasks=("a", "b")):
    """compute_contributions as rule contrib_scores calls it; returns the paths of contrib.npz and the tracks."""
    out = tmp_path / "interpretation"
    cfg = {"splits": ["test"], "max_windows": max_windows, "n_references": 3, "heads": list(heads), "batch_size": 2}
    contrib, tracks = str(out / "contrib.npz"), str(out / "tracks")
    compute_contributions(str(dataset), str(model_path), str(sizes), contrib, tracks, list(tasks), cfg, seed=1,
                          device="cpu", kernels="auto", threads=1, log=LOG)
    return contrib, tracks


def test_rule_writes_contributions_and_tracks(tmp_path):
    dataset, sizes = make_dataset(tmp_path)
    model_path = tmp_path / "model.safetensors"
    save_checkpoint(tiny_model(), model_path)
    contrib_path, tracks = run_contrib_scores(tmp_path, dataset, sizes, model_path)
    c = load_contributions(contrib_path)
    assert list(c.index) == [0, 1, 3, 5]  # the test windows
    assert c.hypothetical.shape == (2, 2, 4, 50, 4) and c.hypothetical.dtype == np.float16
    ds = np.load(dataset)
    assert (c.sequence == ds["sequence"][c.index, 5:55]).all()  # the core windows
    # the stored values are the model's contributions (float16 precision)
    direct = contribution_scores(tiny_model(), c.sequence, n_references=3, seed=1)
    assert np.allclose(c.hypothetical.astype(np.float32), direct, atol=1e-3, rtol=1e-2)
    # tracks: the observed base's contribution; windows 0 and 1 overlap (100-150, 130-180): the
    # bases nearer to window 1's centre (>= 140) come from window 1
    contrib = c.contrib("b", "counts")
    with pyBigWig.open(str(contribution_track_paths(tracks, ["a", "b"], ["profile", "counts"])[3])) as bw:  # b.counts
        assert bw.chroms() == {"chr1": 2000, "chr2": 2000, "chr3": 500}
        vals = np.nan_to_num(np.array(bw.values("chr1", 100, 180)))
        assert np.allclose(vals[:40], contrib[0, :40], atol=1e-6)
        assert np.allclose(vals[40:], contrib[1, 10:], atol=1e-6)
        assert np.allclose(np.nan_to_num(np.array(bw.values("chr2", 900, 950))), contrib[3], atol=1e-6)
        assert np.isnan(bw.values("chr1", 300, 301)[0])  # no window there
    # deterministic: a second run gives the same numbers
    contrib_again, _ = run_contrib_scores(tmp_path / "again", dataset, sizes, model_path)
    assert (load_contributions(contrib_again).hypothetical == c.hypothetical).all()


def test_rule_errors(tmp_path):
    dataset, sizes = make_dataset(tmp_path)
    model_path = tmp_path / "model.safetensors"
    save_checkpoint(tiny_model(tasks=("a", "c")), model_path)
    with pytest.raises(BPNetInputError, match="tasks differ"):
        run_contrib_scores(tmp_path, dataset, sizes, model_path)
    with pytest.raises(BPNetInputError, match="interpretation.splits"):
        select_windows(np.array(["train", "valid"]), ["test"], None, 1)
    with pytest.raises(BPNetInputError, match="does not exist"):
        load_contributions(tmp_path / "missing.npz")


def test_select_windows_is_seeded():
    split = np.array(["test"] * 50 + ["train"] * 10)
    a = select_windows(split, ["test"], 10, 3)
    assert len(a) == 10 and (np.diff(a) > 0).all() and a.max() < 50
    assert (select_windows(split, ["test"], 10, 3) == a).all()
    assert len(select_windows(split, ["test", "train"], None, 3)) == 60
