"""Test metrics after the same number of epochs: our training loop vs bpnet-lite's, same data.

    python benchmarks/bench_quality.py [--windows N] [--epochs E] [--precision bf16]

Both sides train BPNet-OSKN (the shape of ``bench_train.py``: 25 bp stem, 9 dilated layers, 25 bp
profile head, 1000 bp, batch 128, Adam 0.004, count weight 10, no augmentation) for exactly E
epochs (no early stopping) on the train windows of the same seeded subset of dataset.npz, each
with its own loop and its own choice of the best epoch on the valid windows:

- ``ours``: ``bpnet.steps.training.train_model`` as the workflow runs it (best-epoch weights restored;
  count-head bias start and closed-form count-head refit, its defaults);
- ``bpnet-lite``: ``bpnetlite.BPNet.fit`` on a ``DataLoader`` over int8 one-hot and float32
  counts (gradient clipping at 1, its default); the model it saved at its best validation loss
  (``{name}.torch``) is the one scored.

Each then predicts the test windows, scored with the workflow's own metric code (``bpnet.steps.metrics``):

- profile auPRC at bin size 1 per TF (the paper's definition; each channel's predicted shape is
  the softmax of its logits over positions, which for bpnet-lite's joint softmax over all 8
  tracks is the same per-channel shape);
- count Spearman of log(1 + total reads of the window over all 8 tracks): bpnet-lite predicts one
  total per window, ours 8 (summed here). Ours per TF is in the workflow's metrics.tsv.
"""

from __future__ import annotations

import logging
import tempfile
import time

import common
import numpy as np
from bench_train import _lite_model

BATCH = 128


def _split_data(case):
    """Dataset subset with its own train / valid / test split (the seeded subset of bench_train)."""
    ds = common.load_subset(case["data"], case["windows"])
    sizes = {s: int((ds.split == s).sum()) for s in ("train", "valid", "test")}
    if min(sizes.values()) == 0:
        raise SystemExit(f"--windows {len(ds)}: {sizes} windows per split; every split needs some, raise --windows")
    return ds


def _scores(ds, test: np.ndarray, probs: np.ndarray, pred_total: np.ndarray) -> dict:
    """auPRC (bin 1) per task and the all-track count Spearman on the test windows."""
    from bpnet.steps import metrics as M

    counts = ds.counts[test].astype(np.float64)
    out = {}
    for t, task in enumerate(ds.tasks):
        res = M.profile_auprc(counts[..., 2 * t:2 * t + 2], probs[..., 2 * t:2 * t + 2], binsize=1)
        out[f"auprc_{task}"] = res.auprc
    out["count_spearman"] = M.count_metrics(counts.sum(axis=(1, 2)), pred_total)["spearman"]
    return out


def ours(case):
    import torch

    from bpnet.model.network import BPNetConfig
    from bpnet.steps.predict import predict_outputs
    from bpnet.steps.training import TrainingConfig, train_model

    ds = _split_data(case)
    cfg = TrainingConfig(max_epochs=case["epochs"], patience=case["epochs"] + 1, threads=case["threads"],
                         bf16=case["precision"] == "bf16", device="cpu", reverse_complement=False)
    log = logging.getLogger("quiet")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model, history = train_model(ds, BPNetConfig(tasks=tuple(ds.tasks)), cfg, f"{tmp}/run", log)
    seconds = time.perf_counter() - t0
    test = np.flatnonzero(ds.split == "test")
    out = predict_outputs(model, ds.sequence[test], batch_size=BATCH, bf16=cfg.bf16)
    probs = torch.softmax(torch.from_numpy(out["profile_logits"]), dim=1).numpy()
    pred_total = np.expm1(out["count_logits"]).clip(min=0).sum(axis=1)
    best = int(history.loc[history["valid_loss"].idxmin(), "epoch"])
    return {**_scores(ds, test, probs, pred_total), "seconds": round(seconds, 1), "best_epoch": best,
            "epochs": len(history)}


def lite(case):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from bpnet.io.sequence import one_hot

    torch.set_num_threads(case["threads"])
    ds = _split_data(case)
    x = torch.from_numpy(one_hot(ds.sequence, dtype=np.int8)).transpose(1, 2).contiguous()
    y = torch.from_numpy(ds.counts.astype(np.float32)).transpose(1, 2).contiguous()
    train, valid, test = (np.flatnonzero(ds.split == s) for s in ("train", "valid", "test"))
    data = TensorDataset(x[train], y[train], torch.ones(len(train), dtype=torch.long))
    loader = DataLoader(data, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(1))
    dtype = "bfloat16" if case["precision"] == "bf16" else "float32"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model = _lite_model(f"{tmp}/bpnet")
        opt = torch.optim.Adam(model.parameters(), lr=0.004)
        model.fit(loader, opt, X_valid=x[valid].float(), y_valid=y[valid], max_epochs=case["epochs"],
                  batch_size=BATCH, dtype=dtype, device="cpu")
        seconds = time.perf_counter() - t0
        best_flags = list(model.logger.data["Saved?"])
        model = torch.load(f"{tmp}/bpnet.torch", weights_only=False)  # its best-on-valid model
    model.eval()
    logits, logcounts = [], []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
        for lo in range(0, len(test), BATCH):
            a, b = model(x[test[lo:lo + BATCH]].float())
            logits.append(a.float())
            logcounts.append(b.float())
    probs = torch.softmax(torch.cat(logits), dim=2).transpose(1, 2).numpy()  # (N, L, 8)
    pred_total = torch.cat(logcounts)[:, 0].numpy()  # log(1 + total); Spearman is rank-based
    best = max(i for i, saved in enumerate(best_flags) if saved) + 1 if any(best_flags) else None
    return {**_scores(ds, test, probs, pred_total), "seconds": round(seconds, 1), "best_epoch": best,
            "epochs": len(best_flags)}


KINDS = {"ours": ours, "bpnet-lite": lite}
LABELS = {"ours": "ours: train_model", "bpnet-lite": "bpnet-lite: BPNet.fit"}


def main() -> None:
    ap = common.base_parser(__doc__)
    ap.add_argument("--windows", type=int, default=6000, help="N windows of dataset.npz, a seeded random subset (0: all)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs each side trains")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    args = ap.parse_args()
    if args.worker:
        return common.worker_main(args.worker, KINDS)
    base = {"data": str(args.data), "windows": args.windows, "epochs": args.epochs, "threads": args.threads,
            "precision": args.precision}
    ds = _split_data(base)  # checks the splits before any case runs
    cases = [{**base, "name": kind, "kind": kind} for kind in KINDS]
    results = [common.run_case(__file__, c) for c in common.selected(cases, args.only)]
    rows = []
    for r in results:
        row = {"case": LABELS[r["name"]], "epochs": r["epochs"], "best": r["best_epoch"],
               "seconds": r["seconds"], "rss": r["peak_rss_mb"], "spearman": f"{r['count_spearman']:.3f}"}
        row.update({t: f"{r[f'auprc_{t}']:.3f}" for t in ds.tasks})
        rows.append(row)
    split = {s: int((ds.split == s).sum()) for s in ("train", "valid", "test")}
    notes = [
        f"{args.epochs} epochs each, {args.precision}, {args.threads} torch threads; windows: "
        f"{split['train']:,} train / {split['valid']:,} valid / {split['test']:,} test",
        "auPRC: profile, bin size 1, test split; count Spearman: log(1 + all 8 tracks' total) per test window",
        "seconds: the whole training call (both sides validate once per epoch)",
    ]
    columns = [("case", "case"), ("epochs", "epochs"), ("best", "best epoch")]
    columns += [(t, f"auPRC {t}") for t in ds.tasks]
    columns += [("spearman", "count Spearman"), ("seconds", "training s"), ("rss", "peak RSS MB")]
    common.print_report("Test metrics after the same number of epochs", common.command_line(), notes,
                        common.markdown_table(rows, columns), args.threads)


if __name__ == "__main__":
    main()
