"""Variant scoring speed (issue #20): variants/s of rule score_variants' scoring on this machine.

Scores --variants random SNVs (ref and alt windows of --width bp, the paper's model shape, 4 tasks)
through bpnet.steps.variants.score_alleles, with and without reverse-complement averaging, and
prints variants/s beside the CPU capability (or the GPU) and the thread count.

    .venv/bin/python benchmarks/bench_variants.py --variants 2000
"""

import argparse
import time

import numpy as np
import torch

from bpnet.hardware import setup_inference
from bpnet.model.network import BPNet, BPNetConfig, init_weights
from bpnet.steps.variants import score_alleles


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", type=int, default=1000)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    model = BPNet(BPNetConfig(tasks=("Oct4", "Sox2", "Nanog", "Klf4")))
    init_weights(model, 0)
    device = setup_inference(model.eval(), args.device, "auto", args.threads)
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 4, (args.variants, args.width)).astype(np.uint8)
    alt = ref.copy()
    alt[:, args.width // 2] = (alt[:, args.width // 2] + 1) % 4
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"
    print(f"{args.variants} SNVs, {args.width} bp windows, {where}")
    score_alleles([model], ref[:64], alt[:64], 4, device)  # warm-up
    for rc in (False, True):
        t0 = time.perf_counter()
        score_alleles([model], ref, alt, 4, device, rc_average=rc)
        dt = time.perf_counter() - t0
        print(f"reverse_complement_average {rc}: {args.variants / dt:.0f} variants/s ({dt:.1f} s)")


if __name__ == "__main__":
    main()
