"""Shared pieces of the benchmark scripts: one subprocess per measured case, tables, data paths.

Every case (ours or a peer's, one precision) runs in its own Python process, so that its peak
resident memory is its own: the parent reads it from ``os.wait4``'s rusage of that child
(``ru_maxrss``, its high-water mark), and the child reports its timings as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"
RESULT_MARK = "BENCH-RESULT "


class ChannelsFirst(torch.nn.Module):
    """Our BPNet as tangermeme expects a model: one-hot ``(B, 4, L)`` -> ``(profile (B, C, L), counts (B, C))``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        out = self.model(x.transpose(1, 2).contiguous())  # our model's layout: channels-last
        return out["profile_logits"].transpose(1, 2), out["count_logits"]


def data_paths(data_dir: Path) -> dict[str, Path]:
    """The files of ``make_data.py``'s output folder; missing ones are a clear error."""
    from bpnet.simulate.files import output_paths

    data_dir = Path(data_dir)
    paths = {k: Path(v) for k, v in output_paths(data_dir / "sim").items()}
    paths.update(windows=data_dir / "windows.tsv", dataset=data_dir / "dataset.npz")
    for key in ("fasta", "chrom_sizes", "windows", "dataset"):
        if not paths[key].exists():
            raise SystemExit(f"{paths[key]} does not exist: run benchmarks/make_data.py --out {data_dir} first")
    return paths


def subset(n_total: int, n: int, seed: int = 1):
    """``n`` of ``n_total`` row indices, drawn at random (seeded), in increasing order: windows.tsv
    is sorted by chromosome, so its first rows would all be test and valid windows of chr1-chr2."""
    import numpy as np

    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


def load_subset(data_dir: Path, windows: int):
    """dataset.npz of ``make_data.py``'s output, cut to ``windows`` rows drawn by :func:`subset`
    (all rows when ``windows`` is 0 or at least the dataset's size)."""
    import dataclasses

    from bpnet.data.dataset import load_dataset

    ds = load_dataset(data_paths(data_dir)["dataset"])
    if windows and windows < len(ds):
        rows = subset(len(ds), windows)
        ds = dataclasses.replace(
            ds, sequence=ds.sequence[rows], counts=ds.counts[rows], chrom=ds.chrom[rows], start=ds.start[rows],
            split=ds.split[rows], window_tasks=ds.window_tasks[rows],
        )
    return ds


def base_parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="output folder of make_data.py")
    ap.add_argument("--threads", type=int, default=2, help="torch / reader threads of every case")
    ap.add_argument("--only", default=None, help="comma-separated case names to run (default: all)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: run one case
    return ap


def run_case(script: str, case: dict) -> dict:
    """Run ``script --worker <case>`` in a fresh interpreter; its result plus ``peak_rss_mb``."""
    cmd = [sys.executable, script, "--worker", json.dumps(case)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    proc.stdout.close()
    # wait4 reaps this child and returns its own rusage: ru_maxrss (KiB on Linux) is the peak of
    # this case alone (and of any process it waited for), not of earlier cases.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"case {case['name']} failed (exit {proc.returncode}); command: {' '.join(cmd)}")
    lines = [ln for ln in out.splitlines() if ln.startswith(RESULT_MARK)]
    if not lines:
        raise SystemExit(f"case {case['name']} printed no result line; command: {' '.join(cmd)}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    result.update(name=case["name"], peak_rss_mb=round(usage.ru_maxrss / 1024, 1), process_s=round(wall, 1))
    return result


def worker_main(case_json: str, cases: dict[str, Callable[[dict], dict]]) -> None:
    """Child side: run one case and print its result as one marked JSON line."""
    case = json.loads(case_json)
    result = cases[case["kind"]](case)
    print(RESULT_MARK + json.dumps(result), flush=True)


def selected(cases: list[dict], only: str | None) -> list[dict]:
    if not only:
        return cases
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = sorted(set(names) - {c["name"] for c in cases})
    if unknown:
        raise SystemExit(f"--only: unknown case(s) {unknown}; known: {[c['name'] for c in cases]}")
    return [c for c in cases if c["name"] in names]


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """``columns`` = [(key, header)]; missing values print as an empty cell."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "| " + " | ".join("---" for _ in columns) + " |"
    body = []
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key, "")
            cells.append(f"{v:,.1f}" if isinstance(v, float) else str(v))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


def machine_line(threads: int) -> str:
    """The machine as every table names it: cores, the CPU capability torch and oneDNN use (with an
    emulation, e.g. ONEDNN_MAX_CPU_ISA=AVX2, said so), torch, threads, load."""
    from bpnet.hardware import cpu_info

    cpu = platform.processor() or platform.machine()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    emulated = f", emulated with ONEDNN_MAX_CPU_ISA={isa}" if isa else ""
    return (f"{os.cpu_count()} CPUs ({cpu}, capability {cpu_info().describe()}{emulated}), torch {torch.__version__}, "
            f"{threads} thread(s) per case, load average {os.getloadavg()[0]:.1f} at the start")


def print_report(title: str, command: str, notes: list[str], table: str, threads: int) -> None:
    print(f"\n### {title}\n")
    print(f"`{command}`  ")
    print(machine_line(threads) + "\n")
    print(table)
    if notes:
        print()
        for n in notes:
            print(f"- {n}")
    print(flush=True)


def command_line() -> str:
    """The command as typed (relative script path), for the report."""
    script = os.path.relpath(sys.argv[0], HERE.parent)
    return " ".join(["python", script, *sys.argv[1:]])
