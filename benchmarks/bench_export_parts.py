"""Genome-wide export in parts (issue #17): what one part costs, what is the forward pass, what the merge costs.

Runs rule export_part's code on the first --mb megabases of a chromosome of a finished experiment
(its model, genome and dataset width), with the compact settings given, timing the forward pass
apart from reading the genome, stitching and writing; then merges that part into genome-wide
files (rule export_tracks' merge) and times it. Prints tiles/s, bp/s, the forward share, bytes
per bp, and the projection to --genome-bp: CPU hours of the parts, GB of tracks, merge minutes,
and the non-forward time, which is what remains when a GPU makes the forward pass cheap.

    .venv/bin/python benchmarks/bench_export_parts.py --results results/rehearsal \
        --genome results/simulated --chrom chr1 --mb 20 --decimals 2 --floor 0.05
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from bpnet.hardware import setup_inference
from bpnet.io.npz import read_npz
from bpnet.io.tracks import TrackWriter, read_chrom_sizes, track_paths
from bpnet.model.weights import load_checkpoint
from bpnet.steps.export import SEGMENTS_FILE, export_part_tiles, merge_parts, part_tile_ranges
from bpnet.steps.predict import predict_profile


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/rehearsal", help="a finished experiment's results folder")
    ap.add_argument("--genome", default="results/simulated", help="folder of genome.fa and genome.chrom.sizes")
    ap.add_argument("--chrom", default="chr1")
    ap.add_argument("--mb", type=float, default=20, help="megabases of the chromosome exported")
    ap.add_argument("--decimals", type=int, default=2)
    ap.add_argument("--floor", type=float, default=0.05)
    ap.add_argument("--overlap", type=int, default=200)
    ap.add_argument("--genome-bp", type=float, default=2.7e9, help="projection target (mm10: 2.7e9)")
    args = ap.parse_args()
    res, genome = Path(args.results), Path(args.genome)
    sizes = read_chrom_sizes(genome / "genome.chrom.sizes")
    span = {args.chrom: min(sizes[args.chrom], int(args.mb * 1e6))}  # the part: the chromosome's start
    width = int(read_npz(res / "dataset.npz", ["width"])["width"])
    net = load_checkpoint(res / "model" / "model.safetensors")
    tasks = list(net.config.tasks)
    log = logging.getLogger("bench")
    device = setup_inference(net, "auto", "auto", os.cpu_count() or 1, log)
    forward = [0.0]

    def predict(codes, control):
        t = time.perf_counter()
        out = predict_profile(net, codes, control, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        forward[0] += time.perf_counter() - t
        return out

    ranges = part_tile_ranges(span, list(span), width, args.overlap, 0, 1)
    n_tiles = sum(stop - first for _, first, stop, _, _ in ranges)
    bp = span[args.chrom]
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "part"
        part.mkdir()
        t0 = time.perf_counter()
        with TrackWriter(track_paths(part, tasks), sizes, args.decimals, args.floor, zooms=0) as writer:
            export_part_tiles(writer, genome / "genome.fa", ranges, width, args.overlap, predict)
        seconds = time.perf_counter() - t0
        (part / SEGMENTS_FILE).write_text("chrom\tstart\tend\n" + "".join(f"{c}\t{lo}\t{hi}\n" for c, _, _, lo, hi in ranges))
        part_bytes = sum(p.stat().st_size for p in track_paths(part, tasks))
        final = Path(tmp) / "final"
        final.mkdir()
        t0 = time.perf_counter()
        with TrackWriter(track_paths(final, tasks), sizes, args.decimals, args.floor) as writer:
            merge_parts(writer, [part])
        merge_s = time.perf_counter() - t0
        final_bytes = sum(p.stat().st_size for p in track_paths(final, tasks))
    scale = args.genome_bp / bp
    print(f"device {device}, CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads")
    print(f"part: {args.chrom}:0-{bp} ({bp / 1e6:.1f} Mb, {n_tiles} tiles of {width} bp, overlap {args.overlap}), "
          f"decimals {args.decimals}, floor {args.floor}")
    print(f"export_part: {seconds:.1f} s, {n_tiles / seconds:.0f} tiles/s, {bp / seconds / 1e3:.0f} kbp/s; "
          f"forward pass {forward[0]:.1f} s ({forward[0] / seconds:.0%}), the rest {seconds - forward[0]:.1f} s")
    print(f"tracks: part {part_bytes / bp:.3f} bytes/bp, merged (with zoom levels) {final_bytes / bp:.3f} bytes/bp")
    print(f"merge: {merge_s:.1f} s, {bp / merge_s / 1e6:.1f} Mbp/s")
    print(f"projected to {args.genome_bp / 1e9:.2f} Gb: parts {seconds * scale / 3600:.1f} h on this device "
          f"(forward {forward[0] * scale / 3600:.1f} h, the rest {(seconds - forward[0]) * scale / 3600:.1f} h), "
          f"merge {merge_s * scale / 60:.0f} min, tracks {final_bytes * scale / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
