"""Dataset building: windows -> sequence codes and per-strand counts in one compact .npz.

For every window of windows.tsv, :func:`build_dataset` reads the DNA (FASTA, via
:func:`bpnet.io.sequence.read_fasta_windows`) and the 5'-end counts of every task and strand (bigWigs,
via :func:`bpnet.io.tracks.read_windows`, which reads each chromosome in large blocks), plus the
control track when the model uses one. Training then reads only the .npz, never the bigWigs.

Stored span: each window is stored with ``extra_context`` (C) bp beyond each side, i.e.
``[start - C, end + C)`` with ``start`` the core window start, so that shift augmentation can cut
a shifted core window out of it. Where that span runs past a chromosome end (the core window never
does: windowing drops such windows), the missing bases are stored as N (code 4) and the missing
counts as 0 — the same as "no data" in a bigWig — instead of dropping the window, so windowing
stays independent of the dataset section.

On-disk layout (see the team contract): ``sequence`` uint8 (N, W + 2C); ``counts`` the smallest of
uint8/uint16/int32 that holds the largest count, (N, W + 2C, 2T), channels task-major (task1 +,
task1 -, task2 +, ...); ``control`` float32 (N, W + 2C, 2) when used; ``chrom``, ``start`` (int64),
``split``, ``window_tasks`` (N,); ``tasks`` (T,); ``width``, ``extra_context`` () int.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from bpnet.data.windows import load_windows
from bpnet.errors import BPNetInputError
from bpnet.io.chroms import read_chrom_aliases
from bpnet.io.npz import read_npz, write_npz
from bpnet.io.sequence import N_CODE, open_fasta, read_fasta_windows
from bpnet.io.tracks import bigwig_nonfinite, open_bigwig, read_windows
from bpnet.progress import progress_bar

REQUIRED_KEYS = ("sequence", "counts", "chrom", "start", "split", "window_tasks", "tasks", "width",
                 "extra_context")
_COUNT_DTYPES = (np.uint8, np.uint16, np.int32)
# Fixed zip member timestamp so that the same inputs give byte-identical dataset files.


@dataclass
class Dataset:
    """The arrays of dataset.npz (N windows, T tasks, stored length L = width + 2 * extra_context).

    Attributes:
        sequence: uint8 ``(N, L)`` codes A=0 C=1 G=2 T=3 N=4.
        counts: unsigned/int ``(N, L, 2T)`` 5'-end counts, channels task1 +, task1 -, task2 +, ...
        control: float32 ``(N, L, 2)`` control track (+, -), or None when not stored.
        chrom: ``(N,)`` str; start: int64 ``(N,)`` core window start (context excluded).
        split: ``(N,)`` str train/valid/test; window_tasks: ``(N,)`` comma-joined task names.
        tasks: ``(T,)`` str task names in channel order.
        width: core window width W; extra_context: C bp stored beyond each side.
    """

    sequence: np.ndarray
    counts: np.ndarray
    control: np.ndarray | None
    chrom: np.ndarray
    start: np.ndarray
    split: np.ndarray
    window_tasks: np.ndarray
    tasks: np.ndarray
    width: int
    extra_context: int

    def __len__(self) -> int:
        return len(self.start)

    @property
    def n_tasks(self) -> int:
        """T, the number of tasks (counts has S T channels)."""
        return len(self.tasks)

    @property
    def strands(self) -> int:
        """S, channels per task: 2 (+, -) for stranded 5'-end counts, 1 for an unstranded track."""
        return strands_per_task(self.counts.shape[-1], self.n_tasks)

    @property
    def length(self) -> int:
        """Stored length per window, ``width + 2 * extra_context``."""
        return self.width + 2 * self.extra_context

    @property
    def core(self) -> slice:
        """Positions of the core window within the stored span: ``arr[:, ds.core]`` is (N, W)."""
        return slice(self.extra_context, self.extra_context + self.width)

    def split_mask(self, split: str) -> np.ndarray:
        """bool ``(N,)``: windows of ``split`` (train, valid or test)."""
        if split not in ("train", "valid", "test"):
            raise BPNetInputError(f"split must be train, valid or test, got {split!r}")
        return self.split == split

    def split_indices(self, split: str) -> np.ndarray:
        """int64 ``(n,)`` row indices of the windows of ``split``, ascending."""
        return np.flatnonzero(self.split_mask(split)).astype(np.int64)

    def task_channels(self, task: str) -> slice:
        """The count channels of ``task`` (+, - or its one unstranded channel):
        ``counts[..., ds.task_channels("Oct4")]``."""
        names = list(self.tasks)
        if task not in names:
            raise BPNetInputError(f"task {task!r} is not in the dataset (its tasks: {names})")
        k, s = names.index(task), self.strands
        return slice(s * k, s * k + s)


def strands_per_task(n_channels: int, n_tasks: int, where: str = "the counts") -> int:
    """S from ``S * T`` channels: 2 (stranded: task1 +, task1 -, task2 +, ...) or 1 (unstranded:
    one channel per task). Anything else is an error naming ``where``."""
    for s in (2, 1):
        if n_channels == s * n_tasks:
            return s
    raise BPNetInputError(f"{where}: {n_channels} channels for {n_tasks} tasks; expected 2 per task "
                          f"(+, -) or 1 (unstranded)")


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


def count_dtype(max_count: float, where: str = "counts") -> np.dtype:
    """The smallest of uint8/uint16/int32 that holds ``max_count``."""
    for dt in _COUNT_DTYPES:
        if max_count <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise BPNetInputError(f"{where}: count {max_count:.0f} does not fit in int32")


def read_padded(
    read: Callable[[np.ndarray, np.ndarray, int], np.ndarray],
    chroms: np.ndarray,
    starts: np.ndarray,
    length: int,
    chrom_len: np.ndarray,
    fill,
) -> np.ndarray:
    """``read(chroms, starts, length)`` for spans that may run past a chromosome end.

    ``read`` accepts only spans inside the chromosome. Spans are moved inside (clipped start), read,
    and shifted back, with ``fill`` where the span is outside the chromosome. Only the few windows
    touching an end are shifted. A chromosome shorter than ``length`` is read whole.

    Returns ``(n, length, ...)`` with the trailing shape and dtype of ``read``'s output.
    """
    fits = chrom_len >= length
    clipped = np.where(fits, np.clip(starts, 0, np.maximum(chrom_len - length, 0)), 0)
    out = None
    fit_idx = np.flatnonzero(fits)
    if fit_idx.size:
        raw = read(chroms[fit_idx], clipped[fit_idx], length)
        if fit_idx.size == len(starts):
            out = raw  # the usual case: no copy
        else:
            out = np.empty((len(starts),) + raw.shape[1:], dtype=raw.dtype)
            out[fit_idx] = raw
        moved = fit_idx[clipped[fit_idx] != starts[fit_idx]]
        if moved.size:
            out[moved] = _shift(raw[np.searchsorted(fit_idx, moved)], starts[moved] - clipped[moved],
                                starts[moved], chrom_len[moved], fill)
    for chrom in np.unique(chroms[~fits]):
        idx = np.flatnonzero(chroms == chrom)
        size = int(chrom_len[idx[0]])
        whole = read(np.array([chrom]), np.zeros(1, dtype=np.int64), size)
        if out is None:
            out = np.empty((len(starts), length) + whole.shape[2:], dtype=whole.dtype)
        # Treat the whole chromosome as a span "read" at 0 and shift it like a clipped one.
        padded = np.concatenate([whole, np.zeros((1, length - size) + whole.shape[2:], whole.dtype)], axis=1)
        out[idx] = _shift(np.repeat(padded, len(idx), axis=0), starts[idx], starts[idx], chrom_len[idx], fill)
    return out


def _read_by_chrom(
    read: Callable[[np.ndarray, np.ndarray, int], np.ndarray],
    groups: Sequence[np.ndarray],
    chroms: np.ndarray,
    starts: np.ndarray,
    length: int,
    chrom_len: np.ndarray,
    fill,
    progress,
) -> np.ndarray:
    """:func:`read_padded` one chromosome at a time (the same values), for progress lines.

    ``groups`` holds the window indices of each chromosome; ``progress.update(n)`` follows each.
    """
    if len(groups) == 1:  # one chromosome: no copy
        out = read_padded(read, chroms, starts, length, chrom_len, fill)
        progress.update(len(starts))
        return out
    out = None
    for idx in groups:
        part = read_padded(read, chroms[idx], starts[idx], length, chrom_len[idx], fill)
        if out is None:
            out = np.empty((len(starts),) + part.shape[1:], dtype=part.dtype)
        out[idx] = part
        progress.update(len(idx))
    return out


def _shift(raw: np.ndarray, shift: np.ndarray, starts: np.ndarray, chrom_len: np.ndarray, fill) -> np.ndarray:
    """Rows of ``raw`` (n, L, ...) moved by ``shift`` (n,); positions outside the chromosome = fill."""
    length = raw.shape[1]
    j = np.arange(length)[None, :]
    src = np.clip(j + shift[:, None], 0, length - 1)
    pos = starts[:, None] + j
    out = np.take_along_axis(raw, src.reshape(src.shape + (1,) * (raw.ndim - 2)), axis=1)
    out[(pos < 0) | (pos >= chrom_len[:, None])] = fill
    return out


def _fasta_lengths(fa, chroms: Sequence[str], windows_source: str) -> dict[str, int]:
    """Length of every chromosome in ``chroms``; one missing from the FASTA is an error."""
    lengths = {}
    for chrom in chroms:
        if chrom not in fa:
            raise BPNetInputError(
                f"chromosome {chrom!r} has windows in {windows_source} but is not in the FASTA "
                f"{fa.filename} (its chromosomes: {', '.join(list(fa.keys())[:5])}...); the peaks, "
                "chrom sizes, FASTA and bigWigs must use the same genome and chromosome names"
            )
        lengths[chrom] = len(fa[chrom])
    return lengths


def check_bigwig_chroms(paths: Sequence[str | Path], lengths: dict[str, int], fasta: str,
                        aliases: Mapping[str, str] | None = None) -> None:
    """Every bigWig must hold every used chromosome with the FASTA's length (names read through
    ``aliases``); errors name both."""
    for path in paths:
        bw = open_bigwig(path, aliases)
        try:
            sizes = bw.chroms()
        finally:
            bw.close()
        for chrom, n in lengths.items():
            if chrom not in sizes:
                raise BPNetInputError(
                    f"chromosome {chrom!r} is in the FASTA {fasta} (and has windows) but not in the "
                    f"bigWig {path} (its chromosomes: {', '.join(list(sizes)[:5])}...); both must "
                    "use the same genome and chromosome names (or map them: data.chrom_aliases)"
                )
            if sizes[chrom] != n:
                raise BPNetInputError(
                    f"chromosome {chrom!r} is {n} bp in the FASTA {fasta} but {sizes[chrom]} bp in "
                    f"the bigWig {path}; both must come from the same genome build"
                )


def check_bigwig_finite(paths: Sequence[str | Path], nan_as_zero: bool = False,
                        log: logging.Logger | None = None) -> None:
    """Stored NaN or inf values in the count (or control) bigWigs are an error naming the file.

    With ``nan_as_zero`` stored NaNs are read as 0 (like positions with no data) and a warning
    names the file; an inf is always an error.
    """
    log = log or logging.getLogger("bpnet")
    for path in paths:
        open_bigwig(path).close()  # missing / truncated files: the usual clear errors first
        bad = bigwig_nonfinite(path)
        if bad == "inf":
            raise BPNetInputError(
                f"bigWig {path} stores infinite values; count tracks must hold non-negative "
                "integer read counts"
            )
        if bad == "nan":
            if not nan_as_zero:
                raise BPNetInputError(
                    f"bigWig {path} stores NaN values; fix the file (positions without reads "
                    "should hold no data or 0), or set data.nan_as_zero: true to take them as 0 reads"
                )
            log.warning("bigWig %s stores NaN values; they are taken as 0 reads "
                        "(data.nan_as_zero: true)", path)


def _to_counts(vals: np.ndarray, path: str, chroms: np.ndarray, starts: np.ndarray,
               negated: bool = False) -> np.ndarray:
    """float ``(n, L)`` values -> the smallest fitting integer type; they must be counts.

    Non-negative integers only (5'-end read counts): anything else is an error naming the file
    and the first offending position. ``negated``: the values were read from a - strand file
    that stores reads as negative numbers (messages show the stored value).
    """
    top = float(vals.max()) if vals.size else 0.0
    low = float(vals.min()) if vals.size else 0.0
    ints = vals.astype(count_dtype(top, path)) if low >= 0 else None
    # A cast that changes a value means a fraction (or a negative number).
    if ints is None or not np.array_equal(ints, vals):
        bad = (vals < 0) | (vals != np.floor(vals))
        i, j = np.unravel_index(np.argmax(bad), bad.shape)[:2]
        value = vals[i, j].item()
        if negated:
            raise BPNetInputError(
                f"bigWig {path} holds {-value:g} at {chroms[i]}:{starts[i] + j}; with "
                "data.minus_strand_negative: true every - strand value must be 0 or a negative "
                "integer read count"
            )
        hint = ("; if the - strand stores its reads as negative numbers (a ChIP-nexus "
                "convention), set data.minus_strand_negative: true") if value < 0 else ""
        raise BPNetInputError(
            f"bigWig {path} holds {value:g} at {chroms[i]}:{starts[i] + j}; count "
            "tracks must hold non-negative integer 5'-end read counts (not normalised or "
            f"fold-change signal){hint}"
        )
    return ints


def build_dataset(
    windows: pd.DataFrame,
    fasta: str | Path,
    count_bigwigs: Sequence[str | Path],
    tasks: Sequence[str],
    control_bigwigs: Sequence[str | Path] | None = None,
    extra_context: int = 0,
    log: logging.Logger | None = None,
    windows_source: str = "the windows table",
    nan_as_zero: bool = False,
    minus_strand_negative: bool = False,
    strands: int = 2,
    chrom_aliases: Mapping[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """Read sequence, counts and control for every window into arrays (the dataset.npz keys).

    Args:
        windows: windows.tsv rows (chrom, start, end, split, tasks; all of one width W).
        fasta: indexed FASTA of the genome.
        count_bigwigs: ``S T`` count bigWigs in channel order: task1 +, task1 -, task2 +, ...
            (stranded, S = 2) or task1, task2, ... (unstranded, S = 1).
        tasks: ``T`` task names in channel order.
        control_bigwigs: ``[+, -]`` control bigWigs (``[track]`` when unstranded), or None/empty
            for no control.
        extra_context: C, bp stored beyond each side of the core window (N / 0 past chromosome
            ends).
        log: logger for progress (windows read per source, windows/s, ETA).
        windows_source: how to name the windows in error messages (e.g. the windows.tsv path).
        nan_as_zero: take NaN values stored in the bigWigs as 0 (with a warning) instead of an
            error (``data.nan_as_zero``).
        minus_strand_negative: the - strand bigWigs (odd channels) store reads as negative
            numbers; they are negated, and a positive value in them is an error
            (``data.minus_strand_negative``).
        strands: S, 2 or 1 (unstranded tasks, one track each).
        chrom_aliases: ``{name in a bigWig: genome name}`` (``data.chrom_aliases``), or None.

    Returns:
        ``{"sequence": uint8 (N, W+2C), "counts": (N, W+2C, S T) smallest fitting int type,
        "control": float32 (N, W+2C, S) (only with control), "chrom", "start" int64,
        "split", "window_tasks" (N,), "tasks" (T,), "width" (), "extra_context" ()}``.
    """
    log = log or logging.getLogger("bpnet")
    tasks = [str(t) for t in tasks]
    count_bigwigs = [str(p) for p in count_bigwigs]
    control_bigwigs = [str(p) for p in (control_bigwigs or [])]
    if strands not in (1, 2):
        raise BPNetInputError(f"strands must be 1 or 2, got {strands}")
    if len(count_bigwigs) != strands * len(tasks):
        what = "2 count bigWigs (+, -)" if strands == 2 else "1 unstranded count bigWig"
        raise BPNetInputError(f"expected {what} per task for tasks {tasks}, got {len(count_bigwigs)}")
    if control_bigwigs and len(control_bigwigs) != strands:
        raise BPNetInputError(f"expected {strands} control bigWig(s), as the tasks have, got {len(control_bigwigs)}")
    if minus_strand_negative and strands == 1:
        raise BPNetInputError("data.minus_strand_negative is for stranded tasks (pos, neg); these tasks are unstranded")
    if extra_context < 0:
        raise BPNetInputError(f"dataset.extra_context must be >= 0, got {extra_context}")
    if len(windows) == 0:
        raise BPNetInputError(f"{windows_source} has no windows")
    widths = np.unique(windows["end"].to_numpy() - windows["start"].to_numpy())
    if len(widths) != 1 or widths[0] < 1:
        raise BPNetInputError(f"{windows_source}: all windows must have one positive width, got {widths[:5].tolist()}")
    width = int(widths[0])
    length = width + 2 * extra_context

    chroms = windows["chrom"].to_numpy().astype(str)
    core_starts = windows["start"].to_numpy().astype(np.int64)
    starts = core_starts - extra_context
    used = [str(c) for c in pd.unique(chroms)]
    fa = open_fasta(fasta)
    lengths = _fasta_lengths(fa, used, windows_source)
    check_bigwig_finite(count_bigwigs + control_bigwigs, nan_as_zero, log)
    check_bigwig_chroms(count_bigwigs + control_bigwigs, lengths, str(fasta), chrom_aliases)
    chrom_len = np.array([lengths[c] for c in chroms], dtype=np.int64)
    outside = np.flatnonzero((core_starts < 0) | (core_starts + width > chrom_len))
    if outside.size:
        i = outside[0]
        raise BPNetInputError(
            f"{windows_source}: window {chroms[i]}:{core_starts[i]}-{core_starts[i] + width} leaves "
            f"the chromosome ({chrom_len[i]} bp in the FASTA {fasta}); windows and genome disagree"
        )
    n_padded = int(((starts < 0) | (starts + length > chrom_len)).sum())
    log.info("building %d windows of %d bp (+%d bp context each side, %d padded at chromosome "
             "ends) for tasks %s", len(chroms), width, extra_context, n_padded, ", ".join(tasks))

    # Progress: every source (FASTA, each count bigWig, the control) is read chromosome by
    # chromosome; one unit is one window read from one source.
    groups = [np.flatnonzero(chroms == c) for c in used]
    n_sources = 1 + len(count_bigwigs) + bool(control_bigwigs)
    with progress_bar(log, n_sources * len(chroms), "build dataset", unit="window") as bar:
        try:
            sequence = _read_by_chrom(lambda c, s, n: read_fasta_windows(fa, c, s, n),
                                      groups, chroms, starts, length, chrom_len, N_CODE, bar)
        finally:
            fa.close()
        log.info("read sequence from %s", fasta)

        # One track at a time into the counts array, in the smallest integer type that holds the
        # tracks read so far (widened, once, by a track that needs more): at the paper's size the
        # counts are 2.7 GB, and all eight tracks read before filling them held twice that.
        counts = None
        for k, path in enumerate(count_bigwigs):
            vals = _read_by_chrom(lambda c, s, n, p=path: read_windows([p], c, s, n, dtype=np.float32,
                                                                                aliases=chrom_aliases)[..., 0],
                                  groups, chroms, starts, length, chrom_len, 0, bar)
            negated = minus_strand_negative and k % strands == 1
            if negated:
                np.negative(vals, out=vals)
            track = _to_counts(vals, path, chroms, starts, negated)
            del vals
            if counts is None:
                counts = np.zeros((len(chroms), length, len(count_bigwigs)), dtype=track.dtype)
            elif track.dtype.itemsize > counts.dtype.itemsize:
                counts = counts.astype(track.dtype)
            counts[..., k] = track
            log.info("read counts from %s (max %d)", path, track.max())

        arrays: dict[str, np.ndarray] = {"sequence": sequence, "counts": counts}
        if control_bigwigs:
            arrays["control"] = _read_by_chrom(
                lambda c, s, n: read_windows(control_bigwigs, c, s, n, dtype=np.float32, aliases=chrom_aliases),
                groups, chroms, starts, length, chrom_len, 0, bar,
            )
            log.info("read control from %s", ", ".join(control_bigwigs))
    arrays.update(
        chrom=chroms.astype(str),
        start=core_starts,
        split=windows["split"].to_numpy().astype(str),
        window_tasks=windows["tasks"].to_numpy().astype(str),
        tasks=np.array(tasks, dtype=str),
        width=np.array(width, dtype=np.int64),
        extra_context=np.array(extra_context, dtype=np.int64),
    )
    return arrays


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def write_dataset(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays as an uncompressed .npz, byte-for-byte reproducible (:func:`bpnet.io.npz.write_npz`)."""
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"dataset arrays lack {missing}")
    write_npz(path, arrays)


# The large arrays of a dataset, memory-mapped on load: a step reads only the rows it indexes.
MAPPED_KEYS = ("sequence", "counts", "control")


def load_dataset(path: str | Path, mmap: bool = True) -> Dataset:
    """Load dataset.npz into a :class:`Dataset`; a missing file or key is a clear error.

    With ``mmap`` (the default) ``sequence``, ``counts`` and ``control`` are read-only memory
    maps: indexing rows reads just those rows, so a step that uses one split never holds the
    others (the paper's ~150k windows are ~2.5 GB of counts).
    """
    path = Path(path)
    data = read_npz(path, what="dataset", producer="build_dataset", mmap=MAPPED_KEYS if mmap else ())
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise BPNetInputError(f"dataset {path} lacks the array(s) {missing}; rebuild it with rule build_dataset")
    ds = Dataset(
        sequence=data["sequence"],
        counts=data["counts"],
        control=data.get("control"),
        chrom=data["chrom"],
        start=data["start"],
        split=data["split"],
        window_tasks=data["window_tasks"],
        tasks=data["tasks"],
        width=int(data["width"]),
        extra_context=int(data["extra_context"]),
    )
    n, length = len(ds.start), ds.length
    strands = strands_per_task(ds.counts.shape[-1], ds.n_tasks, f"dataset {path}: counts")
    shapes = {"sequence": (n, length), "counts": (n, length, strands * ds.n_tasks)}
    if ds.control is not None:
        shapes["control"] = (n, length, strands)
    for key, shape in shapes.items():
        if getattr(ds, key).shape != shape:
            raise BPNetInputError(f"dataset {path}: {key} has shape {getattr(ds, key).shape}, expected {shape}")
    return ds


def outlier_windows(
    counts: np.ndarray, window_tasks: np.ndarray, tasks: Sequence[str], extra_context: int, width: int,
    quantile: float,
) -> tuple[np.ndarray, dict[str, int]]:
    """Peak windows whose reads exceed the ``quantile`` of their task's peak windows (#18).

    Args:
        counts: ``(N, W + 2C, S T)`` counts; the core window ``[C, C + W)`` is summed over the
            strands of each task.
        window_tasks: ``(N,)`` comma-joined tasks of each window (empty: background, never an
            outlier).
        quantile: e.g. 0.9999 (ChromBPNet's threshold) or 0.99.

    Returns:
        ``(outlier (N,) bool, {task: windows dropped for it})``: a window is an outlier when its
        total for any task it is a peak of exceeds that task's quantile; the artefacts the filter
        is for (repeats, unannotated blacklist regions) are high in every task at once.
    """
    core = slice(extra_context, extra_context + width)
    outlier = np.zeros(len(window_tasks), dtype=bool)
    dropped = {}
    member = [set(str(w).split(",")) - {""} for w in window_tasks]
    s = strands_per_task(counts.shape[-1], len(tasks))
    for t, task in enumerate(tasks):
        rows = np.array([i for i, m in enumerate(member) if task in m], dtype=np.int64)
        if not len(rows):
            dropped[task] = 0
            continue
        totals = np.asarray(counts[rows, core, s * t:s * t + s]).sum(axis=(1, 2), dtype=np.float64)
        high = rows[totals > np.quantile(totals, quantile)]
        dropped[task] = int(len(high))
        outlier[high] = True
    return outlier, dropped


def write_dataset_file(
    windows_path: str,
    fasta: str,
    count_bigwigs: Sequence[str],
    tasks: Sequence[str],
    out_path: str,
    control_bigwigs: Sequence[str] | None = None,
    extra_context: int = 0,
    nan_as_zero: bool = False,
    outlier_quantile: float | None = None,
    log: logging.Logger = logging.getLogger(__name__),
    minus_strand_negative: bool = False,
    strands: int = 2,
    chrom_aliases: str | None = None,
) -> dict[str, np.ndarray]:
    """Rule build_dataset: windows.tsv + FASTA + count (and control) bigWigs -> dataset.npz.

    Args:
        windows_path: windows.tsv of rule peak_windows.
        fasta: the genome.
        count_bigwigs: the count bigWigs in channel order: task1 +, task1 -, task2 +, ... or,
            with ``strands`` 1, one unstranded bigWig per task.
        tasks: task names.
        out_path: the dataset file (:func:`write_dataset`).
        control_bigwigs: ``[pos, neg]`` of the control track (``[track]`` unstranded), or None.
        extra_context: bases read on each side of every window (for shift augmentation).
        nan_as_zero: read NaN/inf in the count bigWigs as zero instead of refusing them.
        outlier_quantile: drop peak windows above this quantile of their task's reads
            (:func:`outlier_windows`); None keeps all.
        minus_strand_negative: the - strand bigWigs store reads as negative numbers.
        strands: 2 (stranded tasks) or 1 (unstranded).
        chrom_aliases: the alias table (``data.chrom_aliases``) the bigWigs' names are read with.

    Returns the arrays written.
    """
    windows = load_windows(windows_path)
    aliases = read_chrom_aliases(chrom_aliases) if chrom_aliases else None
    arrays = build_dataset(
        windows,
        fasta,
        list(count_bigwigs),
        list(tasks),
        control_bigwigs=list(control_bigwigs or []) or None,
        extra_context=int(extra_context),
        log=log,
        windows_source=str(windows_path),
        nan_as_zero=bool(nan_as_zero),
        minus_strand_negative=bool(minus_strand_negative),
        strands=int(strands),
        chrom_aliases=aliases,
    )
    if outlier_quantile is not None:
        outlier, dropped = outlier_windows(arrays["counts"], arrays["window_tasks"], list(tasks),
                                           int(extra_context), int(arrays["width"]), float(outlier_quantile))
        log.info("dataset.outlier_quantile %s: dropped %d of %d windows (%s)", outlier_quantile,
                 int(outlier.sum()), len(outlier), ", ".join(f"{k} {v}" for k, v in dropped.items()))
        per_window = ("sequence", "counts", "control", "chrom", "start", "split", "window_tasks")
        arrays = {k: (v[~outlier] if k in per_window else v) for k, v in arrays.items()}
    write_dataset(out_path, arrays)
    names, n = np.unique(arrays["split"], return_counts=True)
    log.info("wrote %s: %d windows, counts %s, windows per split: %s", out_path,
             len(arrays["start"]), arrays["counts"].dtype,
             ", ".join(f"{k} {v}" for k, v in zip(names.tolist(), n.tolist())))
    return arrays
