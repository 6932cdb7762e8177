"""Training throughput (samples/s): BPNet-OSKN, 1000 bp windows, batch 128, fp32 and bf16.

    python benchmarks/bench_train.py [--windows N] [--batches B] [--precisions fp32,bf16]

Cases (each in its own process; ``--windows`` windows of dataset.npz are loaded (a seeded random
subset, all by default), of which ``B x 128`` train-split windows are trained on and 256
valid-split windows validated on):

- ``ours-train_model``: ``bpnet.steps.training.train_model`` (resident uint8/int16 tensors, tensor-indexed
  batches, Adam 0.004). One warm-up call on 2 batches, then a timed call of one epoch of B
  batches; the figure is the epoch's ``train_samples_per_s`` from its history, i.e. the
  training loop alone (its validation pass and resume checkpoint are outside that timer).
- ``ours-step``: the same loop written out (``BatchMaker.batch`` + ``batch_gradients``: forward,
  loss and backward in passes of ``micro_batch_size`` windows + Adam) with the kernels
  ``bpnet.hardware`` picks for this CPU, timed over B batches after 2 warm-up batches; also
  reports the time of batch assembly.
- ``bpnet-lite-fit``: ``bpnetlite.BPNet.fit``, the peer's own training loop, on a
  ``DataLoader(TensorDataset(X int8 one-hot, y float32 counts, labels), batch_size=128)`` that
  samples B batches (X int8 as ``tangermeme.io.extract_loci`` returns it). Warm-up fit on 2
  batches, then a timed fit of one epoch of B batches; the figure is fit's own "Training Time"
  of that epoch (its validation pass is outside it).
- ``bpnet-lite-step``: a plain PyTorch loop over the same bpnet-lite model: batches gathered by
  tensor indexing from the resident tensors, forward, bpnet-lite's loss, backward, gradient
  clipping, Adam (what ``fit`` does per batch, without the DataLoader).

Architecture: bpnet-lite's ``BPNet(n_filters=64, n_layers=9, n_outputs=8, n_control_tracks=0,
trimming=0)`` with its first convolution and profile convolution set to width 25 (its defaults are
21 and 75), so both networks are BPNet-OSKN: a 25 bp stem, 9 residual dilated convolutions
(dilation 2..512), a 25 bp profile head for 4 tasks x 2 strands, 1000 bp in and out. The one
difference is the count head (bpnet-lite: one total; ours: one per task and strand), a
64 -> 1 vs 64 -> 8 linear layer: negligible cost.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time

import common
import numpy as np

BATCH = 128
N_VALID = 256
WARMUP_BATCHES = 2


def _load(case):
    """The dataset (a seeded subset of N windows) with B x 128 train and 256 valid windows picked (seeded);
    all other windows are relabelled test, which training ignores but keeps resident."""
    ds = common.load_subset(case["data"], case["windows"])
    rng = np.random.default_rng(1)
    n = len(ds)
    need = case["batches"] * BATCH
    train = np.flatnonzero(ds.split == "train")
    valid = np.flatnonzero(ds.split == "valid")
    if len(train) < need or len(valid) < N_VALID:
        raise SystemExit(f"--windows {n}: {len(train)} train / {len(valid)} valid windows, need {need} / "
                         f"{N_VALID} for --batches {case['batches']}; raise --windows or lower --batches")
    split = np.full(n, "test", dtype=ds.split.dtype)
    split[rng.choice(train, need, replace=False)] = "train"
    split[rng.choice(valid, N_VALID, replace=False)] = "valid"
    return ds, split


def _train_batches(split, n_batches):
    """``n_batches`` batches of train-split row indices, in a seeded random order (both step loops)."""
    import torch

    train = torch.as_tensor(np.flatnonzero(split == "train"))
    order = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))]
    return [order[i * BATCH:(i + 1) * BATCH] for i in range(n_batches)]


def _with_train(ds, split, n_train):
    """``split`` with only the first ``n_train`` train windows left in train (warm-up runs)."""
    s = split.copy()
    train = np.flatnonzero(s == "train")
    s[train[n_train:]] = "test"
    return dataclasses.replace(ds, split=s)


def ours_train_model(case):
    from bpnet.model.network import BPNetConfig
    from bpnet.steps.training import TrainingConfig, train_model

    ds, split = _load(case)
    cfg = TrainingConfig(max_epochs=1, patience=10, threads=case["threads"], bf16=case["precision"] == "bf16",
                         device="cpu")
    log = logging.getLogger("quiet")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    with tempfile.TemporaryDirectory() as tmp:
        train_model(_with_train(ds, split, WARMUP_BATCHES * BATCH), BPNetConfig(tasks=tuple(ds.tasks)), cfg,
                    f"{tmp}/warmup", log)
        t0 = time.perf_counter()
        model, history = train_model(dataclasses.replace(ds, split=split), BPNetConfig(tasks=tuple(ds.tasks)), cfg,
                                     f"{tmp}/timed", log)
        call_s = time.perf_counter() - t0
    return {"samples_per_s": float(history["train_samples_per_s"].iloc[-1]), "call_s": round(call_s, 2),
            "params": model.num_parameters}


def ours_step(case):
    import torch

    from bpnet.hardware import choose_kernels, cpu_info, micro_batch_size
    from bpnet.model.network import BPNet, BPNetConfig, init_weights
    from bpnet.steps.training import BatchMaker, batch_gradients

    torch.set_num_threads(case["threads"])
    ds, split = _load(case)
    bf16 = case["precision"] == "bf16"
    device = torch.device("cpu")
    maker = BatchMaker(ds.sequence, ds.counts, None, ds.width, len(ds.tasks), device)
    cpu = cpu_info()
    model = BPNet(BPNetConfig(tasks=tuple(ds.tasks))).set_kernels(choose_kernels("auto", "cpu", cpu)[0])
    init_weights(model, 1)
    micro = micro_batch_size(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.004)
    batches = _train_batches(split, case["batches"])
    model.train()

    def step(b):
        t = time.perf_counter()
        x, y, _ = maker.batch(b)
        assembly = time.perf_counter() - t
        opt.zero_grad(set_to_none=True)
        batch_gradients(model, x, y, None, 10.0, micro, bf16)  # as train_model: passes of `micro`
        opt.step()
        return assembly

    for b in batches[:WARMUP_BATCHES]:
        step(b)
    t0 = time.perf_counter()
    assembly = sum(step(b) for b in batches)
    seconds = time.perf_counter() - t0
    return {"samples_per_s": len(batches) * BATCH / seconds, "assembly_ms": 1000 * assembly / len(batches),
            "params": model.num_parameters}


def _lite_model(name: str):
    """bpnet-lite's BPNet shaped as BPNet-OSKN (see the module docstring)."""
    import torch
    from bpnetlite import BPNet

    torch.manual_seed(1)
    model = BPNet(n_filters=64, n_layers=9, n_outputs=8, n_control_tracks=0, trimming=0, count_loss_weight=10,
                  name=name, verbose=False)
    model.iconv = torch.nn.Conv1d(4, 64, kernel_size=25, padding=12)
    model.fconv = torch.nn.Conv1d(64, 8, kernel_size=25, padding=12)
    return model


def _lite_tensors(case):
    """X int8 one-hot (N, 4, 1000), y float32 counts (N, 8, 1000): extract_loci's layout and dtypes."""
    import torch

    from bpnet.io.sequence import one_hot

    ds, split = _load(case)
    x = torch.from_numpy(one_hot(ds.sequence, dtype=np.int8)).transpose(1, 2).contiguous()
    y = torch.from_numpy(ds.counts.astype(np.float32)).transpose(1, 2).contiguous()
    return x, y, split


def lite_fit(case):
    import torch
    from torch.utils.data import DataLoader, RandomSampler, TensorDataset

    torch.set_num_threads(case["threads"])
    x, y, split = _lite_tensors(case)
    train = torch.as_tensor(np.flatnonzero(split == "train"))
    valid = torch.as_tensor(np.flatnonzero(split == "valid"))
    data = TensorDataset(x[train], y[train], torch.ones(len(train), dtype=torch.long))
    x_valid, y_valid = x[valid].float(), y[valid]
    dtype = "bfloat16" if case["precision"] == "bf16" else "float32"

    def loader(n_batches):
        sampler = RandomSampler(data, num_samples=n_batches * BATCH, generator=torch.Generator().manual_seed(1))
        return DataLoader(data, batch_size=BATCH, sampler=sampler)

    with tempfile.TemporaryDirectory() as tmp:
        model = _lite_model(f"{tmp}/bpnet")  # fit saves {name}.torch and {name}.log here
        opt = torch.optim.Adam(model.parameters(), lr=0.004)
        model.fit(loader(WARMUP_BATCHES), opt, X_valid=x_valid, y_valid=y_valid, max_epochs=1, batch_size=BATCH,
                  dtype=dtype, device="cpu")
        t0 = time.perf_counter()
        model.fit(loader(case["batches"]), opt, X_valid=x_valid, y_valid=y_valid, max_epochs=1,
                  batch_size=BATCH, dtype=dtype, device="cpu")
        call_s = time.perf_counter() - t0
        train_s = float(model.logger.data["Training Time"][-1])
    return {"samples_per_s": case["batches"] * BATCH / train_s, "call_s": round(call_s, 2),
            "params": sum(p.numel() for p in model.parameters())}


def lite_step(case):
    import torch
    from bpnetlite.losses import _mixture_loss

    torch.set_num_threads(case["threads"])
    x, y, split = _lite_tensors(case)
    bf16 = case["precision"] == "bf16"
    with tempfile.TemporaryDirectory() as tmp:
        model = _lite_model(f"{tmp}/bpnet")
    opt = torch.optim.Adam(model.parameters(), lr=0.004)
    batches = _train_batches(split, case["batches"])
    model.train()

    def step(b):
        xb, yb = x[b].float(), y[b]
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, logcounts = model(xb)
            _, _, loss = _mixture_loss(yb, logits, logcounts, model.count_loss_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1)
        opt.step()

    for b in batches[:WARMUP_BATCHES]:
        step(b)
    t0 = time.perf_counter()
    for b in batches:
        step(b)
    seconds = time.perf_counter() - t0
    return {"samples_per_s": len(batches) * BATCH / seconds, "params": sum(p.numel() for p in model.parameters())}


KINDS = {"ours-train_model": ours_train_model, "ours-step": ours_step, "bpnet-lite-fit": lite_fit,
         "bpnet-lite-step": lite_step}
LABELS = {
    "ours-train_model": "ours: train_model",
    "ours-step": "ours: raw step (BatchMaker + fwd/bwd/Adam)",
    "bpnet-lite-fit": "bpnet-lite: BPNet.fit (DataLoader)",
    "bpnet-lite-step": "bpnet-lite model, plain PyTorch step",
}


def main() -> None:
    ap = common.base_parser(__doc__)
    ap.add_argument("--windows", type=int, default=0, help="N windows of dataset.npz loaded, a seeded random subset (0: all)")
    ap.add_argument("--batches", type=int, default=30, help="timed batches of 128 per case")
    ap.add_argument("--precisions", default="fp32,bf16")
    args = ap.parse_args()
    if args.worker:
        return common.worker_main(args.worker, KINDS)
    precisions = [p.strip() for p in args.precisions.split(",")]
    if set(precisions) - {"fp32", "bf16"}:
        raise SystemExit(f"--precisions: expected fp32 and/or bf16, got {args.precisions!r}")
    base = {"data": str(args.data), "windows": args.windows, "batches": args.batches, "threads": args.threads}
    cases = [{**base, "name": f"{kind}-{p}", "kind": kind, "precision": p} for p in precisions for kind in KINDS]
    results = [common.run_case(__file__, c) | {"kind": c["kind"], "precision": c["precision"]}
               for c in common.selected(cases, args.only)]
    peer = {r["precision"]: r["samples_per_s"] for r in results if r["kind"] == "bpnet-lite-fit"}
    rows = []
    for r in results:
        rows.append({
            "case": LABELS[r["kind"]], "precision": r["precision"], "rate": r["samples_per_s"],
            "vs": f"{r['samples_per_s'] / peer[r['precision']]:.2f}x" if r["precision"] in peer else "",
            "assembly": f"{r['assembly_ms']:.1f}" if "assembly_ms" in r else "",
            "rss": r["peak_rss_mb"], "params": f"{r['params']:,}" if "params" in r else "",
        })
    notes = [
        f"{args.batches} timed batches of {BATCH} per case after {WARMUP_BATCHES} warm-up batches; "
        f"{args.threads} torch threads; windows loaded: {args.windows or 'all'}",
        "train_model and fit: the loops' own training-time figure for the timed epoch (validation excluded)",
        "peak RSS: each case's own process, including its resident copy of all loaded windows "
        "(ours: uint8 codes + int16 counts; bpnet-lite: int8 one-hot + float32 counts)",
    ]
    table = common.markdown_table(rows, [("case", "case"), ("precision", "precision"), ("rate", "samples/s"),
                                         ("vs", "vs bpnet-lite fit"), ("assembly", "batch assembly ms"),
                                         ("rss", "peak RSS MB"), ("params", "parameters")])
    common.print_report("Training throughput (BPNet-OSKN, 1000 bp, batch 128)", common.command_line(), notes,
                        table, args.threads)


if __name__ == "__main__":
    main()
