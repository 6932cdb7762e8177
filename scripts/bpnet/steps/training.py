"""Training BPNet with the paper's settings: Adam 0.004, batch 128, early stopping, augmentation.

The whole training set stays resident as compact tensors (``uint8`` sequence codes, integer
counts) on the training device; each batch is gathered, shifted, reverse-complemented and one-hot
encoded with tensor indexing, so there is no Python work per sample in the loop.

Resuming: after every epoch the full state (model, optimizer, best weights, history, patience
counter) is written to ``<model dir>/resume.pt``; a rerun of an interrupted training continues
from it (epoch RNGs are derived from the seed and the epoch number, so a resumed run gives the
same weights as an uninterrupted one). The file is removed when training ends; it is the one file
written beside the rule's outputs, on purpose, because Snakemake deletes the outputs of a failed
job. It is loaded with ``torch.load(weights_only=True)`` (tensors and plain values only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch

from bpnet.data.dataset import load_dataset
from bpnet.errors import BPNetInputError
from bpnet.hardware import (
    choose_kernels,
    cpu_info,
    inference_batch_size,
    micro_batch_size,
    resolve_bf16,
    resolve_device,
    usable_threads,
)
from bpnet.io.npz import row_chunks
from bpnet.model.network import (
    BPNet,
    BPNetConfig,
    bpnet_loss,
    codes_to_one_hot,
    init_weights,
    strand_swap_permutation,
)
from bpnet.model.weights import save_checkpoint
from bpnet.progress import progress_bar


@dataclass
class TrainingConfig:
    """The ``training`` section of the config (defaults: the paper's settings)."""

    learning_rate: float = 0.004
    lr_schedule: str = "constant"  # the paper's; or cosine: decay to 0 over max_epochs (see learning_rate_at)
    batch_size: int = 128
    count_weight: float | str = 10.0  # a number, or "auto": median total per strand / 10, >= 1
    max_epochs: int = 200
    patience: int = 5
    max_shift: int = 0
    reverse_complement: bool = False
    bf16: bool | str = "auto"  # true / false, or auto: bf16 where it is native (bpnet.hardware)
    refit_count_head: bool = True  # closed-form ridge refit of the count heads after training
    threads: int = 2
    seed: int = 1
    device: str = "auto"
    kernels: str = "auto"  # plain, channels_last, or auto: by the hardware (bpnet.hardware)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, training: dict, seed: int, device: str, kernels: str = "auto") -> "TrainingConfig":
        known = {f for f in cls.__dataclass_fields__} - {"seed", "device", "kernels", "extra"}
        unknown = set(training) - known
        if unknown:
            raise BPNetInputError(f"config section training: unknown key(s) {sorted(unknown)}")
        return cls(**training, seed=seed, device=device, kernels=kernels)


def gather_rows(array: np.ndarray, rows: np.ndarray, dtype=None) -> np.ndarray:
    """``array[rows]`` (a memory map: only those rows are read) as a new in-memory array of
    ``dtype``, filled a chunk of rows at a time, so no full-size temporary exists beside it."""
    out = np.empty((len(rows),) + tuple(array.shape[1:]), dtype=dtype or array.dtype)
    for lo, part in row_chunks(array, rows):
        out[lo:lo + len(part)] = part
    return out


class BatchMaker:
    """Gathers batches from resident tensors, with optional shift and reverse complement.

    Args:
        sequence: ``(N, W + 2C)`` uint8 codes.
        counts: ``(N, W + 2C, T*S)`` integer counts.
        control: ``(N, W + 2C, S)`` float control or None.
        width: core window width ``W``; ``C`` = (stored length - W) / 2.
        device: where the tensors live and batches are built.
        rows: the dataset rows batches are drawn from (training and validation); only they are
            held in memory, read chunk by chunk from the memory-mapped dataset (the paper's 157k
            windows: 2.2 GB of counts in int16, not the 2.7 GB of all rows plus a copy). Batches
            and targets are still asked for by dataset row. None: all rows.
    """

    def __init__(self, sequence, counts, control, width: int, num_tasks: int, device: torch.device,
                 rows: np.ndarray | None = None):
        self.device = device
        n = len(sequence)
        rows = np.arange(n) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        local = np.full(n, -1, dtype=np.int64)
        local[rows] = np.arange(len(rows))
        self.local = torch.as_tensor(local).to(device)  # dataset row -> row of the tensors here
        self.sequence = torch.from_numpy(gather_rows(sequence, rows)).to(device)  # in memory: read every epoch
        # int16 keeps memory low where counts fit (cast to float per batch)
        top = max((float(part.max(initial=0)) for _, part in row_chunks(counts, rows)), default=0.0)
        small = top < 2**15
        self.counts = torch.from_numpy(gather_rows(counts, rows, np.int16 if small else np.int32)).to(device)
        self.control = None if control is None else torch.from_numpy(gather_rows(control, rows, np.float32)).to(device)
        self.width = width
        self.context = (self.sequence.shape[1] - width) // 2
        self.swap = strand_swap_permutation(num_tasks, counts.shape[-1] // num_tasks).to(device)
        self.positions = torch.arange(width, device=device)

    def _rows(self, idx: torch.Tensor) -> torch.Tensor:
        rows = self.local[idx.to(self.device)]
        if bool((rows < 0).any()):
            raise ValueError("BatchMaker: a requested dataset row is not among the rows held")
        return rows

    def count_targets(self, idx: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """The count heads' target ``log(1 + total)`` over the core window, ``(len(idx), T*S)``
        float64, summed chunk by chunk (no copy of all the windows' counts)."""
        core = slice(self.context, self.context + self.width)
        idx = self._rows(torch.as_tensor(np.ascontiguousarray(idx)))
        totals = [self.counts[idx[lo:lo + chunk], core].sum(dim=1, dtype=torch.float64).cpu()
                  for lo in range(0, len(idx), chunk)]
        return np.log1p(torch.cat(totals).numpy()) if totals else np.zeros((0, self.counts.shape[2]))

    def batch(self, idx: torch.Tensor, shift: torch.Tensor | None = None, rc: torch.Tensor | None = None):
        """One batch: one-hot ``(B, W, 4)``, counts ``(B, W, T*S)`` float, control or None.

        ``shift`` ``(B,)`` ints in [-C, C] move each window; ``rc`` ``(B,)`` bools reverse-complement
        it (positions flipped, A<->T, C<->G, and the strands of every task swapped).
        """
        idx = self._rows(idx)
        start = torch.full_like(idx, self.context) if shift is None else self.context + shift.to(self.device)
        pos = start[:, None] + self.positions[None, :]  # (B, W)
        rows = idx[:, None]
        seq = self.sequence[rows, pos]
        counts = self.counts[rows, pos].float()
        control = None if self.control is None else self.control[rows, pos]
        if rc is not None and bool(rc.any()):
            rc = rc.to(self.device)
            seq_rc = torch.where(seq < 4, 3 - seq.to(torch.int16), 4).to(seq.dtype).flip(1)
            seq = torch.where(rc[:, None], seq_rc, seq)
            counts = torch.where(rc[:, None, None], counts.flip(1)[..., self.swap], counts)
            if control is not None:
                control = torch.where(rc[:, None, None], control.flip(1).flip(2), control)
        return codes_to_one_hot(seq), counts, control


def auto_count_weight(counts: np.ndarray, num_strands: int = 2, rows: np.ndarray | None = None) -> float:
    """ChromBPNet's heuristic: median total counts per window and strand / 10, at least 1.

    ``counts`` ``(N, L, T*S)``, of windows ``rows`` (default all; read a chunk of windows at a
    time, so a memory map is never copied whole); the median is over windows and channels, since
    each channel has its own count loss term.
    """
    totals = [part.sum(axis=1, dtype=np.int64).ravel() for _, part in row_chunks(counts, rows)]
    return float(max(1.0, np.median(np.concatenate(totals) if totals else np.zeros(0)) / 10.0))


def init_count_bias(model: BPNet, targets: np.ndarray) -> None:
    """Start every count head at the mean training target, per channel.

    With torch's (or Keras') zero-centred initialisation the heads start near log(1 + n) = 0 while
    the targets sit near log(1 + 250) ~ 5.5; Adam moves a bias by at most the learning rate per
    step, so on a few thousand windows the first epochs would be spent on the mean alone, and the
    large early count error drags the shared layers along. Starting at the mean removes both.
    """
    mean = torch.as_tensor(targets.mean(axis=0), dtype=torch.float32)
    s = model.config.num_strands
    with torch.no_grad():
        for t, head in enumerate(model.count_heads):
            head.bias.copy_(mean[t * s:(t + 1) * s])


@torch.no_grad()
def pooled_features(model: BPNet, maker: "BatchMaker", idx: np.ndarray, log: logging.Logger | None = None,
                    what: str = "windows") -> np.ndarray:
    """The count heads' inputs for windows ``idx`` (no augmentation, float32 as at prediction):
    ``(n, H)``, plus ``(n, S)`` log(1 + control total) columns when the model uses a control track.
    With ``log``, progress lines (a forward pass over the paper's ~97k training windows takes
    minutes on a CPU)."""
    model.eval()
    batch_size = inference_batch_size(maker.device)
    out = []
    with progress_bar(log, len(idx), f"count head refit, {what}", unit="window") as bar:
        for lo in range(0, len(idx), batch_size):
            x, _, ctl = maker.batch(torch.as_tensor(idx[lo:lo + batch_size]))
            cols = [model.backbone(x).mean(dim=1)]
            if ctl is not None:
                cols.append(torch.log1p(ctl.sum(dim=1)))
            out.append(torch.cat(cols, dim=1).double().cpu())
            bar.update(len(x))
    return torch.cat(out).numpy()


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with an unpenalised intercept: ``y ~ x @ w.T + b``; returns ``(w, b)``.

    Features are standardised for the fit so ``alpha`` means the same for every feature."""
    mx, sx = x.mean(axis=0), x.std(axis=0) + 1e-12
    my = y.mean(axis=0)
    z = (x - mx) / sx
    gram = z.T @ z + alpha * len(z) * np.eye(z.shape[1])
    wz = np.linalg.solve(gram, z.T @ (y - my))  # (H, C)
    w = (wz / sx[:, None]).T
    return w, my - w @ mx


def refit_count_heads(model: BPNet, maker: "BatchMaker", train_idx: np.ndarray, valid_idx: np.ndarray,
                      y_tr: np.ndarray, log: logging.Logger, alphas=tuple(10.0 ** np.arange(-6, 3))) -> dict:
    """Refit the count heads in closed form on the trained backbone (the paper's architecture is kept).

    The count head is a linear map of features averaged over 1000 positions: those averages differ
    between windows by ~1 % of their size, so the head needs weights of order 10-100, which Adam at
    lr 0.004 reaches only after thousands of steps; on a few thousand windows training stops long
    before (the shared layers do learn what the counts need: a linear fit on them predicts far
    better than the trained head). So, with the backbone frozen, the count heads (and the control
    count weights) are replaced by the ridge solution of the training objective, the count MSE on
    the training windows, with the penalty chosen on the validation windows; the refit is kept only
    if it lowers the validation count MSE.
    """
    cfg = model.config
    x_tr = pooled_features(model, maker, train_idx, log, "training windows")
    x_va = pooled_features(model, maker, valid_idx, log, "validation windows")
    y_va = maker.count_targets(valid_idx)
    h, s = cfg.hidden_size, cfg.num_strands

    def current(x):
        with torch.no_grad():
            w = torch.cat([hd.weight for hd in model.count_heads]).double().cpu().numpy()
            b = torch.cat([hd.bias for hd in model.count_heads]).double().cpu().numpy()
            pred = x[:, :h] @ w.T + b
            if cfg.use_control:
                for t, m in enumerate(model.control_count):
                    pred[:, t * s:(t + 1) * s] += x[:, h:] @ m.weight.double().cpu().numpy().T
        return pred

    def mse(pred, y):  # the training objective's count term: per task mean over strands, summed
        return float(((pred - y) ** 2).mean(axis=0).reshape(-1, s).mean(axis=1).sum())

    before = mse(current(x_va), y_va)
    fits = {a: ridge_fit(x_tr, y_tr, a) for a in alphas}
    scores = {a: mse(x_va @ w.T + b, y_va) for a, (w, b) in fits.items()}
    alpha = min(scores, key=scores.get)
    result = {"valid_count_mse_before": before, "valid_count_mse_after": scores[alpha], "alpha": alpha}
    if scores[alpha] >= before:
        log.info("count head refit: kept the trained heads (valid count MSE %.4f; best refit %.4f)", before, scores[alpha])
        result["applied"] = False
        return result
    w, b = fits[alpha]
    with torch.no_grad():
        for t, head in enumerate(model.count_heads):
            rows = slice(t * s, (t + 1) * s)
            head.weight.copy_(torch.as_tensor(w[rows, :h], dtype=head.weight.dtype))
            head.bias.copy_(torch.as_tensor(b[rows], dtype=head.bias.dtype))
            if cfg.use_control:
                model.control_count[t].weight.copy_(torch.as_tensor(w[rows, h:], dtype=head.weight.dtype))
    log.info("count head refit (ridge alpha %.0e): valid count MSE %.4f -> %.4f", alpha, before, scores[alpha])
    result["applied"] = True
    return result


def _fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def dataset_fingerprint(dataset) -> str:
    """A cheap identity of a dataset's contents (shapes, splits, sums) for the resume check."""
    def total(array):  # a chunk at a time: one pass would map the whole file beside training's copy
        return sum(int(part.sum(dtype=np.int64)) for _, part in row_chunks(array))

    sums = total(dataset.counts), total(dataset.sequence)
    return _fingerprint(
        list(dataset.sequence.shape), list(dataset.counts.shape), np.unique(dataset.split, return_counts=True)[1].tolist(),
        *sums, list(dataset.tasks),
    )


def learning_rate_at(cfg: TrainingConfig, step: int, total_steps: int) -> float:
    """Adam's learning rate at optimisation ``step`` (0-based) of ``total_steps``.

    ``constant``: the paper's ``learning_rate`` throughout (early stopping ends training).
    ``cosine``: ``learning_rate * (1 + cos(pi * step / total_steps)) / 2``, from the full rate
    down to 0 at the end of ``max_epochs``: the last epochs take small steps around what the
    first ones found, so a short training (a few epochs) ends where a constant rate would need
    several more epochs and early stopping to get.
    """
    if cfg.lr_schedule == "constant":
        return cfg.learning_rate
    if cfg.lr_schedule == "cosine":
        return cfg.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    raise BPNetInputError(f"config key training.lr_schedule: expected constant or cosine, got {cfg.lr_schedule!r}")


def batch_gradients(model: BPNet, x: torch.Tensor, y: torch.Tensor, control: torch.Tensor | None,
                    count_weight: float, micro: int, bf16: bool) -> dict[str, float]:
    """Accumulate the gradient of the batch loss into ``model``'s ``.grad``; return the loss terms.

    The batch (``x`` ``(B, L, 4)``, counts ``y`` ``(B, L, C)``, ``control``) runs in passes of at
    most ``micro`` windows, each pass's loss weighted by its share of the batch: the loss is a
    mean over windows, so the gradients add up to the whole batch's (to float rounding) while a
    pass's activations stay in cache. Returns the batch means of ``loss``, ``profile``, ``count``.
    """
    n = len(x)
    sums = {"loss": 0.0, "profile": 0.0, "count": 0.0}
    for lo in range(0, n, micro):
        part = slice(lo, lo + micro)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x[part], None if control is None else control[part])
        terms = bpnet_loss(out, y[part], count_weight, model.config.num_strands)
        share = len(x[part]) / n
        (terms["loss"] * share).backward()
        for k in sums:
            sums[k] += terms[k].item() * share
    return sums


def time_precisions(model_config: BPNetConfig, width: int, device: torch.device, kernels: str,
                    batch_size: int = 32, repeats: int = 2) -> tuple[float, float]:
    """Seconds per training step (forward, loss, backward) in float32 and in bf16 autocast.

    A fresh model with ``kernels`` on a random batch of ``batch_size`` windows of ``width`` bp;
    one warm-up step each, then ``repeats`` steps each, interleaved, the fastest counted. Runs
    under a forked RNG, so the training that follows draws the same numbers as without it.
    """
    def step(model, x, y, ctl, bf16):
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = bpnet_loss(model(x, ctl), y, model_config.count_loss_weight, model_config.num_strands)["loss"]
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t

    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(0)
        model = BPNet(model_config).set_kernels(kernels).to(device)
        x = codes_to_one_hot(torch.randint(0, 4, (batch_size, width), generator=gen)).to(device)
        y = torch.poisson(torch.full((batch_size, width, model_config.num_outputs), 0.2), generator=gen).to(device)
        ctl = (torch.zeros(batch_size, width, model_config.num_strands, device=device)
               if model_config.use_control else None)
        best = {False: math.inf, True: math.inf}
        for r in range(repeats + 1):
            for bf16 in best:
                seconds = step(model, x, y, ctl, bf16)
                if r:  # the first round warms up
                    best[bf16] = min(best[bf16], seconds)
    return best[False], best[True]


def evaluate_loss(model: BPNet, maker: BatchMaker, idx: torch.Tensor, batch_size: int, count_weight: float, bf16: bool):
    """Mean loss terms over windows ``idx`` (no augmentation, eval mode)."""
    model.eval()
    sums = {"loss": 0.0, "profile": 0.0, "count": 0.0}
    with torch.no_grad():
        for lo in range(0, len(idx), batch_size):
            b = idx[lo:lo + batch_size]
            x, y, ctl = maker.batch(b)
            with torch.autocast(maker.device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x, ctl)
            terms = bpnet_loss(out, y, count_weight, model.config.num_strands)
            for k in sums:
                sums[k] += terms[k].item() * len(b)
    return {k: v / max(len(idx), 1) for k, v in sums.items()}


def train_model(
    dataset,
    model_config: BPNetConfig,
    cfg: TrainingConfig,
    out_dir: str | Path,
    log: logging.Logger | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    progress_interval: float | None = None,
) -> tuple[BPNet, pd.DataFrame]:
    """Train on the dataset's train split with early stopping on the valid split.

    Args:
        dataset: a :class:`bpnet.data.dataset.Dataset` (sequence, counts, control, split, width, tasks).
        model_config: the network's config; its tasks must equal the dataset's.
        cfg: training settings.
        out_dir: folder for ``resume.pt`` while training runs.
        on_epoch_end: called as ``f(epoch, history_row)`` after the resume state is saved.
        progress_interval: seconds between progress lines within an epoch (batch i/n, windows/s,
            ETA); None: :data:`bpnet.progress.PROGRESS_INTERVAL_S`.

    Returns:
        The model with the best validation weights restored, and the per-epoch history. The model
        carries ``count_refit`` (what the count-head refit did) and ``training_setup`` (device, CPU,
        kernels and precision the training ran with).
    """
    log = log or logging.getLogger("bpnet")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if tuple(model_config.tasks) != tuple(dataset.tasks):
        raise BPNetInputError(f"model tasks {model_config.tasks} differ from the dataset's tasks {tuple(dataset.tasks)}")
    if cfg.max_shift > dataset.extra_context:
        raise BPNetInputError(
            f"config key training.max_shift = {cfg.max_shift} needs at least that much extra sequence: "
            f"set dataset.extra_context >= {cfg.max_shift} (it is {dataset.extra_context})"
        )
    if model_config.use_control and dataset.control is None:
        raise BPNetInputError("model.use_control is true but the dataset has no control track (set data.control)")
    train_idx = np.flatnonzero(dataset.split == "train")
    valid_idx = np.flatnonzero(dataset.split == "valid")
    if len(train_idx) == 0:
        raise BPNetInputError("the dataset has no training windows: check windows.valid_chroms / test_chroms")
    if len(valid_idx) == 0:
        raise BPNetInputError("the dataset has no validation windows (needed for early stopping): check windows.valid_chroms")

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device, log)
    count_weight = (
        auto_count_weight(dataset.counts, rows=train_idx) if cfg.count_weight == "auto" else float(cfg.count_weight)
    )
    model_config.count_loss_weight = count_weight
    kernels, kernels_why = choose_kernels(cfg.kernels, device.type, cpu_info() if device.type == "cpu" else None)
    bf16, bf16_why = resolve_bf16(
        cfg.bf16, device, lambda: time_precisions(model_config, dataset.width, device, kernels))
    micro = micro_batch_size(device)
    setup = {"device": str(device), "cpu": cpu_info().describe(), "kernels": kernels, "bf16": bf16,
             "micro_batch": min(micro, cfg.batch_size), "threads": cfg.threads}
    log.info(
        "training on %s: %d train / %d valid windows of %d bp, %d tasks, lambda = %.3g, threads = %d",
        device, len(train_idx), len(valid_idx), dataset.width, len(dataset.tasks), count_weight, cfg.threads,
    )
    log.info("precision: %s (%s)", "bf16 autocast" if bf16 else "float32", bf16_why)
    log.info("kernels: %s (%s); batches of %d in passes of %d windows", kernels, kernels_why, cfg.batch_size,
             setup["micro_batch"])
    maker = BatchMaker(dataset.sequence, dataset.counts, dataset.control, dataset.width, len(dataset.tasks), device,
                       rows=np.concatenate([train_idx, valid_idx]))
    model = BPNet(model_config).set_kernels(kernels)
    init_weights(model, cfg.seed)
    train_targets = maker.count_targets(train_idx)  # for the bias start and the refit
    init_count_bias(model, train_targets)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)

    # the resolved precision and kernels, not "auto": a resumed run continues as it started
    fingerprint = _fingerprint(model_config.to_dict(), {**cfg.__dict__, **setup}, dataset_fingerprint(dataset))
    resume_path = out_dir / "resume.pt"
    history: list[dict] = []
    best_state, best_loss, bad_epochs, start_epoch = None, math.inf, 0, 1
    if resume_path.exists():
        state = torch.load(resume_path, map_location=device, weights_only=True)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            best_state = state["best_model"]
            best_loss, bad_epochs = state["best_loss"], state["bad_epochs"]
            history = json.loads(state["history"])
            start_epoch = state["epoch"] + 1
            log.info("resuming an interrupted training after epoch %d (best valid loss %.4f)", state["epoch"], best_loss)
        else:
            log.info("ignoring %s: it belongs to another config or dataset; starting over", resume_path)

    train_t = torch.as_tensor(train_idx)
    valid_t = torch.as_tensor(valid_idx)
    ctx = maker.context
    for epoch in range(start_epoch, cfg.max_epochs + 1):
        if bad_epochs >= cfg.patience:
            break
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)  # per-epoch RNG: resumable
        order = train_t[torch.randperm(len(train_t), generator=gen)]
        model.train()
        sums = {"loss": 0.0, "profile": 0.0, "count": 0.0}
        n_batches = math.ceil(len(order) / cfg.batch_size)
        with progress_bar(log, len(order), f"epoch {epoch}", unit="window", interval=progress_interval) as bar:
            for bi in range(n_batches):
                for group in opt.param_groups:  # a function of the step alone: resumes exactly
                    group["lr"] = learning_rate_at(cfg, (epoch - 1) * n_batches + bi, cfg.max_epochs * n_batches)
                b = order[bi * cfg.batch_size:(bi + 1) * cfg.batch_size]
                shift = (torch.randint(-cfg.max_shift, cfg.max_shift + 1, (len(b),), generator=gen)
                         if cfg.max_shift else None)
                rc = torch.rand(len(b), generator=gen) < 0.5 if cfg.reverse_complement else None
                x, y, ctl = maker.batch(b, shift if ctx else None, rc)
                opt.zero_grad(set_to_none=True)
                for k, v in batch_gradients(model, x, y, ctl, count_weight, micro, bf16).items():
                    sums[k] += v * len(b)
                opt.step()
                bar.set_description_str(  # the mean loss of the windows so far (the last batch may be short)
                    f"epoch {epoch}, batch {bi + 1}/{n_batches}, loss {sums['loss'] / (bar.n + len(b)):.1f}",
                    refresh=False)
                bar.update(len(b))
        train_s = time.perf_counter() - t0
        valid = evaluate_loss(model, maker, valid_t, inference_batch_size(device), count_weight, bf16)
        improved = valid["loss"] < best_loss
        if improved:
            best_loss, bad_epochs = valid["loss"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        row = {
            "epoch": epoch,
            **{f"train_{k}": v / len(order) for k, v in sums.items()},
            **{f"valid_{k}": v for k, v in valid.items()},
            "seconds": round(time.perf_counter() - t0, 3),
            "train_samples_per_s": round(len(order) / train_s, 1),
            "learning_rate": opt.param_groups[0]["lr"],  # at the epoch's last step
            "best": improved,
        }
        history.append(row)
        log.info(
            "epoch %d/%d: train loss %.3f (profile %.2f, count %.4f), valid loss %.3f (profile %.2f, count %.4f)%s, %.1f s, %.0f windows/s",
            epoch, cfg.max_epochs, row["train_loss"], row["train_profile"], row["train_count"], valid["loss"],
            valid["profile"], valid["count"], " *best*" if improved else f" (no gain {bad_epochs}/{cfg.patience})",
            row["seconds"], row["train_samples_per_s"],
        )
        torch.save(
            {
                "fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "best_model": best_state, "best_loss": best_loss, "bad_epochs": bad_epochs, "history": json.dumps(history),
            },
            resume_path.with_suffix(".tmp"),
        )
        resume_path.with_suffix(".tmp").replace(resume_path)  # atomic: never a half-written state
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    if bad_epochs >= cfg.patience:
        log.info("early stopping: no validation gain for %d epochs; restoring the best weights", cfg.patience)
    model.load_state_dict(best_state)
    model.count_refit = None
    model.training_setup = setup
    if cfg.refit_count_head:
        model.count_refit = refit_count_heads(model, maker, train_idx, valid_idx, train_targets, log)
    model.to("cpu").eval()
    return model, pd.DataFrame(history)


def plot_history(history: pd.DataFrame, path: str | Path, refit: Mapping[str, Any] | None = None) -> None:
    """:func:`draw_history` saved to ``path``."""
    import matplotlib.pyplot as plt

    fig = draw_history(history, refit)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_history(history: pd.DataFrame, refit: Mapping[str, Any] | None = None):
    """Training curves (a matplotlib Figure): total, profile and count loss per epoch, train vs valid, the best epoch
    (the weights kept) marked; with ``refit`` (the count-head refit's result), the validation
    count MSE after the refit marked at the best epoch, since the refit replaced the count heads
    whose loss the curves show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    best = int(history.loc[history["valid_loss"].idxmin(), "epoch"])
    panels = (("loss", "total loss", "profile NLL + lambda x count MSE"),
              ("profile", "profile", "multinomial NLL per window"),
              ("count", "counts", "MSE of log(1 + reads)"))
    for ax, (term, title, ylabel) in zip(axes, panels):
        ax.plot(history["epoch"], history[f"train_{term}"], "o-", label="train", ms=3)
        ax.plot(history["epoch"], history[f"valid_{term}"], "o-", label="valid", ms=3)
        ax.axvline(best, color="grey", ls="--", lw=1, label=f"best epoch ({best}), kept")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if refit and refit.get("valid_count_mse_after") is not None:
        after, before = float(refit["valid_count_mse_after"]), float(refit["valid_count_mse_before"])
        kept = after < before
        axes[2].plot([best], [after], marker="*", ms=12, color="C3", ls="none",
                     label=f"valid after count-head refit ({after:.3g})" if kept else "refit not kept")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def train_and_save(
    dataset_path: str,
    model_path: str,
    history_path: str,
    curve_path: str,
    model_section: Mapping[str, Any],
    training_section: Mapping[str, Any],
    seed: int,
    device: str = "auto",
    kernels: str = "auto",
    threads: int = 1,
    log: logging.Logger = logging.getLogger(__name__),
) -> tuple[BPNet, pd.DataFrame]:
    """Rule ``train``: dataset.npz -> model.safetensors, history.tsv, training_curve.png.

    Args:
        dataset_path: dataset.npz of rule build_dataset.
        model_path, history_path, curve_path: the outputs.
        model_section, training_section: the config's ``model`` and ``training`` sections.
        seed, device, kernels: the config's top-level keys.
        threads: the cores the job may use (torch never runs more).

    Returns the trained model (best epoch, count head refit) and the history table.
    """
    dataset = load_dataset(dataset_path)
    model_config = BPNetConfig(
        hidden_size=model_section["hidden_size"],
        stem_kernel=model_section["stem_kernel"],
        num_dilated_layers=model_section["num_dilated_layers"],
        dilated_kernel=model_section["dilated_kernel"],
        profile_kernel=model_section["profile_kernel"],
        use_control=model_section["use_control"],
        tasks=tuple(dataset.tasks),
        num_strands=dataset.strands,
    )
    training = dict(training_section)
    training["threads"] = usable_threads(threads, log)  # torch threads: the rule's, at most the cores it has
    cfg = TrainingConfig.from_config(training, seed=seed, device=device, kernels=kernels)
    out_dir = Path(model_path).parent
    model, history = train_model(dataset, model_config, cfg, out_dir, log)
    best = history.loc[history["valid_loss"].idxmin()]
    save_checkpoint(
        model,
        model_path,
        metadata={
            "best_epoch": int(best["epoch"]),
            "best_valid_loss": float(best["valid_loss"]),
            "window_width": int(dataset.width),
            "training": {k: v for k, v in cfg.__dict__.items() if k != "extra"},
            "count_head_refit": model.count_refit,
            "setup": model.training_setup,  # device, CPU, kernels and precision actually used
        },
    )
    history.to_csv(history_path, sep="\t", index=False)
    plot_history(history, curve_path, model.count_refit)
    (out_dir / "resume.pt").unlink(missing_ok=True)
    log.info("best epoch %d, valid loss %.4f; model written to %s", best["epoch"], best["valid_loss"], model_path)
    return model, history
