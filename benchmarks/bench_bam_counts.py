"""Rule bam_counts' cost (issue #19): reads/s and peak memory of counting 5' ends from a BAM.

Writes a coordinate-sorted BAM of --reads single-end 36 bp reads on a --mb megabase genome (5'
ends drawn from a mixture of peaks and a uniform background, as ChIP data are), then runs rule
bam_counts' code (bpnet.data.reads.write_read_bigwigs) on it and prints reads/s, the BAM's size,
the peak RSS of the counting (the kernel's high-water mark, measured in a child process) and the
bigWigs' size.

    .venv/bin/python benchmarks/bench_bam_counts.py --reads 5000000 --mb 100
"""

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pysam
import torch

from bpnet.data.reads import write_read_bigwigs


def make_bam(path: Path, n_reads: int, chrom_mb: int, seed: int = 0) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    sizes = {f"chr{i + 1}": chrom_mb * 1_000_000 // 4 for i in range(4)}
    names = list(sizes)
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": c, "LN": n} for c, n in sizes.items()]}
    chrom = np.sort(rng.integers(0, len(names), n_reads))
    centres = rng.integers(1000, min(sizes.values()) - 1000, 20_000)
    in_peak = rng.random(n_reads) < 0.5
    start = np.where(in_peak, centres[rng.integers(0, len(centres), n_reads)] + rng.normal(0, 60, n_reads).astype(int),
                     rng.integers(0, min(sizes.values()) - 40, n_reads))
    order = np.lexsort((start, chrom))
    reverse = rng.random(n_reads) < 0.5
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for i in order:
            a = pysam.AlignedSegment(out.header)
            a.query_name = f"r{i}"
            a.flag = 16 if reverse[i] else 0
            a.reference_id, a.reference_start, a.mapping_quality = int(chrom[i]), int(start[i]), 40
            a.cigarstring = "36M"
            a.query_sequence = "A" * 36
            out.write(a)
    return sizes


def count(bam, sizes_path, out, result):
    t0 = time.perf_counter()
    write_read_bigwigs([str(bam)], str(sizes_path), str(out / "p.bw"), str(out / "n.bw"), str(out / "s.tsv"),
                       threads=2)
    result.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reads", type=int, default=2_000_000)
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        sizes = make_bam(tmp / "r.bam", args.reads, args.mb)
        print(f"wrote {args.reads:,} reads ({(tmp / 'r.bam').stat().st_size / 1e6:.0f} MB BAM) in "
              f"{time.perf_counter() - t0:.0f} s")
        (tmp / "g.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))
        result = mp.get_context("spawn").Queue()
        p = mp.get_context("spawn").Process(target=count, args=(tmp / "r.bam", tmp / "g.sizes", tmp, result))
        p.start()
        seconds, peak_gb = result.get()
        p.join()
        bw_mb = sum((tmp / f).stat().st_size for f in ("p.bw", "n.bw")) / 1e6
        print(f"bam_counts: {seconds:.1f} s, {args.reads / seconds:,.0f} reads/s, peak RSS {peak_gb:.2f} GB, "
              f"bigWigs {bw_mb:.0f} MB")


if __name__ == "__main__":
    main()
