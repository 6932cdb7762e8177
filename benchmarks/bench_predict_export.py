"""Prediction + bigWig export (bp/s): tile chromosomes with a BPNet-OSKN model and write 8 tracks.

    python benchmarks/bench_predict_export.py [--chroms chr19] [--precisions fp32,bf16]

Both sides run the same network (our ``BPNet``, seeded weights; tangermeme gets it behind a
channels-first wrapper) over the same tiles: 1000 bp tiles stepping 600 bp (``tile_overlap``
200, the workflow's default), the last tile aligned to the chromosome end, each base taken from
the tile whose centre is nearest; the postprocessed track ``softmax(profile) * expm1(count)`` is
written per base (fixed step 1) to one bigWig per task and strand, header = every chromosome.

- ours: ``bpnet.steps.export.export_part_tiles`` with ``bpnet.steps.predict.predict_profile`` (batch 128)
  writing through ``bpnet.io.tracks.TrackWriter`` (rule ``export_part``'s code path, one part).
- tangermeme: per chunk of 4096 tiles, ``tangermeme.io.extract_loci`` (one-hot int8) ->
  ``tangermeme.predict.predict`` (batch 128, dtype = the precision) -> postprocess -> stitch ->
  ``pyBigWig`` ``addEntries`` (tangermeme has no bigWig writer; this is the plain way to write one).

bp/s = bases of the exported chromosomes / wall time of the whole export (reading, predicting,
writing, closing the files). A check compares the two sides' fp32 bigWigs on the first 200 kb of
the first chromosome (same model, so they agree up to float rounding).
"""

from __future__ import annotations

import time
from pathlib import Path

import common
import numpy as np

WIDTH = 1000
OVERLAP = 200
BATCH = 128
PEER_CHUNK = 4096


def _model():
    from bpnet.hardware import choose_kernels, cpu_info
    from bpnet.model.network import BPNet, BPNetConfig, init_weights

    model = BPNet(BPNetConfig()).set_kernels(choose_kernels("auto", "cpu", cpu_info())[0])  # as the workflow
    init_weights(model, 1)
    return model.eval()


def _setup(case):
    import torch

    from bpnet.io.tracks import read_chrom_sizes

    torch.set_num_threads(case["threads"])
    paths = common.data_paths(case["data"])
    sizes = read_chrom_sizes(paths["chrom_sizes"])
    chroms = case["chroms"]
    unknown = [c for c in chroms if c not in sizes]
    if unknown:
        raise SystemExit(f"--chroms: {unknown} not in {paths['chrom_sizes']} (it has {list(sizes)})")
    if case["max_bp"]:
        # quick runs: each chromosome cut to its first max_bp bases (tiles and bigWig headers alike)
        sizes = {c: min(n, case["max_bp"]) for c, n in sizes.items()}
    out = Path(case["out"])
    out.mkdir(parents=True, exist_ok=True)
    return paths, sizes, chroms, out


def ours(case):
    from bpnet.io.tracks import TrackWriter, track_paths
    from bpnet.simulate.binding import TFS
    from bpnet.steps.export import export_part_tiles, part_tile_ranges
    from bpnet.steps.predict import predict_profile

    paths, sizes, chroms, out = _setup(case)
    model = _model()
    bf16 = case["precision"] == "bf16"
    predict_s = [0.0]

    def predict(codes, control):
        t = time.perf_counter()
        values = predict_profile(model, codes, control, batch_size=BATCH, device="cpu", bf16=bf16)
        predict_s[0] += time.perf_counter() - t
        return values

    t0 = time.perf_counter()
    with TrackWriter(track_paths(out, TFS), sizes) as writer:
        export_part_tiles(writer, paths["fasta"], part_tile_ranges(sizes, chroms, WIDTH, OVERLAP, 0, 1), WIDTH, OVERLAP,
                          predict)
    seconds = time.perf_counter() - t0
    bp = sum(sizes[c] for c in chroms)
    return {"bp": bp, "seconds": round(seconds, 2), "bp_per_s": bp / seconds, "predict_share": predict_s[0] / seconds}


def peer(case):
    import pandas as pd
    import pyBigWig
    import torch
    from tangermeme.io import extract_loci
    from tangermeme.predict import predict

    from bpnet.simulate.binding import TFS

    paths, sizes, chroms, out = _setup(case)
    wrapped = common.ChannelsFirst(_model())
    dtype = torch.bfloat16 if case["precision"] == "bf16" else torch.float32
    predict_s = 0.0
    t0 = time.perf_counter()
    files = []
    for tf in TFS:
        for strand in ("pos", "neg"):
            bw = pyBigWig.open(str(out / f"{tf}.{strand}.bw"), "w")
            bw.addHeader(list(sizes.items()), maxZooms=10)
            files.append(bw)
    for chrom in chroms:
        length = sizes[chrom]
        step = WIDTH - 2 * OVERLAP
        starts = np.append(np.arange(0, length - WIDTH, step), length - WIDTH)
        # each base goes to the tile with the nearest centre: boundaries halfway between centres
        bounds = np.concatenate([[0], (starts[:-1] + starts[1:] + WIDTH) // 2, [length]])
        for lo in range(0, len(starts), PEER_CHUNK):
            s = starts[lo:lo + PEER_CHUNK]
            loci = pd.DataFrame({"chrom": chrom, "start": s, "end": s + WIDTH})
            x = extract_loci(loci, str(paths["fasta"]), in_window=WIDTH, n_jobs=case["threads"])
            t = time.perf_counter()
            profile, counts = predict(wrapped, x, batch_size=BATCH, dtype=dtype, device="cpu")
            predict_s += time.perf_counter() - t
            track = torch.softmax(profile.float(), dim=-1) * torch.expm1(counts.float()).clamp_min(0)[..., None]
            track = track.numpy()  # (n, 8, W)
            keep = [track[i, :, bounds[lo + i] - s[i]:bounds[lo + i + 1] - s[i]] for i in range(len(s))]
            values = np.concatenate(keep, axis=1)  # (8, bases of this chunk)
            for k, bw in enumerate(files):
                bw.addEntries(chrom, int(bounds[lo]), values=values[k].astype(np.float32), span=1, step=1)
    for bw in files:
        bw.close()
    seconds = time.perf_counter() - t0
    bp = sum(sizes[c] for c in chroms)
    return {"bp": bp, "seconds": round(seconds, 2), "bp_per_s": bp / seconds, "predict_share": predict_s / seconds}


def compare(ours_dir: Path, peer_dir: Path, chrom: str, n_bp: int) -> float:
    """Largest |ours - peer| / (1 + |ours|) over the first ``n_bp`` of ``chrom``, all tracks."""
    import pyBigWig

    worst = 0.0
    for path in sorted(Path(ours_dir).glob("*.bw")):
        a, b = pyBigWig.open(str(path)), pyBigWig.open(str(Path(peer_dir) / path.name))
        n = min(n_bp, a.chroms(chrom))
        va, vb = np.array(a.values(chrom, 0, n)), np.array(b.values(chrom, 0, n))
        a.close(), b.close()
        if np.isnan(va).any() or np.isnan(vb).any():
            raise SystemExit(f"{path.name}: positions without data on {chrom}")
        worst = max(worst, float(np.max(np.abs(va - vb) / (1 + np.abs(va)))))
    return worst


def main() -> None:
    ap = common.base_parser(__doc__)
    ap.add_argument("--chroms", default="chr19", help="comma-separated chromosomes to tile and export")
    ap.add_argument("--max-bp", type=int, default=0, help="export only the first N bp of each chromosome (0: all)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--out", type=Path, default=None, help="where the bigWigs go (default: DATA/export_bench)")
    args = ap.parse_args()
    if args.worker:
        return common.worker_main(args.worker, {"ours": ours, "tangermeme": peer})
    out = args.out or args.data / "export_bench"
    chroms = [c.strip() for c in args.chroms.split(",") if c.strip()]
    precisions = [p.strip() for p in args.precisions.split(",")]
    base = {"data": str(args.data), "threads": args.threads, "chroms": chroms, "max_bp": args.max_bp}
    cases = [{**base, "name": f"{side}-{p}", "kind": side, "precision": p, "out": str(out / f"{side}-{p}")}
             for p in precisions for side in ("ours", "tangermeme")]
    results = {c["name"]: common.run_case(__file__, c) | {"side": c["kind"], "precision": c["precision"]}
               for c in common.selected(cases, args.only)}
    rows = []
    for r in results.values():
        peer_rate = results.get(f"tangermeme-{r['precision']}", {}).get("bp_per_s")
        rows.append({"case": "ours: export_part_tiles + predict_profile + TrackWriter" if r["side"] == "ours"
                     else "tangermeme: extract_loci + predict + pyBigWig", "precision": r["precision"],
                     "bp": f"{r['bp']:,}", "seconds": r["seconds"], "rate": r["bp_per_s"],
                     "windows": r["bp_per_s"] / (WIDTH - 2 * OVERLAP),
                     "share": f"{100 * r['predict_share']:.0f}%", "rss": r["peak_rss_mb"],
                     "ratio": f"{r['bp_per_s'] / peer_rate:.2f}x" if peer_rate else ""})
    cut = f" (first {args.max_bp:,} bp of each)" if args.max_bp else ""
    notes = [f"chromosomes {', '.join(chroms)}{cut}; tiles of {WIDTH} bp, step {WIDTH - 2 * OVERLAP} bp; batch {BATCH}; "
             f"{args.threads} threads",
             "tiles/s = bp/s / tile step; 'in predict' = share of the wall time spent in the predict call",
             "vs tangermeme = that row's bp/s / tangermeme's at the same precision"]
    if "ours-fp32" in results and "tangermeme-fp32" in results:
        diff = compare(out / "ours-fp32", out / "tangermeme-fp32", chroms[0], min(200_000, args.max_bp or 200_000))
        notes.append(f"check: fp32 tracks of both sides on the first {min(200_000, args.max_bp or 200_000):,} bp of {chroms[0]}: largest "
                     f"|ours - tangermeme| / (1 + |ours|) = {diff:.1e}")
    table = common.markdown_table(rows, [("case", "case"), ("precision", "precision"), ("bp", "bp"),
                                         ("seconds", "s"), ("rate", "bp/s"), ("windows", "tiles/s"),
                                         ("share", "in predict"), ("rss", "peak RSS MB"), ("ratio", "vs tangermeme")])
    common.print_report("Prediction + bigWig export", common.command_line(), notes, table, args.threads)


if __name__ == "__main__":
    main()
