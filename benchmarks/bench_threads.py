"""Threads under contention: training steps while another process keeps cores busy.

    python benchmarks/bench_threads.py [--steps 4] [--busy 1]

What `snakemake --cores N` with N above the machine's cores does to a training job: another job
takes a core. Each case runs in its own process (OpenMP reads its settings at start-up) beside
``--busy`` processes that spin on the CPU, and times ``--steps`` training steps of BPNet-OSKN
(batch 128 in passes of 64, float32, channels-last, 1000 bp) after a warm-up step:

- ``2 threads``: torch's default OpenMP wait policy (libgomp spins a while before sleeping);
- ``2 threads, OMP_WAIT_POLICY=PASSIVE``: waiting threads sleep at once;
- ``2 threads, GOMP_SPINCOUNT=10000``: libgomp (the OpenMP of torch's Linux wheels) spins ~10k
  iterations instead of its default 300k before sleeping;
- ``1 thread``;

and the same three on an idle machine. Wall seconds per step and CPU seconds per step (user +
system of the process): spinning shows as CPU time that does no work.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

CASE = r"""
import json, resource, sys, time, torch
from bpnet.hardware import cpu_info
from bpnet.model.network import BPNet, init_weights
from bpnet.steps.training import batch_gradients
threads, steps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
model = BPNet().set_kernels("channels_last"); init_weights(model, 1)
opt = torch.optim.Adam(model.parameters(), lr=0.004)
g = torch.Generator().manual_seed(0)
x = torch.nn.functional.one_hot(torch.randint(0, 4, (128, 1000), generator=g), 4).float()
y = torch.poisson(torch.full((128, 1000, 8), 0.3), generator=g)
def step():
    opt.zero_grad(); batch_gradients(model, x, y, None, 10.0, 64, False); opt.step()
step()
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(steps):
    step()
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"wall": (t1 - t0) / steps, "cpu": cpu / steps, "cpu_info": cpu_info().describe()}))
"""


def spin(stop):
    while not stop.is_set():
        pass


def run_case(threads: int, steps: int, policy: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(policy)
    out = subprocess.run([sys.executable, "-c", CASE, str(threads), str(steps)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--busy", type=int, default=1, help="spinning processes beside the job")
    args = ap.parse_args()
    cases = [(2, {}), (2, {"OMP_WAIT_POLICY": "PASSIVE"}), (2, {"GOMP_SPINCOUNT": "10000"}), (1, {})]
    rows = []
    for busy in (0, args.busy):
        stop = mp.Event()
        spinners = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        time.sleep(0.5)
        try:
            for threads, policy in cases:
                r = run_case(threads, args.steps, policy)
                rows.append((busy, threads, policy, r))
        finally:
            stop.set()
            for p in spinners:
                p.join()
    print(f"### Threads under contention ({os.cpu_count()} cores, CPU {rows[0][3]['cpu_info']})")
    print(f"`python benchmarks/bench_threads.py {' '.join(sys.argv[1:])}`")
    print()
    print("| busy processes | torch threads | OpenMP waiting | wall s / step | CPU s / step |")
    print("| --- | --- | --- | --- | --- |")
    for busy, threads, policy, r in rows:
        waiting = " ".join(f"{k}={v}" for k, v in policy.items()) or "default"
        print(f"| {busy} | {threads} | {waiting} | {r['wall']:.2f} | {r['cpu']:.2f} |")


if __name__ == "__main__":
    main()
