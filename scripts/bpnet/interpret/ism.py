"""In-silico mutagenesis (ISM) of chosen windows: every base mutated to the three others (rule ``ism``).

:func:`ism` works with any scoring function ``score(x (b, L, 4)) -> (b, K)``: for every window,
position ``i`` and base ``b`` it returns ``effect(mutant) `` where the mutant is the window with
base ``b`` at ``i``, by default ``score(mutant) - score(reference)``; ``0`` at the reference base
(and at N positions, which have no base to mutate). The ``3 L`` mutants of every window are made on
the device and run in batches of ``batch_size`` (mutants of consecutive windows share a batch), so
a window of 1000 bp costs 3000 forward passes and nothing else.

:func:`bpnet_ism` scores a BPNet per task ``t`` (outputs ``K`` in this order, see
:func:`output_names`):

- ``<task>:log_counts``: the predicted log total reads, ``log(1 + sum over strands s of
  max(expm1(count_logit_s), 0))`` (the count head's totals as :func:`bpnet.model.network.postprocess`
  takes them, summed over the strands; for one strand the count logit itself when >= 0). Its
  effect is the change of that value: ``log2`` fold change / ``ln 2``.
- ``<task>:profile_jsd`` (``profile=True``): the Jensen-Shannon *distance* (natural log, as the
  evaluation's JSD, :mod:`bpnet.steps.metrics`) between the mutant's and the reference's predicted
  profile shape (``softmax`` of the profile logits over positions), per strand, averaged over the
  task's strands: a change of shape, ``>= 0``, whatever its direction.

With ``rc_average`` every input is also predicted as its reverse complement and the logits are
averaged as rule ``predict`` does (:func:`bpnet.steps.predict.model_outputs`): twice the cost.

Rule ``ism`` (:func:`run_ism`) writes under ``results/{exp}/interpretation/ism/``:

- ``ism.npz`` (:func:`bpnet.io.npz.write_npz`), n windows of width W, K outputs, T tasks::

      effects    float32 (n, W, 4, K)  effect of base A, C, G, T at each position (0 at the reference)
      reference  float32 (n, K)        the reference windows' scores (log counts; 0 for profile_jsd)
      outputs    (K,) str              "<task>:log_counts", "<task>:profile_jsd" (what K means)
      output_task, output_kind (K,) str
      index      int64 (n,)            rows of dataset.npz (-1 for windows from ism.regions)
      name, chrom (n,) str; start int64 (n,)  the windows [start, start + W)
      sequence   uint8 (n, W)          codes of the windows (A=0 C=1 G=2 T=3 N=4)
      tasks (T,) str; rc_average () bool

- ``windows.tsv``: one row per window (name, chrom, start, end, dataset row, split, observed reads,
  and per task the reference log counts and the largest ``|effect|`` on them);
- ``{task}.max_effect.bw`` (rule ``ism_track``, :func:`write_max_effect_track`): per base the largest absolute effect on the task's log counts over the
  three other bases, at genome coordinates (every chromosome of the chrom sizes in the header; no
  data outside the windows; overlapping windows stitched as export does, nearest centre wins).

Windows: the ``ism.n_windows`` test windows with the most observed reads (all tasks and strands
summed over the core window; ties: the lower dataset row), or, with ``ism.regions``, one window
of the model's width centred on each region of a BED file (moved inside the chromosome at its ends).
"""

from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from bpnet.errors import BPNetInputError
from bpnet.hardware import inference_batch_size, setup_inference
from bpnet.interpret.contributions import load_model_and_dataset
from bpnet.io.npz import read_npz, row_chunks, write_npz
from bpnet.io.sequence import open_fasta
from bpnet.io.tracks import TrackWriter, read_chrom_sizes
from bpnet.model.network import BPNet, codes_to_one_hot, strand_swap_permutation
from bpnet.progress import progress_bar
from bpnet.steps.export import export_test_windows
from bpnet.steps.predict import model_outputs
from bpnet.steps.regions import BedRegions, genome_reader, read_bed_regions

Score = Callable[..., torch.Tensor]
KINDS = ("log_counts", "profile_jsd")


# --------------------------------------------------------------------------------------------
# Generic ISM
# --------------------------------------------------------------------------------------------


def difference(mutant: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The default effect: ``score(mutant) - score(reference)``."""
    return mutant - reference


def mutants(x: torch.Tensor, first: int, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mutants ``first .. first + count - 1`` of the windows ``x`` ``(n, L, 4)`` (one-hot).

    Mutant ``m`` is window ``m // (3 L)``, position ``(m // 3) % L``, changed to the ``(m % 3)``-th
    base other than its reference base (in A, C, G, T order; an N position "mutates" to C, G, T,
    whose effects :func:`ism` then sets to 0). Returns ``(one-hot (count, L, 4), window (count,),
    flat index (count,) into the (n, L, 4) effects)``.
    """
    n, length, _ = x.shape
    m = torch.arange(first, first + count, device=x.device)
    window, pos, k = m // (3 * length), (m // 3) % length, m % 3
    ref = x[window, pos].argmax(dim=-1)
    alt = k + (k >= ref).long()  # the k-th base other than ref
    batch = x[window].clone()
    rows = torch.arange(count, device=x.device)
    batch[rows, pos] = 0
    batch[rows, pos, alt] = 1
    return batch, window, (window * length + pos) * 4 + alt


@torch.no_grad()
def ism(
    score: Score,
    one_hot: np.ndarray | torch.Tensor,
    batch_size: int = 64,
    aux: np.ndarray | torch.Tensor | None = None,
    effect: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = difference,
    device: str | torch.device = "cpu",
    log: logging.Logger | None = None,
) -> np.ndarray:
    """In-silico mutagenesis: the effect of every single-base substitution of every window.

    Args:
        score: ``score(x (b, L, 4) float tensor) -> (b, D)`` (``score(x, aux_rows)`` when ``aux``
            is given), e.g. a model's predictions; called without gradients.
        one_hot: ``(n, L, 4)`` windows, channels A, C, G, T (an all-zero position is N).
        batch_size: mutants per call of ``score`` (they may come from several windows); the
            references run first, in batches of the same size.
        aux: optional ``(n, ...)`` per-window input that is not mutated (a control track); each
            call gets the rows of its mutants' windows.
        effect: ``effect(score(mutants) (b, D), score(their references) (b, D)) -> (b, K)``;
            default :func:`difference` (then K = D).
        device: where the mutants are made and scored.
        log: progress lines (mutants done, rate, ETA), and windows/s at the end.

    Returns:
        float32 ``(n, L, 4, K)``: ``effects[w, i, b]`` is the effect of base ``b`` at position ``i``
        of window ``w``; 0 at the reference base and at every base of an N position. The result
        does not depend on ``batch_size`` beyond the floating-point rounding of ``score``.
    """
    device = torch.device(device) if isinstance(device, str) else device
    x = torch.as_tensor(one_hot, dtype=torch.float32, device=device)
    if x.dim() != 3 or x.shape[-1] != 4:
        raise BPNetInputError(f"ism: expected one-hot windows of shape (n, length, 4), got {tuple(x.shape)}")
    if batch_size < 1:
        raise BPNetInputError(f"ism: batch_size must be >= 1, got {batch_size}")
    if len(x) == 0:
        raise BPNetInputError("ism: no windows to mutate")
    a = None if aux is None else torch.as_tensor(aux, dtype=torch.float32, device=device)
    if a is not None and len(a) != len(x):
        raise BPNetInputError(f"ism: aux has {len(a)} rows for {len(x)} windows")

    def run(inputs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        out = score(inputs) if a is None else score(inputs, a[rows])
        return out.float().reshape(len(inputs), -1)

    n, length, _ = x.shape
    ref = torch.cat([run(x[lo:lo + batch_size], torch.arange(lo, min(lo + batch_size, n), device=device))
                     for lo in range(0, n, batch_size)])
    total = 3 * n * length
    out = torch.zeros((n * length * 4, effect(ref[:1], ref[:1]).shape[1]), dtype=torch.float32, device=device)
    t0 = time.perf_counter()
    with progress_bar(log, total, "ism", unit="mutant") as bar:
        for lo in range(0, total, batch_size):
            batch, window, flat = mutants(x, lo, min(batch_size, total - lo))
            out[flat] = effect(run(batch, window), ref[window]).float()
            bar.update(len(batch))
    seconds = time.perf_counter() - t0
    result = out.reshape(n, length, 4, -1).cpu().numpy()
    result[(x.sum(dim=-1) == 0).cpu().numpy()] = 0  # N positions: no base to mutate
    if log is not None:
        log.info("ism: %d windows of %d bp (%d mutants) in %.1f s: %.3f windows/s, %.0f mutants/s",
                 n, length, total, seconds, n / max(seconds, 1e-9), total / max(seconds, 1e-9))
    return result


# --------------------------------------------------------------------------------------------
# BPNet scores
# --------------------------------------------------------------------------------------------


def output_names(tasks: Sequence[str], profile: bool = True) -> list[tuple[str, str]]:
    """``(task, kind)`` of the K outputs of :func:`bpnet_ism`: per task ``log_counts``, then (with
    ``profile``) per task ``profile_jsd``."""
    kinds = KINDS if profile else KINDS[:1]
    return [(t, k) for k in kinds for t in tasks]


def log_total_counts(count_logits: torch.Tensor, num_tasks: int, num_strands: int) -> torch.Tensor:
    """``(b, T)``: ``log(1 + sum over the task's strands of max(expm1(count_logit), 0))``."""
    totals = torch.expm1(count_logits.float()).clamp_min(0).reshape(-1, num_tasks, num_strands).sum(dim=-1)
    return torch.log1p(totals)


def bpnet_score(model: BPNet, rc_average: bool = False, profile: bool = True) -> Score:
    """``score(x, control=None) -> (b, D)`` for :func:`ism`: the T log total counts
    (:func:`log_total_counts`), then (with ``profile``) the profile log-probabilities
    ``log_softmax(profile_logits over positions)`` flattened ``(L * C)``, from which
    :func:`bpnet_effect` computes the JSD."""
    t, s = model.config.num_tasks, model.config.num_strands
    swap = None

    def score(x: torch.Tensor, control: torch.Tensor | None = None) -> torch.Tensor:
        nonlocal swap
        if rc_average and swap is None:
            swap = strand_swap_permutation(t, s).to(x.device)
        out = model_outputs(model, x, control, rc_average, swap)
        counts = log_total_counts(out["count_logits"], t, s)
        if not profile:
            return counts
        logp = torch.log_softmax(out["profile_logits"], dim=1)
        return torch.cat([counts, logp.reshape(len(x), -1)], dim=1)

    return score


def profile_jsd(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon distance (natural log) along dim 1 of log-probabilities ``(b, L, C)`` -> ``(b, C)``."""
    p, q = logp.exp(), logq.exp()
    logm = torch.logaddexp(logp, logq) - np.log(2.0)

    def kl(pr: torch.Tensor, logpr: torch.Tensor) -> torch.Tensor:  # KL(pr || m); 0 log 0 = 0
        return torch.where(pr > 0, pr * (logpr - logm), torch.zeros_like(pr)).sum(dim=1)

    return torch.sqrt(((kl(p, logp) + kl(q, logq)) / 2).clamp_min(0))


def bpnet_effect(num_tasks: int, num_strands: int, profile: bool = True) -> Callable:
    """``effect(mutant, reference)`` for :func:`ism` with :func:`bpnet_score`: the change of the T
    log counts, then the T per-task profile JSDs (mean over the task's strands)."""
    t, s = num_tasks, num_strands

    def effect(mut: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        counts = mut[:, :t] - ref[:, :t]
        if not profile:
            return counts
        shape = (len(mut), -1, t * s)
        jsd = profile_jsd(mut[:, t:].reshape(shape), ref[:, t:].reshape(shape))  # (b, T * S)
        return torch.cat([counts, jsd.reshape(len(mut), t, s).mean(dim=-1)], dim=1)

    return effect


def bpnet_ism(
    model: BPNet,
    codes: np.ndarray,
    control: np.ndarray | None = None,
    rc_average: bool = False,
    profile: bool = True,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    log: logging.Logger | None = None,
) -> np.ndarray:
    """ISM of a BPNet on windows of codes ``(n, L)`` (A=0 C=1 G=2 T=3 N=4).

    Returns float32 ``(n, L, 4, K)``, outputs in :func:`output_names` order: per task the change of
    the predicted log total counts (mutant - reference), then with ``profile`` per task the
    Jensen-Shannon distance between the mutant's and the reference's profile (module docstring).
    ``control``: ``(n, L, S)`` for a model that uses it (the same for a window and its mutants).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise BPNetInputError(f"ism: expected codes of shape (n, length), got {codes.shape}")
    if model.config.use_control and control is None:
        raise BPNetInputError("this model uses a control track: ISM needs the control of each window")
    device = torch.device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    x = codes_to_one_hot(torch.as_tensor(codes, device=device))
    aux = control if model.config.use_control else None
    return ism(bpnet_score(model, rc_average, profile), x, batch_size, aux,
               bpnet_effect(model.config.num_tasks, model.config.num_strands, profile), device, log)


def reference_scores(model: BPNet, codes: np.ndarray, control: np.ndarray | None = None, rc_average: bool = False,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """float32 ``(n, T)``: the predicted log total counts of the windows themselves."""
    model = model.to(device).eval()
    x = codes_to_one_hot(torch.as_tensor(codes, device=device))
    ctl = None if control is None or not model.config.use_control else torch.as_tensor(
        control, dtype=torch.float32, device=device)
    with torch.no_grad():
        out = model_outputs(model, x, ctl, rc_average)
    return log_total_counts(out["count_logits"], model.config.num_tasks, model.config.num_strands).cpu().numpy()


# --------------------------------------------------------------------------------------------
# Windows, outputs
# --------------------------------------------------------------------------------------------


def top_windows(split: np.ndarray, reads: np.ndarray, n_windows: int, which: str = "test") -> np.ndarray:
    """Rows of the ``n_windows`` windows of split ``which`` with the most ``reads`` (descending;
    ties: the lower row first)."""
    idx = np.flatnonzero(np.asarray(split).astype(str) == which)
    if len(idx) == 0:
        raise BPNetInputError(f"ism: the dataset has no {which} windows to mutate; give ism.regions instead")
    order = np.lexsort((idx, -np.asarray(reads, dtype=np.float64)[idx]))
    return idx[order[:n_windows]].astype(np.int64)


def region_windows(regions: BedRegions, chrom_sizes: Mapping[str, int], width: int, path: str) -> BedRegions:
    """One window of ``width`` bp centred on each region, moved inside its chromosome."""
    sizes = np.array([chrom_sizes[c] for c in regions.chrom], dtype=np.int64)
    short = np.flatnonzero(sizes < width)
    if len(short):
        c = regions.chrom[short[0]]
        raise BPNetInputError(f"config key ism.regions: {path}: chromosome {c} ({chrom_sizes[c]} bp) is shorter "
                              f"than the model's window ({width} bp)")
    centre = (regions.start + regions.end) // 2
    start = np.clip(centre - width // 2, 0, sizes - width)
    return BedRegions(regions.name, regions.chrom, start.astype(np.int64), (start + width).astype(np.int64))


def max_abs_effect(effects: np.ndarray) -> np.ndarray:
    """``(n, L, K)``: per base the largest ``|effect|`` over the four bases (0 at the reference)."""
    return np.abs(effects).max(axis=2)


def load_ism(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ism.npz (module docstring); a missing file or array is a clear error."""
    keys = ("effects", "reference", "outputs", "output_task", "output_kind", "index", "name", "chrom", "start",
            "sequence", "tasks", "rc_average")
    return read_npz(path, keys, "ISM", "ism")


def write_max_effect_track(npz_path: str | Path, chrom_sizes_path: str | Path, task: str, out_path: str | Path,
                           log: logging.Logger | None = None) -> int:
    """Rule ``ism_track``: ``{task}.max_effect.bw``, per base the largest |effect| on the task's log
    counts (:func:`max_abs_effect`) at the windows' genome coordinates; returns the bases written."""
    d = load_ism(npz_path)
    column = np.flatnonzero((d["output_task"].astype(str) == task) & (d["output_kind"].astype(str) == "log_counts"))
    if len(column) != 1:
        raise BPNetInputError(f"{npz_path} has no ISM effects on the log counts of task {task!r} "
                              f"(its tasks: {[str(t) for t in d['tasks']]})")
    values = max_abs_effect(np.asarray(d["effects"])[..., column])  # (n, W, 1)
    with TrackWriter([out_path], read_chrom_sizes(chrom_sizes_path)) as writer:
        written = export_test_windows(writer, d["chrom"].astype(str), d["start"].astype(np.int64), values)
    if log is not None:
        log.info("wrote %s: max |ISM effect| on %s log counts at %d bases of %d windows", out_path, task, written,
                 len(values))
    return written


def contribution_correlation(effects: np.ndarray, index: np.ndarray, outputs: Sequence[tuple[str, str]],
                             contrib_index: np.ndarray, contrib: Mapping[str, np.ndarray]) -> dict[str, tuple[float, int]]:
    """Per task, the Pearson correlation between the per-base max ``|ISM effect|`` on log counts
    and the absolute contribution score (``contrib[task]``: ``(M, W)``, counts head) at the same
    bases of the windows both have (dataset rows); ``{task: (r, windows)}``."""
    shared = np.intersect1d(index[index >= 0], contrib_index)
    out = {}
    if len(shared) == 0:
        return out
    mine = np.array([np.flatnonzero(index == s)[0] for s in shared])
    theirs = np.array([np.flatnonzero(contrib_index == s)[0] for s in shared])
    maxabs = max_abs_effect(effects)
    for task, values in contrib.items():
        a = maxabs[mine, :, list(outputs).index((task, "log_counts"))].ravel()
        b = np.abs(values[theirs]).ravel()
        r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
        out[task] = (r, len(shared))
    return out


# --------------------------------------------------------------------------------------------
# Rule ism
# --------------------------------------------------------------------------------------------


def run_ism(
    dataset_path: str | Path,
    model_path: str | Path,
    npz_path: str | Path,
    windows_path: str | Path,
    tasks: Sequence[str],
    settings: Mapping[str, Any],
    rc_average: bool = False,
    genome: str | Path | None = None,
    control: Sequence[str | Path] = (),
    contrib_path: str | Path | None = None,
    device: str = "auto",
    kernels: str = "auto",
    threads: int = 1,
    log: logging.Logger = logging.getLogger(__name__),
) -> np.ndarray:
    """Rule ``ism``: mutate every base of the chosen windows; write ism.npz and windows.tsv.

    Args:
        dataset_path, model_path: dataset.npz and the model.
        npz_path, windows_path: ism.npz and windows.tsv (module docstring).
        tasks: data.tasks (the dataset and the model must have them).
        settings: the config's ``ism`` section (n_windows, regions, profile, batch_size).
        rc_average: predict.reverse_complement_average.
        genome, control: the genome FASTA and the control bigWigs ([] unless the model uses them);
            read only for ``ism.regions``.
        contrib_path: contrib.npz of rule contrib_scores; when it exists, the correlation of the
            ISM effects with the contribution scores (counts head) is logged (nothing is written).
        device, kernels, threads: as for prediction.

    Returns the effects ``(n, W, 4, K)``.
    """
    tasks = list(tasks)
    model, ds = load_model_and_dataset(model_path, dataset_path, tasks)
    dev = setup_inference(model, device, kernels, threads, log)
    width = ds.width
    if settings.get("regions"):
        if genome is None:
            raise ValueError("run_ism: ism.regions needs the genome FASTA")
        fa = open_fasta(genome)
        lengths = {c: len(fa[c]) for c in fa.keys()}
        regions = region_windows(read_bed_regions(settings["regions"], lengths, genome), lengths, width,
                                 settings["regions"])
        codes, ctl = genome_reader(fa, regions, lengths, width, list(control) if model.config.use_control else [])(
            np.arange(len(regions.name)), np.zeros(len(regions.name), dtype=np.int64))
        index = np.full(len(codes), -1, dtype=np.int64)
        names, chrom, start = regions.name, regions.chrom, regions.start
        split = np.array([""] * len(codes))
        reads = np.full(len(codes), np.nan)
    else:
        test = np.flatnonzero(ds.split.astype(str) == "test")
        core_reads = np.zeros(len(ds), dtype=np.float64)
        for lo, part in row_chunks(ds.counts, test):  # a chunk at a time: the counts may be GBs
            core_reads[test[lo:lo + len(part)]] = part[:, ds.core].sum(axis=(1, 2), dtype=np.float64)
        index = top_windows(ds.split, core_reads, int(settings["n_windows"]))
        codes = np.asarray(ds.sequence[index, ds.core])
        ctl = None
        if model.config.use_control:
            if ds.control is None:
                raise BPNetInputError(f"the model uses a control track but {dataset_path} has none")
            ctl = np.asarray(ds.control[index, ds.core])
        chrom, start = ds.chrom[index].astype(str), ds.start[index].astype(np.int64)
        names = np.array([f"{c}:{s}-{s + width}" for c, s in zip(chrom, start)])
        split, reads = ds.split[index].astype(str), core_reads[index]
    profile = bool(settings["profile"])
    outputs = output_names(tasks, profile)
    batch = settings["batch_size"] or inference_batch_size(dev)
    log.info("ISM of %d windows of %d bp (%s), %d mutants each, %d outputs (%s), batches of %d%s",
             len(codes), width, "ism.regions" if settings.get("regions") else "top test windows by reads",
             3 * width, len(outputs), ", ".join(sorted({k for _, k in outputs}, key=KINDS.index)), batch,
             ", averaged with the reverse complement" if rc_average else "")
    torch.manual_seed(0)
    effects = bpnet_ism(model, codes, ctl, rc_average, profile, batch, dev, log)
    ref = reference_scores(model, codes, ctl, rc_average, dev)
    reference = np.zeros((len(codes), len(outputs)), dtype=np.float32)
    reference[:, :len(tasks)] = ref
    write_npz(npz_path, dict(
        effects=effects, reference=reference, outputs=np.array([f"{t}:{k}" for t, k in outputs]),
        output_task=np.array([t for t, _ in outputs]), output_kind=np.array([k for _, k in outputs]),
        index=index, name=np.asarray(names).astype(str), chrom=np.asarray(chrom).astype(str),
        start=np.asarray(start, dtype=np.int64), sequence=np.asarray(codes, dtype=np.uint8),
        tasks=np.array(tasks), rc_average=np.bool_(rc_average),
    ))
    maxabs = max_abs_effect(effects)
    table = pd.DataFrame({"name": names, "chrom": chrom, "start": start, "end": np.asarray(start) + width,
                          "dataset_row": index, "split": split, "observed_reads": reads})
    for i, task in enumerate(tasks):
        table[f"{task}_log_counts"] = np.round(ref[:, i], 5)
        table[f"{task}_max_abs_effect"] = np.round(maxabs[:, :, i].max(axis=1), 5)
    table.to_csv(windows_path, sep="\t", index=False)
    log.info("wrote %s and %s", npz_path, windows_path)
    if contrib_path is not None and Path(contrib_path).exists():
        _log_contribution_correlation(contrib_path, effects, index, outputs, tasks, log)
    return effects


def _log_contribution_correlation(contrib_path, effects, index, outputs, tasks, log) -> None:
    """Log per task the correlation of max |ISM| with |contribution| (counts head), when comparable.

    contrib.npz is no input of the rule (ISM does not wait for DeepSHAP): it may be missing or
    still being written by rule contrib_scores; then only a line says so."""
    try:
        with np.load(contrib_path) as npz:
            heads, c_tasks = [str(h) for h in npz["heads"]], [str(t) for t in npz["tasks"]]
            if "counts" not in heads or c_tasks != list(tasks) or npz["hypothetical"].shape[3] != effects.shape[1]:
                log.info("ISM vs contribution scores: %s has no comparable counts-head scores", contrib_path)
                return
            c_index, seq = npz["index"], npz["sequence"]
            hyp = npz["hypothetical"][:, heads.index("counts")].astype(np.float32)  # (T, M, W, 4)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        log.info("ISM vs contribution scores: %s not readable now (%s); no comparison", contrib_path, err)
        return
    onehot = np.eye(5, dtype=np.float32)[seq][..., :4]
    contrib = {t: (hyp[i] * onehot).sum(axis=-1) for i, t in enumerate(tasks)}
    result = contribution_correlation(effects, index, outputs, c_index, contrib)
    if not result:
        log.info("ISM vs contribution scores: no ISM window is among the %d explained windows of %s",
                 len(c_index), contrib_path)
    for task, (r, n) in result.items():
        log.info("ISM vs contribution scores (counts head), %s: Pearson r = %.3f between per-base max |ISM "
                 "effect| and |contribution| over %d shared windows", task, r, n)
