"""Sizes of exported bigWigs under export.decimals / export.floor (issue #17).

Predicts one chromosome with a trained model (rule export_part's own path, per-base float32),
then writes the same values again with each compact setting and prints bytes per bp (for the
2T tracks together), the projection to a genome of --genome-bp, the share of bases kept and the
write time. Example, after the main job:

    .venv/bin/python benchmarks/bench_export_size.py --results results/simulated --chrom chr19
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyBigWig

from bpnet.io.tracks import TrackWriter, read_chrom_sizes, track_paths
from bpnet.model.weights import load_checkpoint
from bpnet.steps.export import export_part

SETTINGS = [(None, None), (3, None), (2, None), (2, 0.02), (2, 0.05), (2, 0.1), (1, None), (1, 0.1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/simulated", help="a finished experiment's results folder")
    ap.add_argument("--chrom", default="chr19")
    ap.add_argument("--genome-bp", type=float, default=2.7e9, help="projection target (mm10: 2.7e9)")
    args = ap.parse_args()
    res = Path(args.results)
    sizes = read_chrom_sizes(res / "genome.chrom.sizes")
    tasks = list(load_checkpoint(res / "model" / "model.safetensors").config.tasks)
    with tempfile.TemporaryDirectory() as tmp:
        dense = Path(tmp) / "dense"
        dense.mkdir()
        t0 = time.perf_counter()
        export_part(str(dense), tasks, {"regions": [args.chrom], "tile_overlap": 200},
                    str(res / "genome.chrom.sizes"), str(res / "dataset.npz"), str(res / "model" / "model.safetensors"),
                    str(res / "genome.fa"), 0, 1, device="cpu", threads=os.cpu_count() or 1,
                    log=logging.getLogger("bench"))
        print(f"predicted {args.chrom} ({sizes[args.chrom] / 1e6:.2f} Mb) in {time.perf_counter() - t0:.0f} s")
        values = np.stack([np.nan_to_num(np.asarray(pyBigWig.open(str(p)).values(args.chrom, 0, sizes[args.chrom], numpy=True)))
                           for p in track_paths(dense, tasks)], axis=1).astype(np.float32)
        print("predicted values, quantiles 50/90/99/99.9%:", np.quantile(values, [0.5, 0.9, 0.99, 0.999]).round(4).tolist())
        print("| decimals, floor | bytes/bp | projected | bases kept | write s |")
        for decimals, floor in SETTINGS:
            out = Path(tmp) / f"{decimals}_{floor}"
            out.mkdir()
            t0 = time.perf_counter()
            with TrackWriter(track_paths(out, tasks), sizes, decimals, floor) as writer:
                for lo in range(0, len(values), 1 << 20):
                    writer.add(args.chrom, lo, values[lo:lo + (1 << 20)])
            seconds = time.perf_counter() - t0
            per_bp = sum(p.stat().st_size for p in track_paths(out, tasks)) / len(values)
            kept = 1.0 if floor is None else float(np.mean(np.round(values, decimals) >= floor))
            print(f"| {decimals}, {floor} | {per_bp:.2f} | {per_bp * args.genome_bp / 1e9:.1f} GB | {kept:.3f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
