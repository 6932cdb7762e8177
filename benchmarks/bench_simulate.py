"""Time and peak memory of the simulation step (rule ``simulate_dataset``), and the sha256 of
every file it writes (issue #17: the paper-scale rehearsal).

    .venv/bin/python benchmarks/bench_simulate.py --out /tmp/sim4 --scale 4 --genome-length 67500000

Runs :func:`bpnet.simulate.generate.simulate_dataset` in this process and prints one
``BENCH-RESULT {json}`` line: wall seconds, peak RSS (``ru_maxrss``, the kernel's high-water mark),
the CPU capability, the summary figures (peaks, oracle) and ``--hashes`` (a JSON file written
with the sha256 of every output file, to compare two versions of the code byte for byte).
``--trace`` samples the resident memory every 0.1 s and prints, per logged stage, the highest
value seen while it ran (where the memory goes). ``--keep`` keeps the outputs (else deleted).
``children_peak_rss_mb`` is the largest bigWig-writing process (``--threads`` > 1), whose pages
are mostly shared with this one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch  # imported by bpnet.simulate anyway (bpnet.model.network): the CPU capability

import bpnet.simulate.generate as generate
from bpnet.simulate.generate import simulate_dataset

RESULT_MARK = "BENCH-RESULT "


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Stages(logging.Handler):
    """Remembers, per log line's stage (the text before the first ':'), the highest RSS sampled."""

    def __init__(self):
        super().__init__()
        self.stage = "start"
        self.peak: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.stage = record.getMessage().split(":")[0][:40]

    def sample(self, stop: threading.Event) -> None:
        while not stop.wait(0.1):
            self.peak[self.stage] = max(self.peak.get(self.stage, 0.0), _rss_mb())


def sha256_tree(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=3)
    ap.add_argument("--genome-length", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hashes", type=Path, default=None)
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--oracle-max-windows", default=None,
                    help="windows the oracle check scores at most ('all': every one; default: the library's)")
    args = ap.parse_args()

    cfg = {"seed": args.seed, "scale": int(args.scale) if args.scale == int(args.scale) else args.scale}
    if args.genome_length:
        cfg["genome_length"] = args.genome_length
    log = logging.getLogger("bench_simulate")
    log.setLevel(logging.INFO)
    log.addHandler(logging.StreamHandler(sys.stderr))
    stages, stop = _Stages(), threading.Event()
    if args.trace:
        log.addHandler(stages)
        threading.Thread(target=stages.sample, args=(stop,), daemon=True).start()
    if args.oracle_max_windows is not None:
        generate.ORACLE_MAX_WINDOWS = None if args.oracle_max_windows == "all" else int(args.oracle_max_windows)
    if args.out.exists():
        shutil.rmtree(args.out)
    t0 = time.perf_counter()
    summary = simulate_dataset(args.out, cfg, log, threads=args.threads)
    wall = time.perf_counter() - t0
    stop.set()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # bigWig writers
    result = {
        "config": cfg, "threads": args.threads, "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb),
        "children_peak_rss_mb": round(children_mb), "oracle_max_windows": generate.ORACLE_MAX_WINDOWS,
        "cpu": torch.backends.cpu.get_cpu_capability(), "numpy": np.__version__,
        "genome_mb": round(summary["config"]["genome_length"] * summary["config"]["scale"] / 1e6, 1),
        "peaks": summary["peaks"],
        "oracle_pearson": {r.task: round(float(r.count_pearson), 6) for r in summary["oracle"].itertuples()},
        "oracle_auprc": {r.task: round(float(r.auprc), 6) for r in summary["oracle"].itertuples()},
    }
    if args.trace:
        result["stage_peak_rss_mb"] = {k: round(v) for k, v in stages.peak.items()}
    if args.hashes:
        hashes = sha256_tree(args.out)
        figures = {k: summary[k] for k in ("peaks", "reads_per_peak", "false_peak_share", "missed_share")}
        figures["oracle"] = summary["oracle"].to_dict(orient="list")
        args.hashes.write_text(json.dumps({"files": hashes, "summary": figures}, indent=1, sort_keys=True))
    if not args.keep:
        shutil.rmtree(args.out)
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
