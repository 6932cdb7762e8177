"""Generate the benchmark dataset once: the simulated OSKN data at a larger scale, its peak
windows and dataset.npz, with the project's own functions (the workflow's rules call the same).

    benchmarks/.venv/bin/python benchmarks/make_data.py                 # scale 13.5: ~50k windows
    benchmarks/.venv/bin/python benchmarks/make_data.py --scale 1 --out benchmarks/data-small

Layout of ``--out`` (default ``benchmarks/data``): ``sim/`` (genome.fa, chrom sizes, bigWigs,
peaks), ``windows.tsv``, ``dataset.npz`` and ``make_data.json`` (scale, windows, seconds). A step
whose output exists is skipped, so a rerun costs nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from bpnet.data.dataset import build_dataset, write_dataset
from bpnet.data.windows import load_windows, make_windows, read_peaks, write_windows
from bpnet.io.tracks import read_chrom_sizes
from bpnet.simulate.binding import TFS
from bpnet.simulate.files import output_paths
from bpnet.simulate.generate import simulate_dataset

HERE = Path(__file__).resolve().parent


def count_bigwigs(paths: dict) -> list[Path]:
    """The 8 count bigWigs in channel order: Oct4 +, Oct4 -, Sox2 +, ..."""
    return [paths[f"{tf}.counts.{s}"] for tf in TFS for s in ("pos", "neg")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=13.5, help="simulation.scale (13.5 gives about 50k windows)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "data")
    ap.add_argument("--threads", type=int, default=2, help="processes writing the simulated bigWigs")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger("make_data")
    out = args.out
    sim = out / "sim"
    paths = output_paths(sim)
    info_path = out / "make_data.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if info and (info.get("scale"), info.get("seed")) != (args.scale, args.seed):
        raise SystemExit(f"{out} holds data of scale {info.get('scale')}, seed {info.get('seed')}; "
                         f"delete it or pass another --out")
    info.update(scale=args.scale, seed=args.seed)

    if not paths["instances"].exists():  # written last by simulate_dataset
        t0 = time.perf_counter()
        simulate_dataset(sim, {"seed": args.seed, "scale": args.scale}, log, threads=args.threads)
        info["simulate_s"] = round(time.perf_counter() - t0, 1)

    windows_path = out / "windows.tsv"
    if not windows_path.exists():
        # The default config's windows section (the paper's split).
        peaks = {tf: read_peaks(paths[f"{tf}.peaks"]) for tf in TFS}
        windows, _ = make_windows(peaks, read_chrom_sizes(paths["chrom_sizes"]), width=1000)
        write_windows(windows_path, windows)
    windows = load_windows(windows_path)
    info["windows"] = len(windows)
    info["windows_per_split"] = windows["split"].value_counts().to_dict()

    dataset_path = out / "dataset.npz"
    if not dataset_path.exists():
        t0 = time.perf_counter()
        arrays = build_dataset(windows, paths["fasta"], count_bigwigs(paths), TFS, log=log)
        write_dataset(dataset_path, arrays)
        info["build_dataset_s"] = round(time.perf_counter() - t0, 1)
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    log.info("benchmark data in %s: %s", out, json.dumps(info))


if __name__ == "__main__":
    main()
