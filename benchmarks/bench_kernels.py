"""Which kernels, precision and micro-batch suit this machine: one training step of BPNet-OSKN.

    python benchmarks/bench_kernels.py [--threads 2] [--rounds 4] [--emulate avx2]

Times, on random one-hot windows of 1000 bp and Poisson counts (no data needed), one training
step (forward, the paper's loss, backward, Adam) of a batch of 128 windows, for each combination
of

- kernels: ``plain`` (torch's ``nn.Conv1d`` / ``nn.ConvTranspose1d`` on ``(B, C, L)``) and
  ``channels_last`` (``bpnet.model.channels_last``: the same parameters, ``(B, L, C)`` conv2d kernels);
- precision: float32 and bf16 autocast (bf16 only where oneDNN runs it, or with ``--all``:
  emulated bf16 on an AVX2 CPU takes ~10 s a step);
- micro-batch: the 128 windows in one pass, or in passes of 64 whose gradients add up to the
  same step (``bpnet.steps.training`` accumulates them: smaller activations stay in cache);

and one forward pass of 64 windows without gradients (prediction). Cases run interleaved in
``--rounds`` rounds in one process after a warm-up; the table gives the fastest round of each.
It names the CPU capability, because the answer depends on it.

``--emulate avx2`` re-runs itself with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
MKL_ENABLE_INSTRUCTIONS=AVX2``: torch, oneDNN and MKL then use AVX2 kernels only, which is how an
AVX2 CPU (most laptops, many cluster nodes) was measured on an AVX-512 machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

EMULATE = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--all", action="store_true", help="also time bf16 where it is emulated")
    ap.add_argument("--emulate", choices=sorted(EMULATE), help="re-run restricted to this instruction set")
    args = ap.parse_args()
    if args.emulate:
        argv = [a for a in sys.argv[1:] if a not in ("--emulate", args.emulate)]
        env = {**os.environ, **EMULATE[args.emulate]}
        sys.exit(subprocess.call([sys.executable, __file__, *argv], env=env))

    import torch

    from bpnet.hardware import bf16_capability, cpu_info, micro_batch_size
    from bpnet.model.network import KERNELS, BPNet, bpnet_loss, init_weights

    torch.set_num_threads(args.threads)
    cpu = cpu_info()
    bf16_ok = bf16_capability("cpu", cpu)[0] is not False
    g = torch.Generator().manual_seed(0)
    n = args.batch
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (n, 1000), generator=g), 4).float()
    y = torch.poisson(torch.full((n, 1000, 8), 0.3), generator=g)
    models = {}
    for kernels in KERNELS:
        model = BPNet().set_kernels(kernels)
        init_weights(model, 1)
        models[kernels] = (model, torch.optim.Adam(model.parameters(), lr=0.004))

    def train_step(kernels, bf16, micro):
        model, opt = models[kernels]
        model.train()
        opt.zero_grad(set_to_none=True)
        for lo in range(0, n, micro):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x[lo:lo + micro])
            (bpnet_loss(out, y[lo:lo + micro], 10.0)["loss"] * (min(micro, n - lo) / n)).backward()
        opt.step()

    @torch.no_grad()
    def predict(kernels, bf16, micro):
        model = models[kernels][0].eval()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x[:micro])

    cases = []
    for bf16 in ([False, True] if (bf16_ok or args.all) else [False]):
        for kernels in KERNELS:
            for micro in sorted({n, 64}, reverse=True):
                cases.append(("train", kernels, bf16, micro))
            cases.append(("predict", kernels, bf16, 64))
    best = {c: float("inf") for c in cases}
    for r in range(args.rounds + 1):
        for c in cases:
            t = time.perf_counter()
            (train_step if c[0] == "train" else predict)(*c[1:])
            if r:  # round 0 warms up
                best[c] = min(best[c], time.perf_counter() - t)

    print(f"### Kernels on this CPU: {cpu.describe()}, {args.threads} threads, torch {torch.__version__}")
    print(f"`python benchmarks/bench_kernels.py {' '.join(sys.argv[1:])}`"
          + (f" (emulated: {os.environ.get('ONEDNN_MAX_CPU_ISA')})" if os.environ.get("ONEDNN_MAX_CPU_ISA") else ""))
    print()
    print("| step | kernels | precision | micro-batch | s | windows/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for c, s in best.items():
        what, kernels, bf16, micro = c
        windows = n if what == "train" else micro
        print(f"| {what} {windows} | {kernels} | {'bf16' if bf16 else 'fp32'} | {micro} | {s:.3f} | {windows / s:.1f} |")
    print()
    print(f"bpnet.hardware picks: micro-batch {micro_batch_size(torch.device('cpu'))} on CPU; "
          f"bf16 {bf16_capability('cpu', cpu)}")


if __name__ == "__main__":
    main()
