"""GPU throughput of BPNet-OSKN: training, prediction, contribution scores; bpnet-lite's step as a peer.

    python benchmarks/bench_gpu.py [--device cuda] [--steps 100] [--budget-s 300]
    python benchmarks/bench_gpu.py --smoke --device cpu      # tiny sizes: checks the code paths on a CPU

Everything runs in this one process, on synthetic data resident on the device (random one-hot
sequences of 1000 bp, Poisson(0.5) counts for 4 tasks x 2 strands, seeded), so that the figures
are those of the device, not of data loading. Cases, in this order:

- ``train``: our ``bpnet.model.network.BPNet(BPNetConfig())`` (BPNet-OSKN), batch 128: forward,
  ``bpnet.model.network.bpnet_loss`` (count weight 10), backward, Adam (lr 0.004); fp32 and bf16 autocast.
  Figure: training windows/s over ``--steps`` steps after ``--warmup`` steps.
- ``predict``: the same network's forward pass, batch 256, ``torch.inference_mode``, fp32 and
  bf16; on resident one-hot tensors (bp/s = windows/s x 1000), and through
  ``bpnet.steps.predict.predict_outputs`` from host codes to host arrays (the workflow's path,
  transfers included).
- ``contrib``: ``bpnet.interpret.contributions.contribution_scores`` (DeepLIFT/DeepSHAP, 8 targets), 64
  windows, 10 dinucleotide-shuffled references each, fp32, at batch 8 (bench_contrib.py's) and 64.
- ``bpnet-lite``: bpnet-lite's ``BPNet`` shaped as BPNet-OSKN (``bench_train._lite_model``),
  a plain step (forward, its ``_mixture_loss``, backward, gradient clipping, Adam 0.004) on
  ``(B, 4, 1000)`` / ``(B, 8, 1000)`` tensors, batch 128, fp32 and bf16. Skipped with a message
  when bpnetlite is not importable.
- ``train`` again under ``torch.compile(model)`` (modes ``--compile-modes``; ``reduce-overhead``
  captures CUDA graphs, CUDA only). A case that fails to compile prints ``n/a`` and the error's
  first line. Compiled cases start only while the run is within ``--budget-s``; later ones are
  reported as skipped, so that the whole run keeps its time limit.

Each case's figure is also printed to stderr as it finishes. An interrupt (SIGINT: Ctrl-C, or
gpu_check.sh's ``timeout -s INT``) ends the run and still prints the table of the cases so far.

Timers: ``torch.cuda.synchronize()`` before starting and before stopping each timer (on a GPU).
``--smoke``: batch 4 / 8, 2 steps, 4 windows x 2 references, and on a CPU ``torch.compile``
with ``backend="eager"`` (dynamo tracing without inductor's code generation, which takes
minutes on a CPU): it checks the code paths, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback

import common
import numpy as np
import torch

LENGTH = 1000
SEED = 1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, n: int, device: torch.device) -> float:
    """Seconds of ``n`` calls of ``fn``, the device synchronised at both ends."""
    sync(device)
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    sync(device)
    return time.perf_counter() - t0


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device):
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else ""


def synthetic(n_batches: int, batch: int, device: torch.device, channels_last: bool = True, seed: int = SEED):
    """``n_batches`` (one-hot float32, counts float32) pairs, ``(B, L, 4)`` / ``(B, L, 8)`` (or
    channels first), resident on ``device``; the timed loops cycle through them."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        codes = torch.randint(0, 4, (batch, LENGTH), generator=gen)
        x = torch.nn.functional.one_hot(codes, 4).float()
        y = torch.poisson(torch.full((batch, LENGTH, 8), 0.5), generator=gen)
        if not channels_last:
            x, y = x.transpose(1, 2).contiguous(), y.transpose(1, 2).contiguous()
        out.append((x.to(device), y.to(device)))
    return out


def our_model(device: torch.device, kernels: str = "channels_last"):
    from bpnet.model.network import BPNet, BPNetConfig, init_weights

    torch.manual_seed(SEED)
    model = BPNet(BPNetConfig()).set_kernels(kernels)
    init_weights(model, SEED)
    return model.to(device)


def compiled(model, mode: str | None, device: torch.device):
    """``torch.compile(model)`` (``mode`` None: not compiled). On a CPU, dynamo only (see --smoke)."""
    if mode is None:
        return model
    if device.type == "cpu":
        return torch.compile(model, backend="eager")
    return torch.compile(model) if mode == "default" else torch.compile(model, mode=mode)


def case_train(args, device, precision: str, mode: str | None, kernels: str = "channels_last") -> dict:
    from bpnet.model.network import bpnet_loss

    model = our_model(device, kernels)
    step_model = compiled(model, mode, device)
    opt = torch.optim.Adam(model.parameters(), lr=0.004)
    data = synthetic(4, args.train_batch, device)
    bf16 = precision == "bf16"
    model.train()

    def step(i):
        x, y = data[i % len(data)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = step_model(x)
        loss = bpnet_loss(out, y, 10.0)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    reset_peak(device)
    t0 = time.perf_counter()
    timed(step, args.warmup, device)  # compiles, for a compiled model
    warm_s = time.perf_counter() - t0
    seconds = timed(step, args.steps, device)
    return {"rate": args.steps * args.train_batch / seconds, "unit": "windows/s", "peak": peak_mb(device),
            "note": f"warm-up {warm_s:.1f} s (compile included)" if mode else ""}


def case_predict(args, device, precision: str) -> dict:
    model = our_model(device).eval()
    data = synthetic(2, args.predict_batch, device)
    bf16 = precision == "bf16"

    @torch.inference_mode()
    def forward(i):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            model(data[i % len(data)][0])

    reset_peak(device)
    timed(forward, args.warmup, device)
    seconds = timed(forward, args.steps, device)
    return {"rate": args.steps * args.predict_batch * LENGTH / seconds, "unit": "bp/s", "peak": peak_mb(device)}


def case_predict_outputs(args, device, precision: str) -> dict:
    from bpnet.steps.predict import predict_outputs

    model = our_model(device).eval()
    n = args.predict_batch * args.predict_host_batches
    codes = np.random.default_rng(SEED).integers(0, 4, (n, LENGTH), dtype=np.uint8)
    bf16 = precision == "bf16"

    def run(_):
        predict_outputs(model, codes, None, batch_size=args.predict_batch, device=device, bf16=bf16)

    reset_peak(device)
    timed(run, 1, device)
    seconds = timed(run, 1, device)
    return {"rate": n * LENGTH / seconds, "unit": "bp/s", "peak": peak_mb(device),
            "note": f"{n} windows, host codes -> host logits"}


def case_contrib(args, device, batch: int) -> dict:
    from bpnet.interpret.contributions import contribution_scores

    model = our_model(device).eval()
    codes = np.random.default_rng(SEED).integers(0, 4, (args.contrib_windows, LENGTH), dtype=np.uint8)
    k = args.references
    reset_peak(device)
    contribution_scores(model, codes[:batch], k, seed=SEED, batch_size=batch, device=device)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    contribution_scores(model, codes, k, seed=SEED, batch_size=batch, device=device)
    sync(device)
    seconds = time.perf_counter() - t0
    return {"rate": len(codes) / seconds, "unit": "windows/s", "peak": peak_mb(device),
            "note": f"{len(codes)} windows x {k} references, 8 targets"}


def case_lite(args, device, precision: str) -> dict:
    import tempfile

    from bench_train import _lite_model  # bpnet-lite's BPNet shaped as BPNet-OSKN
    from bpnetlite.losses import _mixture_loss

    with tempfile.TemporaryDirectory() as tmp:
        model = _lite_model(f"{tmp}/bpnet").to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.004)
    data = synthetic(4, args.train_batch, device, channels_last=False)
    bf16 = precision == "bf16"
    model.train()

    def step(i):
        x, y = data[i % len(data)]
        opt.zero_grad()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits, logcounts = model(x)
            _, _, loss = _mixture_loss(y, logits, logcounts, model.count_loss_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1)
        opt.step()

    reset_peak(device)
    timed(step, args.warmup, device)
    seconds = timed(step, args.steps, device)
    return {"rate": args.steps * args.train_batch / seconds, "unit": "windows/s", "peak": peak_mb(device),
            "note": f"{sum(p.numel() for p in model.parameters()):,} parameters"}


def first_line(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip().splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def header(device: torch.device) -> list[str]:
    lines = [f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none (CPU-only build)'}, "
             f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'none'}, "
             f"Python {platform.python_version()}"]
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        lines.insert(0, f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}, "
                        f"{p.multi_processor_count} SMs")
        lines.append(f"TF32: cudnn.allow_tf32 {torch.backends.cudnn.allow_tf32}, "
                     f"matmul precision {torch.get_float32_matmul_precision()!r}; cudnn.benchmark "
                     f"{torch.backends.cudnn.benchmark}")
    else:
        lines.insert(0, f"CPU: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
                        f"{torch.get_num_threads()} torch threads")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (a check of the code paths, e.g. on a CPU)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per case (default 100; smoke 2)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps per case (default 10; smoke 1)")
    ap.add_argument("--compile-modes", default="default,reduce-overhead",
                    help="torch.compile modes of the compiled training cases ('' for none)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--skip", default="", help="comma-separated cases not run: train, predict, contrib, "
                                                "bpnet-lite, compile")
    ap.add_argument("--budget-s", type=float, default=300.0,
                    help="compiled cases start only within this many seconds of the start")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on a CPU")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="torch.backends.cudnn.benchmark = True (the workflow leaves it off)")
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    smoke = args.smoke
    args.steps = args.steps or (2 if smoke else 100)
    args.warmup = args.warmup or (1 if smoke else 10)
    args.train_batch, args.predict_batch = (4, 8) if smoke else (128, 256)
    args.predict_host_batches = 2 if smoke else 16
    args.contrib_windows, args.references = (4, 2) if smoke else (64, 10)
    contrib_batches = (2,) if smoke else (8, 64)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if set(precisions) - {"fp32", "bf16"}:
        raise SystemExit(f"--precisions: expected fp32 and/or bf16, got {args.precisions!r}")
    modes = [m.strip() for m in args.compile_modes.split(",") if m.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    start = time.perf_counter()
    torch.manual_seed(SEED)

    # the machine first, so that it is on record even if a case crashes the process
    print("\n### GPU throughput (BPNet-OSKN)\n" if device.type == "cuda" else "\n### Throughput (BPNet-OSKN)\n")
    print(f"`{common.command_line()}`  ")
    for line in header(device):
        print(line + "  ")
    print(flush=True)

    rows: list[dict] = []
    notes: list[str] = []
    stopped = False

    def run(case: str, precision: str, compile_label: str, fn, *fargs):
        """One case -> one row; a failure is a row with n/a, an interrupt (gpu_check.sh's time
        limit, or Ctrl-C) ends the run and the rows so far are still printed."""
        nonlocal stopped
        row = {"case": case, "precision": precision, "compile": compile_label}
        if stopped:
            rows.append(row | {"rate": "skipped", "note": "run stopped"})
            return
        print(f"... {case} [{precision}, {compile_label}]", file=sys.stderr, flush=True)
        try:
            row |= fn(args, device, *fargs)
        except KeyboardInterrupt:
            stopped = True
            row |= {"rate": "n/a", "note": f"interrupted after {time.perf_counter() - start:.0f} s (time limit?)"}
        except Exception as err:  # a case that cannot run is reported, the others still run
            row |= {"rate": "n/a", "note": first_line(err)}
            traceback.print_exc(limit=2, file=sys.stderr)
        rate = row.get("rate")
        print(f"    -> {f'{rate:,.1f}' if isinstance(rate, float) else rate} {row.get('unit', '')} {row.get('note', '')}",
              file=sys.stderr, flush=True)
        rows.append(row)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    train = f"train: BPNet step (batch {args.train_batch})"
    if "train" not in skip:
        for p in precisions:
            for kernels in ("channels_last", "plain"):  # bpnet.hardware.choose_kernels takes the first on CUDA
                run(f"{train}, {kernels}", p, "eager", case_train, p, None, kernels)
    if "predict" not in skip:
        for p in precisions:
            run(f"predict: forward (batch {args.predict_batch}, resident)", p, "eager", case_predict, p)
        for p in precisions:
            run("predict: bpnet.steps.predict.predict_outputs", p, "eager", case_predict_outputs, p)
    if "contrib" not in skip:
        for b in contrib_batches:
            run(f"contrib: contribution_scores (batch {b})", "fp32", "eager", case_contrib, b)
    if "bpnet-lite" not in skip:
        try:
            import bpnetlite  # noqa: F401
            from bpnetlite.losses import _mixture_loss  # noqa: F401
        except ImportError as err:
            notes.append(f"bpnet-lite skipped: it cannot be imported in this Python ({first_line(err)}); "
                         "pip install bpnet-lite==1.1.0 to include it")
        else:
            import importlib.metadata as md

            for p in precisions:
                run(f"bpnet-lite {md.version('bpnet-lite')}: plain step (batch {args.train_batch})", p, "eager",
                    case_lite, p)
    if "compile" not in skip:
        for mode in modes:
            for p in precisions:
                if mode == "reduce-overhead" and device.type != "cuda":
                    rows.append({"case": train, "precision": p, "compile": mode, "rate": "n/a",
                                 "note": "CUDA graphs: CUDA only"})
                elif time.perf_counter() - start > args.budget_s:
                    rows.append({"case": train, "precision": p, "compile": mode, "rate": "skipped",
                                 "note": f"past --budget-s {args.budget_s:.0f}"})
                else:
                    torch._dynamo.reset()
                    run(train, p, mode if device.type == "cuda" else f"{mode} (backend eager)", case_train, p, mode)

    eager = {r["precision"]: r["rate"] for r in rows
             if r["case"].startswith("train:") and r["compile"] == "eager" and isinstance(r.get("rate"), float)}
    lite = {r["precision"]: r["rate"] for r in rows
            if r["case"].startswith("bpnet-lite") and isinstance(r.get("rate"), float)}
    for r in rows:
        base = lite.get(r["precision"]) if r["case"].startswith("train:") else None
        r["vs"] = f"{r['rate'] / base:.2f}x" if base and isinstance(r.get("rate"), float) else ""
        if r["case"].startswith("train:") and r["compile"] != "eager" and isinstance(r.get("rate"), float) \
                and r["precision"] in eager:
            r["note"] = (r.get("note", "") + f"; {r['rate'] / eager[r['precision']]:.2f}x eager").lstrip("; ")
    total = time.perf_counter() - start
    notes.insert(0, f"{args.steps} timed steps after {args.warmup} warm-up steps per case; synthetic data "
                    f"resident on {device}, 1000 bp; Adam lr 0.004; bf16 = torch.autocast(bfloat16); "
                    f"total {total:.0f} s" + ("; --smoke: tiny sizes, the figures mean nothing" if smoke else ""))
    notes.append("vs bpnet-lite: training rate / bpnet-lite's plain step at the same precision")

    print(common.markdown_table(rows, [("case", "case"), ("precision", "precision"), ("compile", "compile"),
                                       ("rate", "rate"), ("unit", "unit"), ("vs", "vs bpnet-lite"),
                                       ("peak", "peak GPU MB"), ("note", "note")]))
    print()
    for n in notes:
        print(f"- {n}")
    print(flush=True)


if __name__ == "__main__":
    main()
