"""Contribution scores (windows/s): DeepLIFT/DeepSHAP hypothetical contributions of BPNet-OSKN.

    python benchmarks/bench_contrib.py [--windows N] [--references K]

Work per window, the same on both sides: hypothetical contributions ``(1000, 4)`` of 8 targets
(4 tasks x the profile and counts heads; profile target = ``sum softmax(logits).detach() *
logits`` over the task's strands and positions, counts target = the sum of its two count logits)
against K dinucleotide-shuffled references each, fp32, the first N test windows of dataset.npz,
our ``BPNet`` with seeded weights on both sides.

- ours: ``bpnet.interpret.contributions.contribution_scores`` (batch 8 windows; one forward pass for all 8
  targets, one backward pass per target), its own dinucleotide shuffles included.
- tangermeme: ``tangermeme.deep_lift_shap.deep_lift_shap`` once per target (it explains one
  output index per call), ``hypothetical=True``, ``n_shuffles=K``, ``batch_size=8 K``
  (window-reference pairs, i.e. the same 8 windows per batch), its own dinucleotide shuffles,
  on the model behind a wrapper that returns the 8 targets ``(B, 8)``.

A check case runs both on 4 windows with the same references (ours, passed to tangermeme as a
tensor) and reports the largest difference of the hypothetical contributions.
"""

from __future__ import annotations

import time
import warnings

import common
import numpy as np
import torch

BATCH = 8


class Targets(torch.nn.Module):
    """One-hot ``(B, 4, L)`` -> the 8 explained scalars ``(B, 8)`` in (task, head) order."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        from bpnet.interpret.contributions import HEADS, target_value

        out = self.model(x.transpose(1, 2))
        return torch.stack([target_value(out, t, h) for t in range(self.model.config.num_tasks) for h in HEADS],
                           dim=1)


def _setup(case):
    from bpnet.hardware import choose_kernels, cpu_info
    from bpnet.io.npz import read_npz
    from bpnet.model.network import BPNet, BPNetConfig, init_weights

    torch.set_num_threads(case["threads"])
    # only the arrays needed: the counts (most of dataset.npz) would inflate both sides' peak RSS
    ds = read_npz(common.data_paths(case["data"])["dataset"], ["sequence", "split", "tasks", "width", "extra_context"])
    rows = np.flatnonzero(ds["split"] == "test")[: case["windows"]]
    c, w = int(ds["extra_context"]), int(ds["width"])
    model = BPNet(BPNetConfig(tasks=tuple(str(t) for t in ds["tasks"])))
    model.set_kernels(choose_kernels("auto", "cpu", cpu_info())[0])  # as the workflow
    init_weights(model, 1)
    return model.eval(), ds["sequence"][rows, c:c + w]


def ours(case):
    from bpnet.interpret.contributions import contribution_scores

    model, codes = _setup(case)
    contribution_scores(model, codes[:BATCH], case["references"], seed=1, batch_size=BATCH)  # warm-up
    t0 = time.perf_counter()
    contribution_scores(model, codes, case["references"], seed=1, batch_size=BATCH)
    seconds = time.perf_counter() - t0
    return {"windows": len(codes), "seconds": round(seconds, 2), "windows_per_s": len(codes) / seconds}


def _peer_all(targets, x, k, references=None):
    from tangermeme.deep_lift_shap import deep_lift_shap

    kwargs = {"references": references} if references is not None else {"n_shuffles": k, "random_state": 1}
    with warnings.catch_warnings():
        # its convergence-delta warnings (per batch) would flood the output; the check case
        # compares the results instead
        warnings.simplefilter("ignore", RuntimeWarning)
        return torch.stack([deep_lift_shap(targets, x, target=t, batch_size=BATCH * k, hypothetical=True,
                                           device="cpu", dtype=torch.float32, **kwargs)
                            for t in range(8)])


def peer(case):
    from bpnet.io.sequence import one_hot

    model, codes = _setup(case)
    targets = Targets(model)
    x = torch.from_numpy(one_hot(codes, dtype=np.int8)).transpose(1, 2).contiguous()
    _peer_all(targets, x[:BATCH], case["references"])  # warm-up
    t0 = time.perf_counter()
    _peer_all(targets, x, case["references"])
    seconds = time.perf_counter() - t0
    return {"windows": len(codes), "seconds": round(seconds, 2), "windows_per_s": len(codes) / seconds}


def check(case):
    from bpnet.interpret.contributions import contribution_scores, dinucleotide_shuffle
    from bpnet.io.sequence import one_hot

    model, codes = _setup(case)
    codes, k = codes[:4], 3
    ours_hyp = contribution_scores(model, codes, k, seed=1, batch_size=BATCH)  # (T, H, N, L, 4)
    refs = torch.from_numpy(one_hot(dinucleotide_shuffle(codes, k, 1))).transpose(2, 3)  # (N, k, 4, L)
    x = torch.from_numpy(one_hot(codes)).transpose(1, 2)
    peer_hyp = _peer_all(Targets(model), x, k, references=refs).numpy()  # (8, N, 4, L)
    ours_flat = ours_hyp.reshape(8, *ours_hyp.shape[2:]).transpose(0, 1, 3, 2)
    scale = float(np.abs(ours_flat).max())
    return {"windows": len(codes), "max_abs_diff": float(np.abs(ours_flat - peer_hyp).max()), "scale": scale}


def main() -> None:
    ap = common.base_parser(__doc__)
    ap.add_argument("--windows", type=int, default=64, help="first N test windows explained")
    ap.add_argument("--references", type=int, default=10, help="dinucleotide shuffles per window (the workflow's default)")
    args = ap.parse_args()
    if args.worker:
        return common.worker_main(args.worker, {"ours": ours, "tangermeme": peer, "check": check})
    base = {"data": str(args.data), "threads": args.threads, "windows": args.windows, "references": args.references}
    cases = [{**base, "name": n, "kind": n} for n in ("check", "ours", "tangermeme")]
    results = {c["name"]: common.run_case(__file__, c) for c in common.selected(cases, args.only)}
    labels = {"ours": "ours: bpnet.interpret.contributions.contribution_scores",
              "tangermeme": "tangermeme.deep_lift_shap.deep_lift_shap (x 8 targets)"}
    rows = []
    peer_rate = results.get("tangermeme", {}).get("windows_per_s")
    for name in ("ours", "tangermeme"):
        if name in results:
            r = results[name]
            rows.append({"case": labels[name], "windows": r["windows"], "seconds": r["seconds"],
                         "rate": r["windows_per_s"], "rss": r["peak_rss_mb"],
                         "ratio": f"{r['windows_per_s'] / peer_rate:.2f}x" if peer_rate else ""})
    notes = [f"{args.references} references per window, 8 targets (4 tasks x profile/counts), fp32, batch {BATCH} "
             f"windows, {args.threads} threads; one warm-up batch before the timed run; ratio = that row / tangermeme"]
    if "check" in results:
        c = results["check"]
        notes.append(f"check on {c['windows']} windows with the same references: largest |ours - tangermeme| "
                     f"= {c['max_abs_diff']:.1e} (largest |value| {c['scale']:.1e})")
    table = common.markdown_table(rows, [("case", "case"), ("windows", "windows"), ("seconds", "s"),
                                         ("rate", "windows/s"), ("rss", "peak RSS MB"), ("ratio", "vs tangermeme")])
    common.print_report("Contribution scores (DeepLIFT/DeepSHAP)", common.command_line(), notes, table, args.threads)


if __name__ == "__main__":
    main()
