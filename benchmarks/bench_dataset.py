"""Dataset building: windows/s reading sequence + 4 tasks x 2 strands of counts for every window.

    python benchmarks/bench_dataset.py [--windows N] [--repeats R]

- ours: ``bpnet.data.dataset.build_dataset`` (FASTA + 8 count bigWigs -> uint8 codes and integer
  counts in memory; the .npz write is not timed).
- tangermeme: ``tangermeme.io.extract_loci`` on the same loci (in_window = out_window = 1000,
  no jitter, the same 8 bigWigs; int8 one-hot and float32 signals), ``n_jobs`` = ``--threads``.

Each case runs in its own process (peak RSS = that process's); the figure is the best of
``--repeats`` runs after one untimed warm-up run on 500 windows (file cache, numba compilation).
A check case compares the two outputs on the first 1000 windows (identical values expected).
"""

from __future__ import annotations

import time

import common
import numpy as np


def _windows(case):
    from bpnet.data.windows import load_windows

    paths = common.data_paths(case["data"])
    windows = load_windows(paths["windows"])
    if case["windows"] and case["windows"] < len(windows):
        windows = windows.iloc[common.subset(len(windows), case["windows"])].reset_index(drop=True)
    return paths, windows


def _bigwigs(paths):
    from bpnet.simulate.binding import TFS

    return [str(paths[f"{tf}.counts.{s}"]) for tf in TFS for s in ("pos", "neg")]


def _ours(paths, windows):
    from bpnet.data.dataset import build_dataset
    from bpnet.simulate.binding import TFS

    return build_dataset(windows, paths["fasta"], _bigwigs(paths), TFS)


def _tangermeme(paths, windows, threads):
    from tangermeme.io import extract_loci

    loci = windows[["chrom", "start", "end"]]
    return extract_loci(loci, str(paths["fasta"]), signals=_bigwigs(paths), in_window=1000, out_window=1000,
                        max_jitter=0, n_jobs=threads)


def run(case: dict) -> dict:
    import torch

    torch.set_num_threads(case["threads"])
    paths, windows = _windows(case)
    if case["side"] == "ours":
        fn = lambda w: _ours(paths, w)  # noqa: E731
    else:
        fn = lambda w: _tangermeme(paths, w, case["threads"])  # noqa: E731
    fn(windows.iloc[:500].reset_index(drop=True))  # warm-up: page cache, lazy imports, numba
    times = []
    for _ in range(case["repeats"]):
        t0 = time.perf_counter()
        out = fn(windows)
        times.append(time.perf_counter() - t0)
        del out
    best = min(times)
    return {"windows": len(windows), "seconds": round(best, 3), "windows_per_s": len(windows) / best}


def check(case: dict) -> dict:
    """Both on the first 1000 windows: the same one-hot sequence and the same counts."""
    from bpnet.io.sequence import one_hot

    paths, windows = _windows(case)
    windows = windows.iloc[:1000].reset_index(drop=True)
    ours = _ours(paths, windows)
    x, y = _tangermeme(paths, windows, case["threads"])
    seq_equal = np.array_equal(one_hot(ours["sequence"]).transpose(0, 2, 1), x.numpy().astype(np.float32))
    counts_equal = np.array_equal(ours["counts"].transpose(0, 2, 1).astype(np.float32), y.numpy())
    if not (seq_equal and counts_equal):
        raise SystemExit(f"outputs differ: sequence equal {seq_equal}, counts equal {counts_equal}")
    return {"windows": len(windows), "identical": True}


def main() -> None:
    ap = common.base_parser(__doc__)
    ap.add_argument("--windows", type=int, default=0, help="N windows of windows.tsv, a seeded random subset in file order (0: all)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.worker:
        return common.worker_main(args.worker, {"run": run, "check": check})
    base = {"data": str(args.data), "windows": args.windows, "threads": args.threads, "repeats": args.repeats}
    cases = [
        {**base, "name": "check", "kind": "check", "side": "both"},
        {**base, "name": "ours", "kind": "run", "side": "ours"},
        {**base, "name": "tangermeme", "kind": "run", "side": "tangermeme"},
    ]
    results = {c["name"]: common.run_case(__file__, c) for c in common.selected(cases, args.only)}
    rows = []
    labels = {"ours": "ours: bpnet.data.dataset.build_dataset",
              "tangermeme": f"tangermeme.io.extract_loci (n_jobs={args.threads})"}
    for name in ("ours", "tangermeme"):
        if name in results:
            r = results[name]
            rows.append({"case": labels[name], "windows": r["windows"], "seconds": r["seconds"],
                         "rate": r["windows_per_s"], "rss": r["peak_rss_mb"]})
    if "ours" in results and "tangermeme" in results:
        for row, name in zip(rows, ("ours", "tangermeme")):
            row["ratio"] = f"{results[name]['windows_per_s'] / results['tangermeme']['windows_per_s']:.2f}x"
    notes = [f"best of {args.repeats} runs after a warm-up on 500 windows; each case in its own process "
             "(peak RSS = that process's high-water mark, including the Python and torch imports)",
             "vs tangermeme = that row's windows/s / tangermeme's"]
    if "check" in results:
        notes.append(f"outputs compared on the first {results['check']['windows']} windows: identical "
                     "one-hot sequence and counts")
    table = common.markdown_table(rows, [("case", "case"), ("windows", "windows"), ("seconds", "s"),
                                         ("rate", "windows/s"), ("rss", "peak RSS MB"), ("ratio", "vs tangermeme")])
    common.print_report("Dataset building", common.command_line(), notes, table, args.threads)


if __name__ == "__main__":
    main()
