"""Background windows (issue #18): a model trained on peaks only against one trained with
GC-matched background windows, on the default simulated dataset where the truth is known.

Runs the workflow twice in --workdir (experiments ``peaks_only`` and ``with_background``, the
default config otherwise, genome-wide export of --chroms), then reports for both models:
- the peak metrics of each model's own metrics.tsv (test split, mean over tasks);
- on the with-background dataset's test windows: auROC / auPRC of predicted totals separating
  each task's peak windows from background windows, and the count correlation over both;
- genome-wide, per --tile bp tile of --chroms: Pearson of log(1 + predicted total) against
  log(1 + expected total) (the simulator's truth tracks) over all tiles and over background
  tiles (no peak window within), and the calibration sum(predicted) / sum(expected) there.

    .venv/bin/python benchmarks/bench_background.py --workdir /tmp/bench_background
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import pearsonr

from bpnet.data.dataset import load_dataset
from bpnet.data.windows import load_windows
from bpnet.io.tracks import read_chrom_sizes, tile_sums, track_paths
from bpnet.model.weights import load_checkpoint
from bpnet.steps.evaluate import evaluate
from bpnet.steps.predict import predict_profile

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("peaks_only", "with_background")


def run_workflow(work: Path, chroms: list[str], ratio: float) -> None:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["experiments"] = {
        "peaks_only": {"export": {"regions": chroms, "decimals": 3}},
        "with_background": {"export": {"regions": chroms, "decimals": 3},
                            "windows": {"background": {"enabled": True, "ratio": ratio}}},
    }
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work),
           "--workflow-profile", str(REPO / "workflow/profiles/default"), "--configfile", str(config)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"workflow: {time.perf_counter() - t0:.0f} s")


def peak_metrics(work: Path, exp: str) -> dict:
    table = pd.read_csv(work / f"results/{exp}/evaluation/metrics.tsv", sep="\t")
    test = table[(table.model == "model") & (table.split == "test")]
    pick = {"auprc_bin1": ("auprc", 1), "count_pearson": ("count_pearson", None), "count_spearman": ("count_spearman", None)}
    out = {}
    for name, (metric, binsize) in pick.items():
        rows = test[test.metric == metric]
        if binsize is not None:
            rows = rows[rows.binsize == binsize]
        out[name] = round(float(rows.value.mean()), 4)
    return out


def separation(work: Path) -> dict:
    ds = load_dataset(work / "results/with_background/dataset.npz")
    rows = np.flatnonzero(ds.split == "test")
    c, w = ds.extra_context, ds.width
    out = {}
    for exp in EXPERIMENTS:
        model = load_checkpoint(work / f"results/{exp}/model/model.safetensors")
        profile = predict_profile(model, np.asarray(ds.sequence[rows, c:c + w]))
        table = evaluate(ds, {"model": (rows, profile)}, ["test"], [1], list(ds.tasks))
        mean = table.groupby("metric")["value"].mean()
        out[exp] = {k: round(float(mean[k]), 4) for k in ("background_auroc", "background_auprc",
                                                          "count_pearson_all", "count_spearman_all")}
    return out


def tiles(work: Path, chroms: list[str], tile: int) -> dict:
    sim = work / "results/simulated"
    sizes = read_chrom_sizes(sim / "genome.chrom.sizes")
    windows = load_windows(work / "results/with_background/windows.tsv")
    tasks = list(load_checkpoint(work / "results/peaks_only/model/model.safetensors").config.tasks)
    out = {exp: {} for exp in EXPERIMENTS}
    for t, task in enumerate(tasks):
        truth, pred = [], {exp: [] for exp in EXPERIMENTS}
        background = []
        for chrom in chroms:
            n = sizes[chrom]
            truth.append(sum(tile_sums(sim / f"truth/{task}/expected.{s}.bw", chrom, n, tile) for s in ("pos", "neg")))
            for exp in EXPERIMENTS:
                paths = track_paths(work / f"results/{exp}/tracks", tasks)[2 * t:2 * t + 2]
                pred[exp].append(sum(tile_sums(p, chrom, n, tile) for p in paths))
            peak = np.zeros(len(truth[-1]), bool)  # tiles touched by a peak window
            is_peak = windows["kind"] == "peak" if "kind" in windows else np.ones(len(windows), bool)
            on = windows[(windows.chrom == chrom) & is_peak]
            for s, e in zip(on.start.to_numpy(), on.end.to_numpy()):
                peak[s // tile:(e - 1) // tile + 1] = True
            background.append(~peak)
        truth, background = np.concatenate(truth), np.concatenate(background)
        for exp in EXPERIMENTS:
            p = np.concatenate(pred[exp])
            out[exp][task] = {
                "pearson_all": round(float(pearsonr(np.log1p(p), np.log1p(truth))[0]), 4),
                "pearson_background": round(float(pearsonr(np.log1p(p[background]), np.log1p(truth[background]))[0]), 4),
                "calibration_background": round(float(p[background].sum() / truth[background].sum()), 3),
            }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_background"))
    ap.add_argument("--chroms", nargs="+", default=["chr8", "chr9"], help="test chromosomes exported genome-wide")
    ap.add_argument("--ratio", type=float, default=0.5, help="windows.background.ratio")
    ap.add_argument("--tile", type=int, default=1000)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    run_workflow(args.workdir, args.chroms, args.ratio)
    report = {
        "peak_metrics_test": {exp: peak_metrics(args.workdir, exp) for exp in EXPERIMENTS},
        "peak_vs_background_test": separation(args.workdir),
        "genome_tiles": tiles(args.workdir, args.chroms, args.tile),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
