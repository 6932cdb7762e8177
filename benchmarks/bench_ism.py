"""ISM speed: windows per second of rule ism on this machine (no data needed).

    python benchmarks/bench_ism.py [--threads 2] [--windows 2] [--width 1000] [--batch 64 128 256]

Runs :func:`bpnet.interpret.ism.bpnet_ism` (3 x width mutants per window) with the default BPNet
(64 channels, 9 dilated layers, 4 stranded tasks, random weights: the speed does not depend on
them) on random windows, with the kernels and threads rule ism would choose, for each batch size,
with and without the profile JSD and reverse-complement averaging. Prints windows/s and mutants/s
beside ``torch.backends.cpu.get_cpu_capability()`` (or the GPU's name).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bpnet.hardware import setup_inference
from bpnet.interpret.ism import bpnet_ism
from bpnet.model.network import BPNet, BPNetConfig, init_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    model = BPNet(BPNetConfig(tasks=("Oct4", "Sox2", "Nanog", "Klf4")))
    init_weights(model, 1)
    device = setup_inference(model, args.device, "auto", args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"cpu {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"
    codes = np.random.default_rng(0).integers(0, 4, (args.windows, args.width)).astype(np.uint8)
    bpnet_ism(model, codes[:1, :200], batch_size=64, device=device)  # warm-up
    print(f"ISM of {args.windows} windows of {args.width} bp ({3 * args.width} mutants each) on {where}, "
          f"kernels {model.kernels}")
    print("batch\tprofile\trc_average\twindows/s\tmutants/s")
    for batch in args.batch:
        for profile, rc in ((False, False), (True, False), (True, True)):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            bpnet_ism(model, codes, rc_average=rc, profile=profile, batch_size=batch, device=device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            s = time.perf_counter() - t0
            print(f"{batch}\t{profile}\t{rc}\t{args.windows / s:.3f}\t{3 * args.width * args.windows / s:.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
