"""Training: batch assembly with shift / reverse complement, determinism, early stopping, resume."""

import numpy as np
import pandas as pd
import pytest
import torch

from bpnet.data.dataset import Dataset
from bpnet.errors import BPNetInputError
from bpnet.io.sequence import reverse_complement_codes
from bpnet.model.network import BPNet, BPNetConfig, strand_swap_permutation
from bpnet.steps.training import (
    BatchMaker,
    TrainingConfig,
    auto_count_weight,
    evaluate_loss,
    init_count_bias,
    ridge_fit,
    train_model,
)

TASKS = ("a", "b")


def toy_dataset(n=48, width=64, context=8, seed=0):
    """Windows with a planted 'GATA' whose count peaks sit on either side (learnable)."""
    g = np.random.default_rng(seed)
    length = width + 2 * context
    seq = g.integers(0, 4, size=(n, length)).astype(np.uint8)
    counts = g.poisson(0.05, size=(n, length, 4)).astype(np.uint16)
    for i in range(n):
        if i % 2 == 0:
            p = g.integers(context + 10, context + width - 14)
            seq[i, p:p + 4] = [2, 0, 3, 0]  # GATA
            counts[i, p - 3, 0] += g.poisson(20)  # task a, + strand upstream
            counts[i, p + 6, 1] += g.poisson(20)  # task a, - strand downstream
            counts[i, p, 2] += g.poisson(5)
    split = np.array(["train", "train", "valid"] * (n // 3))[:n]
    return Dataset(
        sequence=seq, counts=counts, control=None, chrom=np.array(["chr1"] * n), start=np.arange(n) * 1000,
        split=split, window_tasks=np.array(["a"] * n), tasks=np.array(TASKS), width=width, extra_context=context,
    )


def tiny_model():
    return BPNetConfig(hidden_size=8, stem_kernel=5, num_dilated_layers=2, profile_kernel=5, tasks=TASKS)


def test_strand_swap_permutation():
    assert strand_swap_permutation(3).tolist() == [1, 0, 3, 2, 5, 4]


def test_batch_shift_and_reverse_complement():
    ds = toy_dataset()
    maker = BatchMaker(ds.sequence, ds.counts, None, ds.width, 2, torch.device("cpu"))
    idx = torch.tensor([0, 3])
    x, y, _ = maker.batch(idx)
    core = slice(8, 72)
    assert torch.equal(x.argmax(-1), torch.as_tensor(ds.sequence[[0, 3], core]).long())
    assert torch.equal(y, torch.as_tensor(ds.counts[[0, 3], core]).float())
    # shift by -5 and +3: windows move left / right within the stored context
    x, y, _ = maker.batch(idx, shift=torch.tensor([-5, 3]))
    assert torch.equal(x[0].argmax(-1), torch.as_tensor(ds.sequence[0, 3:67]).long())
    assert torch.equal(y[1], torch.as_tensor(ds.counts[3, 11:75]).float())
    # reverse complement the first window only
    x, y, _ = maker.batch(idx, rc=torch.tensor([True, False]))
    rc_codes = reverse_complement_codes(ds.sequence[0, core])
    assert torch.equal(x[0].argmax(-1), torch.as_tensor(rc_codes.copy()).long())
    obs = torch.as_tensor(ds.counts[0, core]).float()
    # + strand of the reverse complement = - strand of the original read backwards, per task
    assert torch.equal(y[0, :, 0], obs.flip(0)[:, 1])
    assert torch.equal(y[0, :, 1], obs.flip(0)[:, 0])
    assert torch.equal(y[0, :, 2], obs.flip(0)[:, 3])
    assert torch.equal(y[1], torch.as_tensor(ds.counts[3, core]).float())
    # an N stays N (all zeros) after reverse complement
    ds.sequence[1, 8 + 63] = 4
    maker = BatchMaker(ds.sequence, ds.counts, None, ds.width, 2, torch.device("cpu"))
    x, _, _ = maker.batch(torch.tensor([1]), rc=torch.tensor([True]))
    assert x[0, 0].sum() == 0


def test_auto_count_weight():
    counts = np.zeros((3, 10, 2), dtype=np.uint16)
    counts[:, 0, 0] = [100, 200, 300]
    counts[:, 0, 1] = [400, 500, 600]
    assert auto_count_weight(counts) == pytest.approx(35.0)  # median of 100..600 = 350
    assert auto_count_weight(np.zeros((2, 5, 2))) == 1.0  # at least 1


def run(tmp_path, **kw):
    kw.setdefault("bf16", False)  # float32 on every machine (auto would follow this CPU)
    cfg = TrainingConfig(batch_size=8, max_epochs=kw.pop("max_epochs", 4), patience=kw.pop("patience", 5), threads=1, device="cpu", **kw)
    return train_model(toy_dataset(), tiny_model(), cfg, tmp_path, on_epoch_end=kw.get("cb"))


def test_training_learns_and_is_deterministic(tmp_path):
    m1, h1 = run(tmp_path / "a", max_epochs=6, max_shift=4, reverse_complement=True)
    m2, h2 = run(tmp_path / "b", max_epochs=6, max_shift=4, reverse_complement=True)
    assert h1["valid_loss"].iloc[-1] < h1["valid_loss"].iloc[0]
    pd.testing.assert_frame_equal(h1.drop(columns=["seconds", "train_samples_per_s"]), h2.drop(columns=["seconds", "train_samples_per_s"]))
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    assert (tmp_path / "a" / "resume.pt").exists()  # kept until the rule has written its outputs


def test_early_stopping_restores_best(tmp_path):
    # a huge learning rate makes validation loss stop improving quickly; no count-head refit, so
    # the returned model is exactly the best epoch's
    model, hist = run(tmp_path, max_epochs=30, patience=2, learning_rate=0.5, refit_count_head=False)
    assert len(hist) < 30
    best = hist["valid_loss"].idxmin()
    assert (hist["valid_loss"].iloc[best + 1:] >= hist["valid_loss"].iloc[best]).all()
    assert len(hist) - 1 - best == 2  # stopped after `patience` epochs without gain
    ds = toy_dataset()
    maker = BatchMaker(ds.sequence, ds.counts, None, ds.width, 2, torch.device("cpu"))
    valid = torch.as_tensor(np.flatnonzero(ds.split == "valid"))
    got = evaluate_loss(model, maker, valid, 256, model.config.count_loss_weight, False)["loss"]
    assert got == pytest.approx(hist["valid_loss"].iloc[best], rel=1e-5)


def test_resume_after_interruption_gives_the_same_model(tmp_path):
    full, full_hist = run(tmp_path / "full", max_epochs=5)

    class Interrupt(Exception):
        pass

    def stop_at_3(epoch, row):
        if epoch == 3:
            raise Interrupt()

    cfg = TrainingConfig(batch_size=8, max_epochs=5, threads=1, device="cpu", bf16=False)
    with pytest.raises(Interrupt):
        train_model(toy_dataset(), tiny_model(), cfg, tmp_path / "resumed", on_epoch_end=stop_at_3)
    assert (tmp_path / "resumed" / "resume.pt").exists()
    seen = []
    resumed, hist = train_model(toy_dataset(), tiny_model(), cfg, tmp_path / "resumed", on_epoch_end=lambda e, r: seen.append(e))
    assert seen == [4, 5]  # epochs 1-3 were not redone
    assert hist["epoch"].tolist() == [1, 2, 3, 4, 5]
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    # a resume state from another config is ignored, not used
    cfg2 = TrainingConfig(batch_size=8, max_epochs=2, threads=1, device="cpu", learning_rate=0.001, bf16=False)
    _, hist2 = train_model(toy_dataset(), tiny_model(), cfg2, tmp_path / "resumed")
    assert hist2["epoch"].tolist() == [1, 2]


def test_training_errors(tmp_path):
    ds = toy_dataset()
    with pytest.raises(BPNetInputError, match="dataset.extra_context >= 20"):
        train_model(ds, tiny_model(), TrainingConfig(max_shift=20, device="cpu"), tmp_path)
    ds.split[:] = "train"
    with pytest.raises(BPNetInputError, match="no validation windows"):
        train_model(ds, tiny_model(), TrainingConfig(device="cpu"), tmp_path)
    with pytest.raises(BPNetInputError, match="unknown key"):
        TrainingConfig.from_config({"lr": 1}, seed=1, device="cpu")


def test_ridge_fit_recovers_a_linear_map():
    g = np.random.default_rng(0)
    x = 3.0 + 0.01 * g.normal(size=(500, 6))  # large mean, tiny spread: like pooled features
    w_true = g.normal(size=(4, 6)) * 50
    y = x @ w_true.T + np.array([1.0, 2.0, 3.0, 4.0])
    w, b = ridge_fit(x, y, alpha=1e-12)
    np.testing.assert_allclose(w, w_true, rtol=1e-5)
    np.testing.assert_allclose(x @ w.T + b, y, atol=1e-6)
    w_big, _ = ridge_fit(x, y, alpha=1e3)  # a large penalty shrinks the weights
    assert np.abs(w_big).sum() < 0.1 * np.abs(w).sum()


def test_count_heads_start_at_the_mean_target():
    ds = toy_dataset()
    model = BPNet(tiny_model())
    maker = BatchMaker(ds.sequence, ds.counts, None, ds.width, 2, torch.device("cpu"))
    targets = maker.count_targets(np.arange(len(ds)), chunk=7)  # chunks that do not divide n
    np.testing.assert_allclose(targets, np.log1p(ds.counts[:, 8:72].sum(axis=1)))  # the core only
    init_count_bias(model, targets)
    bias = torch.cat([h.bias for h in model.count_heads]).detach().numpy()
    np.testing.assert_allclose(bias, targets.mean(axis=0), rtol=1e-6)
    assert targets[:, 0].mean() > 2  # the planted task: far from the default init near 0


def count_dataset(n=240, width=64, seed=0):
    """Windows with 0-3 planted 'GATA's, each adding ~30 reads to task a: totals vary with sequence."""
    g = np.random.default_rng(seed)
    seq = g.integers(0, 4, size=(n, width)).astype(np.uint8)
    counts = g.poisson(0.05, size=(n, width, 4)).astype(np.uint16)
    for i in range(n):
        for p in g.choice(np.arange(8, width - 12, 8), size=i % 4, replace=False):
            seq[i, p:p + 4] = [2, 0, 3, 0]
            counts[i, p - 3, 0] += g.poisson(15)
            counts[i, p + 6, 1] += g.poisson(15)
    split = np.array(["train", "train", "valid"] * n)[:n]
    return Dataset(
        sequence=seq, counts=counts, control=None, chrom=np.array(["chr1"] * n), start=np.arange(n) * 1000,
        split=split, window_tasks=np.array(["a"] * n), tasks=np.array(TASKS), width=width, extra_context=0,
    )


def test_count_head_refit_lowers_valid_count_loss_and_keeps_the_rest(tmp_path):
    ds = count_dataset()
    models = {}
    for refit in (True, False):
        cfg = TrainingConfig(batch_size=16, max_epochs=4, threads=1, device="cpu", refit_count_head=refit)
        models[refit], _ = train_model(ds, tiny_model(), cfg, tmp_path / str(refit))
    refit, plain = models[True], models[False]
    info = refit.count_refit
    assert info["applied"] and info["valid_count_mse_after"] < 0.95 * info["valid_count_mse_before"]
    maker = BatchMaker(ds.sequence, ds.counts, None, ds.width, 2, torch.device("cpu"))
    valid = torch.as_tensor(np.flatnonzero(ds.split == "valid"))
    got = {m: evaluate_loss(m, maker, valid, 256, 1.0, False)["count"] for m in (refit, plain)}
    assert got[plain] == pytest.approx(info["valid_count_mse_before"], rel=1e-4)
    assert got[refit] == pytest.approx(info["valid_count_mse_after"], rel=1e-4)
    # only the count heads changed: backbone and profile heads are the trained ones
    for (name, p), q in zip(refit.named_parameters(), plain.parameters()):
        assert torch.equal(p, q) == (not name.startswith("count_heads")), name


# ------------------------------------------------------- hardware: precision, micro-batches, progress

import logging  # noqa: E402
import time  # noqa: E402

from bpnet import hardware  # noqa: E402
from bpnet.hardware import CpuInfo  # noqa: E402
from bpnet.model.network import bpnet_loss, init_weights  # noqa: E402
from bpnet.steps import training  # noqa: E402
from bpnet.steps.training import batch_gradients  # noqa: E402


def logged(caplog, run_training):
    log = logging.getLogger("test-training")
    with caplog.at_level(logging.INFO, logger="test-training"):
        model, hist = run_training(log)
    return model, hist, [r.getMessage() for r in caplog.records if r.name == "test-training"]


@pytest.mark.parametrize("cpu,bf16,says", [
    (CpuInfo("AVX2", False, frozenset({"avx2"})), False, "bf16 would be emulated"),
    (CpuInfo("AVX512", True, frozenset({"avx512_bf16"})), True, "native bf16 instructions"),
])
def test_auto_precision_in_training(tmp_path, monkeypatch, caplog, cpu, bf16, says):
    """bf16 "auto" trains in float32 on a CPU without native bf16 and in bf16 where it is native,
    logs why, and records it on the model (the checkpoint's metadata)."""
    monkeypatch.setattr(hardware, "cpu_info", lambda: cpu)
    monkeypatch.setattr(training, "cpu_info", lambda: cpu)
    cfg = TrainingConfig(batch_size=8, max_epochs=1, threads=1, device="cpu", bf16="auto")
    model, _, lines = logged(caplog, lambda log: train_model(toy_dataset(), tiny_model(), cfg, tmp_path, log))
    assert model.training_setup["bf16"] is bf16
    assert model.training_setup["kernels"] == "channels_last"  # x86
    assert any(line.startswith("precision: " + ("bf16" if bf16 else "float32")) and says in line for line in lines)


def test_undecided_precision_is_timed_without_changing_the_training(tmp_path, monkeypatch, caplog):
    """Where capability does not settle bf16, real training steps of both are timed at start-up;
    the timing draws no random numbers of the training's, so a forced precision gives the same model."""
    undecided = CpuInfo("AVX512", True, frozenset({"avx512f"}))
    monkeypatch.setattr(hardware, "cpu_info", lambda: undecided)
    monkeypatch.setattr(training, "cpu_info", lambda: undecided)
    cfg = TrainingConfig(batch_size=8, max_epochs=2, threads=1, device="cpu", bf16="auto")
    timed, _, lines = logged(caplog, lambda log: train_model(toy_dataset(), tiny_model(), cfg, tmp_path / "a", log))
    assert any("timed a training step: float32" in line for line in lines)
    forced = TrainingConfig(batch_size=8, max_epochs=2, threads=1, device="cpu", bf16=timed.training_setup["bf16"])
    same, _ = train_model(toy_dataset(), tiny_model(), forced, tmp_path / "b")
    for p, q in zip(timed.parameters(), same.parameters()):
        assert torch.equal(p, q)
    # the timing itself leaves torch's global random state as it found it (it builds a model)
    from bpnet.steps.training import time_precisions

    state = torch.random.get_rng_state()
    fp32_s, bf16_s = time_precisions(tiny_model(), 64, torch.device("cpu"), "plain", batch_size=4, repeats=1)
    assert fp32_s > 0 and bf16_s > 0
    assert torch.equal(torch.random.get_rng_state(), state)


def test_micro_batches_give_the_batch_gradient():
    """A batch run in passes of fewer windows (on CPU: cache-sized passes) gives the whole batch's
    gradient and loss terms: the weighted pass losses add up to the batch loss."""
    ds = toy_dataset()
    maker = BatchMaker(ds.sequence, ds.counts, None, ds.width, 2, torch.device("cpu"))
    x, y, _ = maker.batch(torch.arange(8))
    results = []
    for micro in (8, 3):  # one pass vs passes of 3, 3 and 2 windows
        model = BPNet(tiny_model())
        init_weights(model, 1)
        terms = batch_gradients(model, x, y, None, 10.0, micro, bf16=False)
        results.append((terms, [p.grad.clone() for p in model.parameters()]))
    (t1, g1), (t2, g2) = results
    assert t1 == pytest.approx(t2, rel=1e-5)
    model.zero_grad()
    full = bpnet_loss(model(x), y, 10.0)
    assert t1["loss"] == pytest.approx(full["loss"].item(), rel=1e-6)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_progress_lines_on_a_slow_step(tmp_path, monkeypatch, caplog):
    """An epoch of slow steps logs batch i/n, windows/s and the epoch's ETA every interval, not
    only at its end."""
    real_loss = training.bpnet_loss

    def slow_loss(*args, **kwargs):
        time.sleep(0.12)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training, "bpnet_loss", slow_loss)
    monkeypatch.setattr(training, "micro_batch_size", lambda device: 1 << 30)
    cfg = TrainingConfig(batch_size=8, max_epochs=1, threads=1, device="cpu", bf16=False, refit_count_head=False)
    _, _, lines = logged(caplog, lambda log: train_model(toy_dataset(), tiny_model(), cfg, tmp_path, log,
                                                         progress_interval=0.1))
    progress = [line for line in lines if line.startswith("epoch 1, batch ")]
    n_batches = int(np.ceil((toy_dataset().split == "train").sum() / 8))
    assert len(progress) >= n_batches - 1  # a line for (nearly) every 0.12 s step
    assert f"batch 2/{n_batches}" in progress[1]
    assert all("window/s" in line and "ETA" in line for line in progress)


def test_learning_rate_schedules():
    from bpnet.steps.training import learning_rate_at

    constant = TrainingConfig(learning_rate=0.004)
    assert [learning_rate_at(constant, s, 100) for s in (0, 50, 99)] == [0.004] * 3
    cosine = TrainingConfig(learning_rate=0.004, lr_schedule="cosine")
    assert learning_rate_at(cosine, 0, 100) == pytest.approx(0.004)
    assert learning_rate_at(cosine, 50, 100) == pytest.approx(0.002)
    assert learning_rate_at(cosine, 100, 100) == pytest.approx(0.0, abs=1e-12)
    rates = [learning_rate_at(cosine, s, 100) for s in range(100)]
    assert all(a > b for a, b in zip(rates, rates[1:]))  # decreasing at every step
    with pytest.raises(BPNetInputError, match="training.lr_schedule"):
        learning_rate_at(TrainingConfig(lr_schedule="step"), 0, 10)


def test_cosine_training_resumes_exactly(tmp_path):
    """The learning rate is a function of the step, so an interrupted cosine run resumes to the
    same weights."""
    full, _ = run(tmp_path / "full", max_epochs=4, lr_schedule="cosine")

    class Interrupt(Exception):
        pass

    def stop_at_2(epoch, row):
        if epoch == 2:
            raise Interrupt()

    cfg = TrainingConfig(batch_size=8, max_epochs=4, threads=1, device="cpu", bf16=False, lr_schedule="cosine")
    with pytest.raises(Interrupt):
        train_model(toy_dataset(), tiny_model(), cfg, tmp_path / "resumed", on_epoch_end=stop_at_2)
    resumed, hist = train_model(toy_dataset(), tiny_model(), cfg, tmp_path / "resumed")
    assert hist["epoch"].tolist() == [1, 2, 3, 4]
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


def test_batch_maker_holds_only_its_rows_and_gives_the_same_batches():
    """The paper-size training holds only the training and validation rows (#17); batches and
    count targets are still asked for by dataset row and equal those of a maker holding all."""
    ds = count_dataset()
    full = BatchMaker(ds.sequence, ds.counts, None, ds.width, 2, torch.device("cpu"))
    rows = np.flatnonzero(ds.split != "valid")[::-1]  # any order
    part = BatchMaker(ds.sequence, ds.counts, None, ds.width, 2, torch.device("cpu"), rows=rows)
    assert part.counts.shape[0] == len(rows) < full.counts.shape[0]
    idx = torch.as_tensor(rows[[3, 0, 5, 5]].copy())
    rc = torch.tensor([True, False, True, False])
    for a, b in zip(full.batch(idx, None, rc), part.batch(idx, None, rc)):
        assert (a is None and b is None) or torch.equal(a, b)
    np.testing.assert_array_equal(full.count_targets(rows), part.count_targets(rows))
    with pytest.raises(ValueError, match="not among the rows"):
        part.batch(torch.as_tensor(np.flatnonzero(ds.split == "valid")[:1]))


def test_auto_count_weight_of_some_rows_read_in_chunks(monkeypatch):
    counts = np.random.default_rng(5).poisson(3.0, size=(50, 20, 4))
    rows = np.arange(0, 50, 3)
    monkeypatch.setattr("bpnet.io.npz.CHUNK_ROWS", 4)
    assert auto_count_weight(counts, rows=rows) == auto_count_weight(counts[rows])
    assert auto_count_weight(counts, rows=rows) != auto_count_weight(counts[:10])


def test_training_curve_labels_whole_epochs_and_marks_the_refit():
    import matplotlib.pyplot as plt
    import pandas as pd

    from bpnet.steps.training import draw_history

    history = pd.DataFrame({"epoch": [1, 2, 3], **{f"{p}_{t}": [3.0, 2.0, 2.5] for p in ("train", "valid")
                                                       for t in ("loss", "profile", "count")}})
    fig = draw_history(history, {"valid_count_mse_before": 2.5, "valid_count_mse_after": 1.2, "alpha": 1.0})
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks)
    star = [ln for ln in fig.axes[2].lines if ln.get_marker() == "*"]
    assert len(star) == 1 and star[0].get_xdata()[0] == 2 and star[0].get_ydata()[0] == 1.2
    assert any("refit" in t.get_text() for t in fig.axes[2].get_legend().get_texts())
    plt.close(fig)
