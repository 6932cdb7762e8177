"""Contribution scores: DeepLIFT / DeepSHAP with dinucleotide-shuffled references (rule ``contrib_scores``).

For every task ``t`` of a trained BPNet two scalar targets are explained (the paper's choice):

- **profile**: ``sum over strands s and positions i of p_is * l_is`` with ``l = profile_logits`` of
  the task and ``p = softmax(l over positions)`` *detached*: a weighted sum of the logits whose
  weights are the predicted profile of the input itself, so the positions with the most predicted
  reads dominate and the normalising constant of the softmax (invariant to a logit shift) drops out;
- **counts**: ``sum over s of count_logits_s`` (the predicted ``log(1 + total)`` of both strands).

DeepLIFT's rescale rule on every ReLU gives multipliers ``m`` ``(L, 4)`` of the target between an
input ``x`` and a reference ``r``; :func:`deeplift_shap` computes them with forward hooks on the
network's ``nn.ReLU`` modules (BPNet has one per layer), all targets from one forward pass, and
equals ``captum.attr.DeepLift`` (tests/test_interpret.py compares them) at about a sixth of its
cost here. DeepSHAP averages over ``k`` references per input: dinucleotide-shuffled copies of the
input (:func:`dinucleotide_shuffle`, seeded). As in the
official BPNet / DeepSHAP code, the **hypothetical contribution** of base ``b`` at a position is
what the position would contribute if it held ``b``::

    hyp[i, b] = mean over references of  sum_c m[i, c] * (onehot(b)[c] - r[i, c])
              = mean over references of  m[i, b] - sum_c m[i, c] r[i, c]

and the **contribution** of the observed sequence is ``hyp * onehot(x)`` (summed over bases it is
DeepLIFT's ``m . (x - r)``, so ``sum of contributions = target(x) - mean target(r)``, with the
profile target's weights ``p`` taken from ``x``: completeness, checked by the tests).

Output of the rule (``contrib.npz``, ``np.savez``), M explained windows of width W, T tasks:

    index        int64 (M,)          rows of dataset.npz
    chrom, start (M,) str / int64    the windows (core window start)
    sequence     uint8 (M, W)        codes of the core windows (one-hot = bpnet.io.sequence.one_hot)
    hypothetical float16 (T, H, M, W, 4)   hypothetical contributions, heads H in ``heads`` order
    tasks (T,) str, heads (H,) str (profile, counts), n_references () int, seed () int

plus one bigWig per task and head, ``tracks/{task}.{head}.contrib.bw``: the contribution of the
observed base at every position of the explained windows (overlapping windows stitched as in
:mod:`bpnet.steps.export`, nearest window centre wins).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from bpnet.data.dataset import load_dataset
from bpnet.errors import BPNetInputError
from bpnet.hardware import setup_inference
from bpnet.io.npz import read_npz, write_npz
from bpnet.io.sequence import one_hot
from bpnet.io.tracks import TrackWriter, read_chrom_sizes
from bpnet.model.network import BPNet, codes_to_one_hot
from bpnet.model.weights import load_checkpoint
from bpnet.progress import progress_bar
from bpnet.steps.export import export_test_windows

HEADS = ("profile", "counts")
# Windows shuffled per call of the shuffle kernel: a fixed block size, so that the references
# of a window do not depend on how many windows are explained (determinism).
SHUFFLE_BLOCK = 256
N_LETTERS = 5  # A, C, G, T, N: N is shuffled like a letter (it stays N, dinucleotides kept)


# --------------------------------------------------------------------------------------------
# Dinucleotide shuffle
# --------------------------------------------------------------------------------------------


def _shuffle_rows(seqs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniform dinucleotide-preserving shuffle of every row of codes ``(B, L)``.

    The Altschul-Erickson algorithm, vectorised over rows: a sequence is an Eulerian walk on the
    graph of letters whose edges are its dinucleotides. For every letter except the last one of
    the sequence a "last exit" edge is drawn at random; draws whose last edges do not form a tree
    leading to the last letter are redrawn (rejection). The remaining edges of every letter are
    put in random order and walked from the first letter. Every sequence with the same first
    letter and the same dinucleotide counts is equally likely.
    """
    b, length = seqs.shape
    if length < 3:
        return seqs.copy()
    rows = np.arange(b)
    src, dst = seqs[:, :-1].astype(np.int64), seqs[:, 1:].astype(np.int64)
    # Edges grouped by source letter: group v of row r is [offsets[r, v], offsets[r, v] + deg[r, v]).
    order = np.argsort(src, axis=1, kind="stable")
    src_sorted = np.take_along_axis(src, order, axis=1)
    dst_sorted = np.take_along_axis(dst, order, axis=1)
    deg = np.bincount((src + N_LETTERS * rows[:, None]).ravel(), minlength=N_LETTERS * b).reshape(b, N_LETTERS)
    offsets = np.cumsum(deg, axis=1) - deg
    root = seqs[:, -1].astype(np.int64)
    needs_exit = (deg > 0) & (np.arange(N_LETTERS)[None, :] != root[:, None])  # (B, 5)

    last = np.zeros((b, N_LETTERS), dtype=np.int64)  # index (into the grouped edges) of each last exit
    todo = rows
    while todo.size:
        pick = offsets[todo] + (rng.random((todo.size, N_LETTERS)) * np.maximum(deg[todo], 1)).astype(np.int64)
        pick = np.minimum(pick, length - 2)
        last[todo] = pick
        nxt = np.where(needs_exit[todo], dst_sorted[todo[:, None], pick], root[todo, None])
        # Follow the last exits N_LETTERS times: a tree leads every letter to the root.
        cur = np.broadcast_to(np.arange(N_LETTERS), (todo.size, N_LETTERS)).copy()
        local = np.arange(todo.size)[:, None]
        for _ in range(N_LETTERS):
            cur = nxt[local, cur]
        ok = ((cur == root[todo, None]) | ~needs_exit[todo]).all(axis=1)
        todo = todo[~ok]

    # Random order within each letter's group, its last exit at the end of the group.
    key = src_sorted * 2 + rng.random((b, length - 1))
    exit_rows, exit_letters = np.nonzero(needs_exit)
    key[exit_rows, last[exit_rows, exit_letters]] = src_sorted[exit_rows, last[exit_rows, exit_letters]] * 2 + 1.5
    succ = np.take_along_axis(dst_sorted, np.argsort(key, axis=1, kind="stable"), axis=1)

    out = np.empty_like(seqs)
    cur = seqs[:, 0].astype(np.int64)
    out[:, 0] = cur
    ptr = offsets.copy()
    for t in range(1, length):  # one vectorised step over all rows per position
        at = ptr[rows, cur]
        ptr[rows, cur] = at + 1
        cur = succ[rows, at]
        out[:, t] = cur
    return out


def dinucleotide_shuffle(codes: np.ndarray, n_shuffles: int, seed: int) -> np.ndarray:
    """``n_shuffles`` dinucleotide-preserving shuffles of every sequence.

    Args:
        codes: uint8 ``(N, L)`` sequence codes (A=0 C=1 G=2 T=3 N=4).
        n_shuffles: shuffles per sequence (k).
        seed: seed of the shuffles; the same codes and seed give the same shuffles.

    Returns:
        uint8 ``(N, k, L)``: each shuffle keeps the first and last letter and the count of every
        dinucleotide (so also of every letter) of its sequence.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise BPNetInputError(f"dinucleotide_shuffle: expected codes of shape (n, length), got {codes.shape}")
    if codes.size and codes.max() >= N_LETTERS:
        raise BPNetInputError(f"dinucleotide_shuffle: codes must be 0..4 (A, C, G, T, N), got {codes.max()}")
    n, length = codes.shape
    out = np.empty((n, n_shuffles, length), dtype=np.uint8)
    for block, lo in enumerate(range(0, n, SHUFFLE_BLOCK)):
        rng = np.random.default_rng([seed, block])
        chunk = np.repeat(codes[lo:lo + SHUFFLE_BLOCK].astype(np.uint8), n_shuffles, axis=0)
        out[lo:lo + SHUFFLE_BLOCK] = _shuffle_rows(chunk, rng).reshape(-1, n_shuffles, length)
    return out


# --------------------------------------------------------------------------------------------
# DeepLIFT / DeepSHAP
# --------------------------------------------------------------------------------------------


def target_value(outputs: dict[str, torch.Tensor], task: int, head: str, num_strands: int = 2) -> torch.Tensor:
    """The scalar explained for one task and head, ``(B,)``, from the model's outputs.

    ``profile``: ``sum softmax(l).detach() * l`` over the task's strands and positions, ``l`` its
    profile logits ``(B, L, S)``; ``counts``: the sum of the task's count logits over strands.
    """
    channels = slice(task * num_strands, (task + 1) * num_strands)
    if head == "counts":
        return outputs["count_logits"][:, channels].sum(dim=1)
    if head != "profile":
        raise BPNetInputError(f"contribution head must be one of {HEADS}, got {head!r}")
    logits = outputs["profile_logits"][..., channels]
    weights = torch.softmax(logits, dim=1).detach()
    return (weights * logits).sum(dim=(1, 2))


class TaskTarget(nn.Module):
    """``forward(x (B, L, 4), control=None) -> (B,)``: :func:`target_value` of a model as a module
    (the form Captum's ``DeepLift`` explains; used by the tests to validate :func:`deeplift_shap`)."""

    def __init__(self, model: BPNet, task: int, head: str):
        super().__init__()
        if head not in HEADS:
            raise BPNetInputError(f"contribution head must be one of {HEADS}, got {head!r}")
        self.model, self.task, self.head = model, task, head

    def forward(self, x: torch.Tensor, control: torch.Tensor | None = None) -> torch.Tensor:
        return target_value(self.model(x, control), self.task, self.head, self.model.config.num_strands)


# Elementwise nonlinearities explained with the rescale rule (each module must be called once
# per forward pass, as in BPNet, where every layer has its own nn.ReLU).
NONLINEAR = (nn.ReLU, nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softplus)
# |x - reference| below which a unit's plain derivative replaces (y - y_ref) / (x - x_ref)
# (Captum's default).
RESCALE_EPS = 1e-10


class _Rescale(torch.autograd.Function):
    """Forward: the activation's output ``y``; backward: DeepLIFT's rescale multiplier
    ``(y - y_ref) / (z - z_ref)`` in place of the derivative at ``z`` (``slope`` where the
    input barely differs from the reference)."""

    @staticmethod
    def forward(ctx, z, y, z_ref, y_ref, slope):
        dz = z - z_ref
        small = dz.abs() < RESCALE_EPS
        mult = torch.where(small, slope, (y - y_ref) / torch.where(small, torch.ones_like(dz), dz))
        ctx.save_for_backward(mult)
        return y.clone()

    @staticmethod
    def backward(ctx, grad):
        (mult,) = ctx.saved_tensors
        return grad * mult, None, None, None, None


def _slope(module: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The activation's derivative at ``z`` (exact for ReLU, a central difference otherwise)."""
    if isinstance(module, nn.ReLU):
        return (z > 0).to(z.dtype)
    h = 1e-3
    return (module.forward(z + h) - module.forward(z - h)) / (2 * h)  # .forward: no hooks


def deeplift_shap(
    model: nn.Module,
    x: torch.Tensor,
    references: torch.Tensor,
    targets: Sequence,
    control: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hypothetical contributions of several scalar targets, DeepLIFT rescale rule, DeepSHAP averaging.

    Args:
        model: network called as ``model(x)`` or ``model(x, control)``; its nonlinearities are
            modules of :data:`NONLINEAR`, each called once per forward pass.
        x: one-hot inputs ``(B, L, 4)``.
        references: ``(B, k, L, 4)`` references of each input (e.g. shuffles of it).
        targets: callables ``f(outputs) -> (B * k,)`` of the model's outputs.
        control: optional ``(B, L, S)`` extra input, the same for an input and its references.

    Returns:
        ``(len(targets), B, L, 4)`` hypothetical contributions, averaged over the k references.

    How: the references go through the network once without gradients, and every nonlinearity
    records its input and output. The inputs (each repeated k times, one copy per reference) then
    go through it with gradients, every nonlinearity passing its output on unchanged but with the
    rescale multiplier of its (input, reference) pair as its derivative, so the gradient of a
    target with respect to the input copies is DeepLIFT's multiplier (the chain rule of
    multipliers). One such forward pass serves all targets (one backward pass each). This equals
    Captum's ``DeepLift`` (tests/test_interpret.py checks it); Captum runs inputs and references
    forward and backward together once per target, about 6x slower for BPNet's 8 targets.
    """
    if references.dim() != 4 or references.shape[0] != x.shape[0] or references.shape[2:] != x.shape[1:]:
        raise BPNetInputError(f"references {tuple(references.shape)} do not fit inputs {tuple(x.shape)}: "
                              "expected (batch, k, length, 4)")
    b, k = references.shape[:2]
    refs = references.reshape(b * k, *x.shape[1:]).to(x.dtype)
    inputs = x.repeat_interleave(k, dim=0).detach().requires_grad_(True)
    args = () if control is None else (control.repeat_interleave(k, dim=0),)
    stored: list[tuple[torch.Tensor, torch.Tensor]] = []
    mode = {"pass": "reference"}

    def hook(module, module_inputs, output):
        z = module_inputs[0]
        if mode["pass"] == "reference":
            stored.append((z.detach(), output.detach()))
            return None
        z_ref, y_ref = stored.pop(0)
        return _Rescale.apply(z, output.detach(), z_ref, y_ref, _slope(module, z.detach()))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, NONLINEAR)]
    try:
        with torch.no_grad():
            model(refs, *args)
        mode["pass"] = "input"
        outputs = model(inputs, *args)
        if stored:
            raise RuntimeError("deeplift_shap: a nonlinearity ran a different number of times per pass")
        result = torch.empty((len(targets), b, *x.shape[1:]), dtype=x.dtype, device=x.device)
        for i, target in enumerate(targets):
            (mult,) = torch.autograd.grad(target(outputs).sum(), inputs, retain_graph=i + 1 < len(targets))
            hyp = mult - (mult * refs).sum(dim=-1, keepdim=True)
            result[i] = hyp.reshape(b, k, *x.shape[1:]).mean(dim=1)
    finally:
        for h in handles:
            h.remove()
    return result


def contribution_scores(
    model: BPNet,
    codes: np.ndarray,
    n_references: int = 10,
    seed: int = 1,
    heads: Sequence[str] = HEADS,
    tasks: Sequence[int] | None = None,
    batch_size: int = 8,
    control: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    log: logging.Logger | None = None,
    dtype: np.dtype = np.float32,
) -> np.ndarray:
    """Hypothetical contributions of every task and head for many sequences.

    Args:
        model: a BPNet (put in eval mode here).
        codes: uint8 ``(N, L)`` sequence codes.
        n_references: dinucleotide shuffles per sequence (k).
        seed: seed of the shuffles.
        heads: subset of ``("profile", "counts")``.
        tasks: task indices (default all).
        batch_size: sequences per batch (each becomes ``2 k`` network inputs).
        control: optional ``(N, L, S)`` control track for a model that uses one.
        device: torch device.
        log: optional logger for progress lines (windows done, windows/s, ETA).
        dtype: of the result; each batch is rounded into it as it is done (float16: half the
            memory of float32 and no float32 copy, 1.6 GB for the paper's ~25k test windows).

    Returns:
        ``(T', H, N, L, 4)`` hypothetical contributions (tasks and heads in the given order).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise BPNetInputError(f"contribution scores: expected codes of shape (n, length), got {codes.shape}")
    if n_references < 1:
        raise BPNetInputError(f"config key interpretation.n_references: expected >= 1, got {n_references}")
    if model.config.use_control and control is None:
        raise BPNetInputError("this model uses a control track: contribution scores need the control of each window")
    tasks = list(range(model.config.num_tasks)) if tasks is None else list(tasks)
    device = torch.device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    s = model.config.num_strands
    pairs = [(t, h) for t in tasks for h in heads]
    targets = [lambda out, t=t, h=h: target_value(out, t, h, s) for t, h in pairs]
    n, length = codes.shape
    out = np.zeros((len(tasks), len(heads), n, length, 4), dtype=dtype)
    refs_all = dinucleotide_shuffle(codes, n_references, seed)
    with progress_bar(log, n, "contribution scores", unit="window") as bar:
        for lo in range(0, n, batch_size):
            sl = slice(lo, lo + batch_size)
            x = codes_to_one_hot(torch.as_tensor(codes[sl], device=device))
            refs = codes_to_one_hot(torch.as_tensor(refs_all[sl], device=device))
            ctl = None if control is None or not model.config.use_control else torch.as_tensor(
                control[sl], dtype=torch.float32, device=device)
            hyp = deeplift_shap(model, x, refs, targets, ctl).cpu().numpy()
            out[:, :, sl] = hyp.reshape(len(tasks), len(heads), *hyp.shape[1:])
            bar.update(len(x))
    return out


# --------------------------------------------------------------------------------------------
# contrib.npz
# --------------------------------------------------------------------------------------------


@dataclass
class Contributions:
    """The arrays of contrib.npz (M windows of width W, T tasks, H heads)."""

    index: np.ndarray  # int64 (M,)
    chrom: np.ndarray  # str (M,)
    start: np.ndarray  # int64 (M,)
    sequence: np.ndarray  # uint8 (M, W)
    hypothetical: np.ndarray  # float16 (T, H, M, W, 4)
    tasks: list[str]
    heads: list[str]
    n_references: int
    seed: int

    def one_hot(self) -> np.ndarray:
        """float32 ``(M, W, 4)`` one-hot of the windows (N = zeros)."""
        return one_hot(self.sequence)

    def hyp(self, task: str, head: str) -> np.ndarray:
        """float32 ``(M, W, 4)`` hypothetical contributions of ``task`` and ``head``."""
        return self.hypothetical[self._task(task), self._head(head)].astype(np.float32)

    def contrib(self, task: str, head: str) -> np.ndarray:
        """float32 ``(M, W)`` contribution of the observed base at every position."""
        return (self.hyp(task, head) * self.one_hot()).sum(axis=-1)

    def _task(self, task: str) -> int:
        if task not in self.tasks:
            raise BPNetInputError(f"task {task!r} has no contribution scores (tasks: {self.tasks})")
        return self.tasks.index(task)

    def _head(self, head: str) -> int:
        if head not in self.heads:
            raise BPNetInputError(
                f"head {head!r} has no contribution scores (heads: {self.heads}); see interpretation.heads"
            )
        return self.heads.index(head)


def save_contributions(path: str | Path, c: Contributions) -> None:
    """Write ``c`` as an uncompressed .npz (layout in the module docstring)."""
    write_npz(path, dict(
        index=c.index.astype(np.int64), chrom=np.asarray(c.chrom).astype(str),
        start=c.start.astype(np.int64), sequence=c.sequence.astype(np.uint8),
        hypothetical=c.hypothetical.astype(np.float16), tasks=np.asarray(c.tasks), heads=np.asarray(c.heads),
        n_references=np.int64(c.n_references), seed=np.int64(c.seed),
    ))


def load_contributions(path: str | Path) -> Contributions:
    """Read contrib.npz; a missing file or array is a clear error naming the file."""
    path = Path(path)
    keys = ("index", "chrom", "start", "sequence", "hypothetical", "tasks", "heads", "n_references", "seed")
    d = read_npz(path, keys, "contribution", "contrib_scores")
    return Contributions(
        index=d["index"], chrom=d["chrom"].astype(str), start=d["start"], sequence=d["sequence"],
        hypothetical=d["hypothetical"], tasks=[str(t) for t in d["tasks"]], heads=[str(h) for h in d["heads"]],
        n_references=int(d["n_references"]), seed=int(d["seed"]),
    )


def load_model_and_dataset(model_path: str | Path, dataset_path: str | Path, tasks: Sequence[str]):
    """The checkpoint and the memory-mapped dataset an interpretation rule explains, ``(model,
    dataset)``; both must hold ``tasks`` (data.tasks), in order, else one error naming all three."""
    tasks = list(tasks)
    ds = load_dataset(dataset_path)
    model = load_checkpoint(model_path)
    if list(model.config.tasks) != tasks or list(ds.tasks) != tasks:
        raise BPNetInputError(
            f"tasks differ: data.tasks {tasks}, dataset {dataset_path} {list(ds.tasks)}, "
            f"model {model_path} {list(model.config.tasks)}; rebuild the dataset and retrain"
        )
    return model, ds


def contribution_track_paths(outdir: str | Path, tasks: Sequence[str], heads: Sequence[str]) -> list[Path]:
    """``{outdir}/{task}.{head}.contrib.bw`` in (task, head) order."""
    return [Path(outdir) / f"{t}.{h}.contrib.bw" for t in tasks for h in heads]


def write_contribution_tracks(c: Contributions, paths: Sequence[str | Path], chrom_sizes: dict[str, int]) -> int:
    """One bigWig per (task, head) in ``paths`` order: the observed base's contribution per position.

    Overlapping windows are stitched by :func:`bpnet.steps.export.export_test_windows` (nearest window
    centre wins). Returns the number of bases written per track.
    """
    onehot = c.one_hot()
    # (M, W, T*H): channel t * H + h, the order of contribution_track_paths.
    values = np.einsum("thmwb,mwb->mwth", c.hypothetical.astype(np.float32), onehot)
    values = values.reshape(*values.shape[:2], -1)
    with TrackWriter(paths, chrom_sizes) as writer:
        return export_test_windows(writer, c.chrom, c.start, values)


def select_windows(split: np.ndarray, splits: Sequence[str], max_windows: int | None, seed: int) -> np.ndarray:
    """Rows ``(m,)`` (ascending) of the windows in ``splits``; at most ``max_windows``, drawn at random (seeded)."""
    idx = np.flatnonzero(np.isin(split, list(splits)))
    if len(idx) == 0:
        raise BPNetInputError(
            f"config key interpretation.splits: the dataset has no windows in {list(splits)} to explain"
        )
    if max_windows is not None and len(idx) > max_windows:
        rng = np.random.default_rng([seed, 6])
        idx = np.sort(rng.choice(idx, size=max_windows, replace=False))
    return idx.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Rule contrib_scores
# --------------------------------------------------------------------------------------------


def compute_contributions(
    dataset_path: str | Path,
    model_path: str | Path,
    chrom_sizes_path: str | Path,
    contrib_path: str | Path,
    tracks_dir: str | Path,
    tasks: Sequence[str],
    interpretation: Mapping[str, Any],
    seed: int,
    device: str = "auto",
    kernels: str = "auto",
    threads: int = 1,
    log: logging.Logger = logging.getLogger(__name__),
) -> Contributions:
    """Rule ``contrib_scores``: dataset.npz + model -> contrib.npz and contribution bigWigs.

    Args:
        dataset_path: dataset.npz of rule build_dataset.
        model_path: the trained (or imported) model.
        chrom_sizes_path: the genome's chrom sizes (the bigWig headers).
        contrib_path: contrib.npz, written (layout in the module docstring).
        tracks_dir: folder of the bigWigs ``{task}.{head}.contrib.bw``, made here.
        tasks: the config's task names (data.tasks); the dataset and the model must have them.
        interpretation: the config's ``interpretation`` section (splits, max_windows, heads,
            n_references, batch_size).
        seed, device, kernels: the config's top-level keys.
        threads: the cores the job may use.

    Returns the contributions written to ``contrib_path``.
    """
    cfg = interpretation
    tasks, heads, seed = list(tasks), list(cfg["heads"]), int(seed)
    # the tracks folder is a directory() output: experiments may differ in tasks and heads
    Path(tracks_dir).mkdir(parents=True, exist_ok=True)
    paths = contribution_track_paths(tracks_dir, tasks, heads)
    model, ds = load_model_and_dataset(model_path, dataset_path, tasks)
    chrom_sizes = read_chrom_sizes(chrom_sizes_path)
    torch.manual_seed(seed)
    device = setup_inference(model, device, kernels, threads, log)
    index = select_windows(ds.split, cfg["splits"], cfg["max_windows"], seed)
    codes = ds.sequence[index, ds.core]
    control = None
    if model.config.use_control:
        if ds.control is None:
            raise BPNetInputError(f"the model uses a control track but {dataset_path} has none")
        control = ds.control[index, ds.core]
    log.info(
        "explaining %d windows of %d bp (%s), heads %s, %d tasks, %d dinucleotide-shuffled references each, on %s",
        len(index), ds.width, ", ".join(cfg["splits"]), ", ".join(heads), len(tasks), cfg["n_references"], device,
    )
    hyp = contribution_scores(
        model, codes, cfg["n_references"], seed, heads, batch_size=cfg["batch_size"], control=control,
        device=device, log=log, dtype=np.float16,
    )
    c = Contributions(
        index=index, chrom=ds.chrom[index].astype(str), start=ds.start[index].astype(np.int64), sequence=codes,
        hypothetical=hyp, tasks=tasks, heads=heads, n_references=int(cfg["n_references"]),
        seed=seed,
    )
    save_contributions(contrib_path, c)
    written = write_contribution_tracks(c, paths, chrom_sizes)
    log.info("wrote %s and %d contribution tracks (%d bases each)", contrib_path, len(paths), written)
    return c
