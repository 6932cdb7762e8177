"""Peak windowing: peak summits of every task -> fixed-width windows with a train/valid/test split.

Pipeline of :func:`make_windows` (each peak of each task ends in exactly one *reason*, counted in
the summary, checked in this order):

1. ``unknown_chrom``: the chromosome is not in the chrom sizes file (dropped; a WARNING per task
   names the file, the count and the contigs; more than half of a task's peaks -> error).
2. ``excluded_chrom``: the chromosome is in ``windows.exclude_chroms`` (dropped).
3. ``duplicate``: the same task lists the same summit again (collapsed to one window).
4. ``off_chromosome_end``: the window ``[summit - width // 2, summit - width // 2 + width)``
   leaves the chromosome (start < 0 or end > size; dropped).
5. ``blacklist``: the window overlaps the blacklist BED by at least 1 bp (dropped; pybedtools).
6. ``merged``: with ``merge_within > 0``, the window joined the window of another task whose
   summit lies at most ``merge_within`` bp to its left (see :func:`_merge_units`); the pooled
   window carries this task's name but keeps the other summit.
7. ``kept``: the peak's own summit is the summit of a window in windows.tsv.

Windows of different tasks with identical summits are always pooled into one window tagged with
all those tasks (``tasks`` = comma-joined, in ``data.tasks`` order); both peaks count as ``kept``.
So for each task ``kept + merged`` = the number of windows whose ``tasks`` contains it.

Summits: narrowPeak ``start + column 10`` (``-1`` = no summit called -> the midpoint, as the
narrowPeak format defines); BED ``start + (end - start) // 2``. The window centre follows the
paper's ``resize(summit, width, fix="center")``: the summit is at offset ``width // 2``.

The split is by chromosome: ``valid_chroms`` -> valid, ``test_chroms`` -> test, the rest train.
windows.tsv is sorted by chromosome (chrom sizes order) and start, so it is deterministic.

With ``windows.background.enabled`` (off by default), GC-matched background windows
(:mod:`bpnet.data.background`) follow the peak windows in windows.tsv, sorted the same way, with
``tasks`` empty, the summit at offset ``width // 2``, and an extra last column ``kind`` (``peak`` or
``background``); without background the file has no ``kind`` column and is what it always was.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pybedtools
from pybedtools.helpers import BEDToolsError

from bpnet.config_check import resolve_section
from bpnet.data.background import background_settings, gc_matched_background, log_background
from bpnet.errors import BPNetInputError
from bpnet.io.chroms import genome_name, read_chrom_aliases
from bpnet.io.text import read_text_lines
from bpnet.io.tracks import read_chrom_sizes

WINDOW_COLUMNS = ["chrom", "start", "end", "summit", "tasks", "split", "name"]
# The optional last column of windows.tsv, written only with windows.background.enabled.
KIND_COLUMN = "kind"
KINDS = ("peak", "background")
SPLITS = ("train", "valid", "test")
# Every peak ends in exactly one of these, in this order of precedence.
REASONS = (
    "unknown_chrom",
    "excluded_chrom",
    "excluded_contig",
    "duplicate",
    "off_chromosome_end",
    "blacklist",
    "merged",
    "kept",
)
SUMMARY_COLUMNS = ["section", "task", "item", "count"]
_SKIP_PREFIXES = ("#", "track", "browser")


# --------------------------------------------------------------------------------------------
# Reading peaks
# --------------------------------------------------------------------------------------------


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _narrowpeak_like(fields: list[str]) -> bool:
    """Whether a line's columns are narrowPeak's (chrom, start, end, name, score, strand,
    signalValue, pValue, qValue, summit offset), possibly followed by more (raw IDR output adds
    local/global IDR and each replicate's peak). BED12 (blockCount, blockSizes, blockStarts) is not."""
    if len(fields) < 10:
        return False
    bed12 = len(fields) == 12 and "," in fields[10] + fields[11]
    return (not bed12 and fields[5] in ("+", "-", ".") and all(_is_float(f) for f in fields[6:9])
            and _is_int(fields[9]))


def read_peaks(path: str | Path) -> pd.DataFrame:
    """Read the summits of a narrowPeak or BED file (optionally gzipped), as peak callers write them.

    The format is decided by the content: narrowPeak when the first data line has narrowPeak's
    10 columns (:func:`_narrowpeak_like`), with any columns after them ignored: MACS2/MACS3
    narrowPeak, ENCODE IDR "optimal" sets, raw IDR output (20 columns), whatever the file is
    called. Then every line needs those 10 columns and the summit is ``start + column 10``
    (``-1``: the midpoint). Otherwise it is BED (3 or more columns: BED3/6/12, MACS2
    ``summits.bed``) and the summit is the midpoint ``start + (end - start) // 2``. A file named
    ``*.narrowPeak`` whose content is not narrowPeak is an error (its summits would silently
    become midpoints). Empty, ``#``, ``track`` and ``browser`` lines are skipped, and so is a
    header line before the first data line (a line whose start/end are not integers). A
    malformed line is an error naming the file and line.

    Returns:
        DataFrame with columns ``chrom`` (str), ``summit`` (int64, 0-based) and ``line`` (int64,
        1-based line number in the file), one row per peak in file order; ``attrs["format"]``
        says how the file was read (for the log).
    """
    path = Path(path)
    lines = read_text_lines(path, "peak file")
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    header_seen = False
    for i, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith(_SKIP_PREFIXES):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        # One header line (e.g. "chrom start end ...") is allowed before the first data line.
        if not rows and not header_seen and len(fields) >= 3 and not (
            _is_int(fields[1]) and _is_int(fields[2])
        ):
            header_seen = True
            continue
        rows.append(fields)
        line_numbers.append(i)
    if not rows:
        raise BPNetInputError(f"peak file {path} has no peaks (expected narrowPeak or BED lines)")

    named_narrowpeak = path.name.lower().removesuffix(".gz").endswith(".narrowpeak")
    narrowpeak = _narrowpeak_like(rows[0])
    if named_narrowpeak and not narrowpeak:
        first = rows[0]
        raise BPNetInputError(
            f"{path}, line {line_numbers[0]}: the file is named narrowPeak, but its {len(first)} "
            "column(s) are not narrowPeak's (chrom, start, end, name, score, strand [+-.], "
            "signalValue, pValue, qValue, integer summit offset; more columns, as IDR writes, "
            f"are fine): {lines[line_numbers[0] - 1]!r}. A BED file (summit = midpoint) should "
            "not be named .narrowPeak"
        )
    n_fields = np.array([len(r) for r in rows])
    if narrowpeak:
        bad = np.flatnonzero(n_fields < 10)
        expected = "10 tab-separated narrowPeak columns"
        extra = int(n_fields.min()) - 10
        fmt = "narrowPeak" + (f", {extra}+ more columns ignored (IDR output)" if extra > 0 else "")
    else:
        bad = np.flatnonzero(n_fields < 3)
        expected = "at least 3 tab-separated BED columns (chrom, start, end)"
        fmt = "BED, summit = midpoint"
    if bad.size:
        k = bad[0]
        raise BPNetInputError(
            f"{path}, line {line_numbers[k]}: expected {expected}, got {n_fields[k]} column(s): "
            f"{lines[line_numbers[k] - 1]!r}"
        )

    chrom = np.array([r[0] for r in rows], dtype=object)
    start = _int_column(path, rows, line_numbers, 1, "start")
    end = _int_column(path, rows, line_numbers, 2, "end")
    for k in np.flatnonzero((start < 0) | (end < start))[:1]:
        raise BPNetInputError(
            f"{path}, line {line_numbers[k]}: expected 0 <= start <= end, got start {start[k]} "
            f"and end {end[k]}"
        )
    summit = start + (end - start) // 2
    if narrowpeak:
        offset = _int_column(path, rows, line_numbers, 9, "summit offset (column 10)")
        called = offset != -1
        for k in np.flatnonzero(called & ((offset < 0) | (offset >= np.maximum(end - start, 1))))[:1]:
            raise BPNetInputError(
                f"{path}, line {line_numbers[k]}: expected the summit offset (column 10) to be -1 "
                f"or in 0..{end[k] - start[k] - 1} (the peak length minus 1), got {offset[k]}"
            )
        summit = np.where(called, start + offset, summit)
    peaks = pd.DataFrame(
        {
            "chrom": chrom.astype(str),
            "summit": summit.astype(np.int64),
            "line": np.asarray(line_numbers, dtype=np.int64),
        }
    )
    peaks.attrs["format"] = fmt
    return peaks


def _int_column(path: Path, rows: list[list[str]], line_numbers: list[int], col: int, what: str):
    """Column ``col`` of every row as int64; the first non-integer is an error naming its line."""
    texts = pd.Series([r[col].strip() for r in rows], dtype=str)
    bad = ~texts.str.fullmatch(r"-?[0-9]+").to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise BPNetInputError(
            f"{path}, line {line_numbers[k]}: expected an integer {what} in column {col + 1}, "
            f"got {texts[k]!r}"
        )
    return texts.astype(np.int64).to_numpy()


# --------------------------------------------------------------------------------------------
# Windowing
# --------------------------------------------------------------------------------------------


def pattern_excluded(chroms: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The chromosomes of ``chroms`` whose name matches one of ``patterns`` (``re.search``);
    a pattern that is not a regular expression is an error naming windows.exclude_patterns."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            raise BPNetInputError(
                f"config key windows.exclude_patterns: {pattern!r} is not a regular expression ({err})"
            ) from None
    return [c for c in chroms if any(r.search(str(c)) for r in compiled)]


def check_split_config(valid_chroms: Sequence[str], test_chroms: Sequence[str],
                       exclude_chroms: Sequence[str], chrom_sizes: Sequence[str] | None = None,
                       log: logging.Logger | None = None) -> None:
    """A chromosome may be in at most one of the valid, test and exclude lists.

    With ``chrom_sizes`` (the genome's chromosome names), every valid/test chromosome must be
    one of them (a typo would silently empty a split); exclude chromosomes the genome lacks are
    fine (the default chrX/chrY/chrM must work on any genome) and only logged at INFO.
    """
    lists = {
        "windows.valid_chroms": set(valid_chroms),
        "windows.test_chroms": set(test_chroms),
        "windows.exclude_chroms": set(exclude_chroms),
    }
    keys = list(lists)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            both = sorted(lists[a] & lists[b])
            if both:
                raise BPNetInputError(
                    f"chromosome(s) {', '.join(both)} are in both {a} and {b}; a chromosome "
                    "belongs to one split or is excluded"
                )
    if chrom_sizes is None:
        return
    genome = list(chrom_sizes)
    known = set(genome)
    shown = ", ".join(genome[:10]) + (f", ... ({len(genome)} in all)" if len(genome) > 10 else "")
    for key, chroms in (("windows.valid_chroms", valid_chroms), ("windows.test_chroms", test_chroms)):
        unknown = [c for c in dict.fromkeys(chroms) if c not in known]
        if unknown:
            raise BPNetInputError(
                f"{key} names chromosome(s) {', '.join(map(str, unknown))} that are not in the chrom "
                f"sizes file (data.chrom_sizes); expected names of the genome's chromosomes: {shown}"
            )
    absent = [c for c in dict.fromkeys(exclude_chroms) if c not in known]
    if absent:
        (log or logging.getLogger("bpnet")).info(
            "windows.exclude_chroms: %s not in the chrom sizes (nothing to exclude there)",
            ", ".join(map(str, absent)))


def assign_split(chroms, valid_chroms: Sequence[str], test_chroms: Sequence[str]) -> np.ndarray:
    """``(n,)`` split names (train/valid/test) for ``(n,)`` chromosome names."""
    chroms = np.asarray(chroms).astype(str)
    split = np.full(len(chroms), "train", dtype=object)
    split[np.isin(chroms, list(valid_chroms))] = "valid"
    split[np.isin(chroms, list(test_chroms))] = "test"
    return split.astype(str)


def _blacklisted(chroms: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 blacklist: str | Path, genome_chroms: Sequence[str]) -> np.ndarray:
    """``(n,)`` bool: window overlaps an interval of the blacklist BED (pybedtools intersect -u).

    A blacklist sharing no chromosome with the genome is an error (it would silently drop
    nothing: wrong build or naming).
    """

    blacklist = Path(blacklist)
    if not blacklist.exists():
        raise BPNetInputError(f"blacklist BED {blacklist} (windows.blacklist) does not exist")
    hit = np.zeros(len(chroms), dtype=bool)
    if len(chroms) == 0:
        return hit
    # The window's row index travels in the name column so that hits map back to rows.
    table = pd.DataFrame({"chrom": chroms, "start": starts, "end": ends, "name": np.arange(len(chroms))})
    windows = pybedtools.BedTool.from_dataframe(table)
    try:
        regions = pybedtools.BedTool(str(blacklist))
        bl_chroms = {iv.chrom for iv in regions}
        overlapping = windows.intersect(regions, u=True)
        idx = np.array([int(iv.name) for iv in overlapping], dtype=np.int64)
    except (BEDToolsError, pybedtools.MalformedBedLineError, ValueError, IndexError) as err:
        # bedtools' own message is several lines with the command; keep its "Error:" line.
        detail = next((ln.strip() for ln in str(err).splitlines() if ln.strip().startswith("Error:")),
                      str(err).strip())
        raise BPNetInputError(
            f"cannot read the blacklist {blacklist} (windows.blacklist) as BED "
            f"(expected tab-separated chrom, start, end per line): {detail}"
        ) from err
    finally:
        pybedtools.cleanup()
    if bl_chroms and not bl_chroms & set(genome_chroms):
        raise BPNetInputError(
            f"the blacklist {blacklist} (windows.blacklist) shares no chromosome with the genome "
            f"(its chromosomes: {', '.join(sorted(bl_chroms)[:5])}; the genome's: "
            f"{', '.join(list(genome_chroms)[:5])}); wrong genome build or naming ('1' vs 'chr1')?"
        )
    hit[idx] = True
    return hit


def _or_all(masks) -> int:
    """Bitwise OR of task bit masks."""
    out = 0
    for m in masks:
        out |= int(m)
    return out


def _merge_units(chrom_idx: np.ndarray, summits: np.ndarray, masks: np.ndarray,
                 merge_within: int) -> np.ndarray:
    """Group pooled summits ("units", sorted by chrom, summit) into windows; returns group ids.

    Each unit is one summit with a bit mask of the tasks that called it. Greedy, left to right:
    a unit joins the open group when it is on the same chromosome, its summit is at most
    ``merge_within`` bp right of the group's first (leftmost) summit, and none of its tasks is
    already in the group; otherwise it opens a new group. So every summit of a group lies within
    ``merge_within`` of the kept summit, and two peaks of one task never merge. (A Python loop:
    windowing runs once on ~1e5 peaks, far from the hot path.)
    """
    group = np.zeros(len(summits), dtype=np.int64)
    if len(summits) == 0:
        return group
    g, anchor_chrom, anchor, tasks_in = 0, chrom_idx[0], summits[0], int(masks[0])
    for i in range(1, len(summits)):
        c, s, m = chrom_idx[i], summits[i], int(masks[i])
        if c == anchor_chrom and s - anchor <= merge_within and not (tasks_in & m):
            tasks_in |= m
        else:
            g += 1
            anchor_chrom, anchor, tasks_in = c, s, m
        group[i] = g
    return group


def make_windows(
    peaks: Mapping[str, pd.DataFrame],
    chrom_sizes: Mapping[str, int],
    width: int = 1000,
    valid_chroms: Sequence[str] = ("chr2", "chr3", "chr4"),
    test_chroms: Sequence[str] = ("chr1", "chr8", "chr9"),
    exclude_chroms: Sequence[str] = ("chrX", "chrY", "chrM"),
    blacklist: str | Path | None = None,
    merge_within: int = 0,
    sources: Mapping[str, str] | None = None,
    log: logging.Logger | None = None,
    exclude_patterns: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pool the peaks of every task into fixed-width windows with a split.

    Args:
        peaks: ``{task: DataFrame(chrom, summit)}`` in task order (e.g. from :func:`read_peaks`).
        chrom_sizes: ``{chrom: size}`` in genome order (sets the sort order of the output).
        width: window width in bp; the summit sits at offset ``width // 2``.
        valid_chroms, test_chroms: chromosomes of the valid and test splits; the rest is train.
        exclude_chroms: chromosomes whose peaks are dropped.
        exclude_patterns: regular expressions; peaks on contigs whose name matches one are
            dropped (reason ``excluded_contig``; :func:`pattern_excluded`).
        blacklist: optional BED; windows overlapping it by >= 1 bp are dropped.
        merge_within: windows of different tasks whose summits lie within this many bp are
            pooled into one (see :func:`_merge_units`); 0 pools identical summits only.
        sources: ``{task: peak file}`` for error and warning messages.
        log: where warnings go (peaks on contigs the genome lacks); default logger ``bpnet``.

    Returns:
        ``(windows, summary)``: windows has the columns of :data:`WINDOW_COLUMNS`, one row per
        window, sorted by chrom (chrom sizes order) and start; summary is a tidy table
        (:data:`SUMMARY_COLUMNS`) with per-task counts of each reason (section ``reason``) and
        per-split window counts (section ``split``; task ``all`` = all windows).
    """
    if width < 1:
        raise BPNetInputError(f"windows.width must be a positive number of bp, got {width}")
    if merge_within < 0:
        raise BPNetInputError(f"windows.merge_within must be >= 0, got {merge_within}")
    log = log or logging.getLogger("bpnet")
    check_split_config(valid_chroms, test_chroms, exclude_chroms, list(chrom_sizes), log)
    for key, chroms in (("windows.valid_chroms", valid_chroms), ("windows.test_chroms", test_chroms)):
        caught = pattern_excluded(list(chroms), exclude_patterns)
        if caught:
            raise BPNetInputError(
                f"{key} names {', '.join(caught)}, which windows.exclude_patterns excludes; a chromosome "
                "belongs to one split or is excluded"
            )
    tasks = list(peaks)
    if not tasks:
        raise BPNetInputError("no tasks given (data.tasks is empty)")
    sources = dict(sources or {})
    chrom_order = {c: i for i, c in enumerate(chrom_sizes)}
    sizes = np.array(list(chrom_sizes.values()), dtype=np.int64)

    # One table of all peaks: task index, chromosome, summit, reason (filled in below).
    frames = []
    for t, task in enumerate(tasks):
        df = peaks[task]
        src = sources.get(task, f"the peaks of task {task}")
        if len(df) == 0:
            raise BPNetInputError(f"{src} (task {task}) has no peaks")
        known = df["chrom"].isin(chrom_order)
        n_unknown = int((~known).sum())
        if n_unknown:
            contigs = pd.unique(df["chrom"][~known].astype(str))
            listed = ", ".join(contigs[:5]) + (f", ... ({len(contigs)} in all)" if len(contigs) > 5 else "")
            if 2 * n_unknown > len(df):
                share = ("shares no chromosome with the chrom sizes" if not known.any() else
                         f"has {n_unknown} of {len(df)} peaks on contigs not in the chrom sizes")
                raise BPNetInputError(
                    f"{src} (task {task}) {share} (data.chrom_sizes; unknown contigs: {listed}; the "
                    f"genome's: {', '.join(list(chrom_sizes)[:5])}); check the chromosome naming "
                    "('1' vs 'chr1': map names with data.chrom_aliases) and the genome build"
                )
            log.warning("%s (task %s): dropped %d of %d peaks on contigs not in the chrom sizes "
                        "(%s); counted as unknown_chrom in windows_summary.tsv",
                        src, task, n_unknown, len(df), listed)
        frames.append(pd.DataFrame({"task": t, "chrom": df["chrom"].to_numpy(),
                                    "summit": df["summit"].to_numpy(np.int64)}))
    allp = pd.concat(frames, ignore_index=True)
    reason = np.full(len(allp), "", dtype=object)

    def mark(mask: np.ndarray, why: str) -> None:
        reason[mask & (reason == "")] = why

    mark(~allp["chrom"].isin(chrom_order).to_numpy(), "unknown_chrom")
    mark(allp["chrom"].isin(list(exclude_chroms)).to_numpy(), "excluded_chrom")
    contigs = pd.unique(allp["chrom"].astype(str))
    matched = set(pattern_excluded(contigs, exclude_patterns))
    mark(allp["chrom"].isin(matched).to_numpy(), "excluded_contig")
    mark(allp.duplicated(["task", "chrom", "summit"]).to_numpy() & (reason == ""), "duplicate")

    chrom_idx = allp["chrom"].map(chrom_order).fillna(-1).to_numpy(np.int64)
    starts = allp["summit"].to_numpy(np.int64) - width // 2
    ends = starts + width
    chrom_size = np.where(chrom_idx >= 0, sizes[np.maximum(chrom_idx, 0)], 0)
    mark((starts < 0) | (ends > chrom_size), "off_chromosome_end")
    if blacklist is not None:
        live = np.flatnonzero(reason == "")
        hit = _blacklisted(allp["chrom"].to_numpy()[live].astype(str), starts[live], ends[live],
                           blacklist, list(chrom_sizes))
        reason[live[hit]] = "blacklist"

    # Pool the surviving peaks: identical summits -> one unit (task bit mask), then merge units.
    live = np.flatnonzero(reason == "")
    if live.size == 0:
        _raise_empty(allp, tasks, reason)
    # Task sets are bit masks (Python ints, so any number of tasks fits).
    bits = pd.Series([1 << int(t) for t in allp["task"].to_numpy()[live]], dtype=object)
    units = (
        pd.DataFrame({"c": chrom_idx[live], "s": allp["summit"].to_numpy()[live], "m": bits})
        .groupby(["c", "s"], sort=True)["m"]
        .agg(_or_all)
        .reset_index()
    )
    units["g"] = _merge_units(units["c"].to_numpy(), units["s"].to_numpy(), units["m"].to_numpy(), merge_within)
    # groupby keeps the (chrom, summit) order of the units, so "first" is the leftmost summit.
    windows = units.groupby("g", sort=True).agg(c=("c", "first"), s=("s", "first"), m=("m", _or_all))
    # A live peak whose summit is not its window's summit was merged into another task's window.
    unit_of = pd.DataFrame({"c": chrom_idx[live], "s": allp["summit"].to_numpy()[live]}).merge(
        units, on=["c", "s"], how="left")
    own = unit_of["s"].to_numpy() == windows["s"].to_numpy()[unit_of["g"].to_numpy()]
    reason[live] = np.where(own, "kept", "merged")

    chrom_names = np.array(list(chrom_sizes), dtype=object)
    out = pd.DataFrame({"chrom": chrom_names[windows["c"].to_numpy()].astype(str),
                        "summit": windows["s"].to_numpy(np.int64)})
    out["start"] = out["summit"] - width // 2
    out["end"] = out["start"] + width
    masks = windows["m"].to_numpy()
    out["tasks"] = [",".join(tasks[t] for t in range(len(tasks)) if int(m) >> t & 1) for m in masks]
    out["split"] = assign_split(out["chrom"], valid_chroms, test_chroms)
    out["name"] = out["chrom"] + ":" + out["start"].astype(str) + "-" + out["end"].astype(str)
    out = out[WINDOW_COLUMNS].reset_index(drop=True)

    return out, _summary(tasks, allp["task"].to_numpy(), reason, out)


def _raise_empty(allp: pd.DataFrame, tasks: list[str], reason: np.ndarray) -> None:
    """No peak survived: say how many went for which reason."""
    why = ", ".join(f"{int((reason == r).sum())} {r}" for r in REASONS if (reason == r).any())
    raise BPNetInputError(
        f"no windows kept: of {len(allp)} peaks of tasks {', '.join(tasks)}, {why} (check "
        "windows.exclude_chroms, windows.blacklist, windows.width and the chromosome names of "
        "the peak files)"
    )


def _summary(tasks: list[str], task_idx: np.ndarray, reason: np.ndarray,
             windows: pd.DataFrame) -> pd.DataFrame:
    """Tidy counts: per task and reason (every reason listed, zeros included), per split."""
    rows: list[tuple[str, str, str, int]] = []
    for t, task in enumerate(tasks):
        r = reason[task_idx == t]
        rows += [("reason", task, why, int((r == why).sum())) for why in REASONS]
    rows += [("reason", "all", why, int((reason == why).sum())) for why in REASONS]
    has_task = {task: windows["tasks"].str.split(",").apply(lambda ts, task=task: task in ts)
                for task in tasks}
    for task in tasks:
        rows += [("split", task, s, int((has_task[task] & (windows["split"] == s)).sum())) for s in SPLITS]
    rows += [("split", "all", s, int((windows["split"] == s).sum())) for s in SPLITS]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def add_background(
    windows: pd.DataFrame,
    peaks: Mapping[str, pd.DataFrame],
    chrom_sizes: Mapping[str, int],
    fasta: str | Path,
    settings: Mapping[str, Any],
    width: int,
    valid_chroms: Sequence[str],
    test_chroms: Sequence[str],
    exclude_chroms: Sequence[str],
    blacklist: str | Path | None = None,
    seed: int = 1,
    log: logging.Logger | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Append GC-matched background windows to the peak windows of :func:`make_windows`.

    Args:
        windows: the peak windows; peaks: every peak of every task (``{task: DataFrame(chrom,
            summit)}``); settings: :func:`bpnet.data.background.background_settings`; fasta: the
            genome; the rest as for :func:`make_windows`; seed: the config's ``seed``.

    Returns:
        ``(windows, summary)``: the peak windows (``kind`` peak) followed by the background windows
        (``kind`` background, ``tasks`` empty, split by chromosome, sorted by chromosome and
        start); summary rows (:data:`SUMMARY_COLUMNS`): section ``split``, task ``background``,
        the background windows per split, and section ``background``, task ``all``, the candidate
        counts (grid, with_n, near_peak, blacklist, candidates) and ``sampled``.
    """
    log = log or logging.getLogger("bpnet")
    drawn, stats = gc_matched_background(windows, peaks, chrom_sizes, fasta, settings, width,
                                         exclude_chroms=exclude_chroms, blacklist=blacklist,
                                         seed=seed, log=log)
    bg = pd.DataFrame({"chrom": drawn["chrom"].astype(str), "start": drawn["start"].to_numpy(np.int64)})
    bg["end"] = bg["start"] + width
    bg["summit"] = bg["start"] + width // 2
    bg["tasks"] = ""
    bg["split"] = assign_split(bg["chrom"], valid_chroms, test_chroms)
    bg["name"] = bg["chrom"] + ":" + bg["start"].astype(str) + "-" + bg["end"].astype(str)
    bg[KIND_COLUMN] = "background"
    out = pd.concat([windows[WINDOW_COLUMNS].assign(**{KIND_COLUMN: "peak"}), bg[WINDOW_COLUMNS + [KIND_COLUMN]]],
                    ignore_index=True)
    per_split = {s: int((bg["split"] == s).sum()) for s in SPLITS}
    log_background(stats, per_split, settings, log)
    rows = [("split", "background", s, n) for s, n in per_split.items()]
    rows += [("background", "all", item, int(stats[item]))
             for item in ("grid", "with_n", "near_peak", "blacklist", "candidates")]
    rows.append(("background", "all", "sampled", len(bg)))
    return out, pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def write_windows(path: str | Path, windows: pd.DataFrame) -> None:
    """Write windows.tsv (tab-separated, header, :data:`WINDOW_COLUMNS`, then ``kind`` if the
    table has it)."""
    columns = WINDOW_COLUMNS + ([KIND_COLUMN] if KIND_COLUMN in windows.columns else [])
    windows[columns].to_csv(path, sep="\t", index=False)


def load_windows(path: str | Path) -> pd.DataFrame:
    """Read and check a windows.tsv: columns, types, equal widths, known split names, and the
    optional ``kind`` column (peak / background; a background window has no tasks)."""
    path = Path(path)
    if not path.exists():
        raise BPNetInputError(f"windows file {path} does not exist")
    try:
        df = pd.read_csv(path, sep="\t", dtype={"chrom": str, "tasks": str, "split": str, "name": str,
                                                KIND_COLUMN: str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BPNetInputError(f"cannot read windows file {path} as a TSV: {err}") from err
    missing = [c for c in WINDOW_COLUMNS if c not in df.columns]
    if missing:
        raise BPNetInputError(f"windows file {path} lacks column(s) {missing}; expected {WINDOW_COLUMNS}")
    for col in ("start", "end", "summit"):
        if not pd.api.types.is_integer_dtype(df[col]):
            raise BPNetInputError(f"windows file {path}: column {col} must hold integers")
    if len(df) == 0:
        raise BPNetInputError(f"windows file {path} has no windows")
    widths = np.unique(df["end"] - df["start"])
    if len(widths) != 1 or widths[0] < 1:
        raise BPNetInputError(f"windows file {path}: every window must have the same positive width, "
                              f"got widths {widths[:5].tolist()}")
    bad = ~df["split"].isin(SPLITS)
    if bad.any():
        raise BPNetInputError(f"windows file {path}, row {int(np.flatnonzero(bad)[0]) + 2}: split must be "
                              f"one of {list(SPLITS)}, got {df['split'][bad].iloc[0]!r}")
    if KIND_COLUMN not in df.columns:
        return df[WINDOW_COLUMNS]
    kind = df[KIND_COLUMN]
    bad = ~kind.isin(KINDS) | ((kind == "background") != (df["tasks"] == ""))
    if bad.any():
        raise BPNetInputError(
            f"windows file {path}, row {int(np.flatnonzero(bad)[0]) + 2}: kind must be peak (with "
            f"tasks) or background (tasks empty), got kind {kind[bad].iloc[0]!r} with tasks "
            f"{df['tasks'][bad].iloc[0]!r}")
    return df[WINDOW_COLUMNS + [KIND_COLUMN]]


def log_summary(summary: pd.DataFrame, log: logging.Logger) -> None:
    """Log the reasons table (tasks as columns) and the split counts."""
    for section in ("reason", "split"):
        rows = summary[summary["section"] == section]
        table = rows.pivot(index="item", columns="task", values="count")
        order = REASONS if section == "reason" else SPLITS
        table = table.reindex(index=list(order), columns=list(rows["task"].unique()))
        log.info("%s counts (%s):\n%s", section,
                 "peaks per task by fate" if section == "reason" else "windows per split",
                 table.to_string())


def write_peak_windows(
    peak_files: Mapping[str, str],
    chrom_sizes_path: str,
    windows_path: str,
    summary_path: str,
    windows_config: Mapping[str, Any],
    blacklist: str | None = None,
    fasta: str | None = None,
    seed: int | None = None,
    log: logging.Logger = logging.getLogger(__name__),
    chrom_aliases: str | None = None,
) -> pd.DataFrame:
    """Rule peak_windows: the peaks of every task + chrom sizes -> windows.tsv + windows_summary.tsv.

    Args:
        peak_files: ``{task: peak file}`` in task order.
        chrom_sizes_path: the genome's chrom sizes.
        windows_path, summary_path: the outputs (:func:`write_windows`, a TSV per task and split).
        windows_config: the config's ``windows`` section (width, valid/test/exclude chroms,
            merge_within, background).
        blacklist: a BED of regions no window may overlap, or None.
        fasta: the genome FASTA; needed only with ``windows.background.enabled``.
        seed: the config's ``seed`` (draws the background windows; default 1).
        chrom_aliases: an alias table (``data.chrom_aliases``): peak files may name chromosomes
            by an alias of the genome's name.

    Returns the windows table.
    """
    cfg = dict(windows_config)
    width = int(cfg.get("width", 1000))
    background = background_settings(cfg.get("background"), width)
    if background["enabled"] and fasta is None:
        raise BPNetInputError("windows.background.enabled needs the genome FASTA (data.genome_fasta)")
    chrom_sizes = read_chrom_sizes(chrom_sizes_path)
    aliases = read_chrom_aliases(chrom_aliases, chrom_sizes) if chrom_aliases else None
    peaks = {}
    for task, path in peak_files.items():
        peaks[task] = read_peaks(path)
        if aliases:
            renamed = peaks[task]["chrom"].isin(list(aliases)).sum()
            peaks[task]["chrom"] = peaks[task]["chrom"].map(lambda c: genome_name(c, aliases))
            log.info("task %s: %d peaks on chromosomes renamed by %s", task, renamed, chrom_aliases)
        log.info("task %s: %d peaks from %s (%s)", task, len(peaks[task]), path, peaks[task].attrs["format"])
    split = {
        "valid_chroms": cfg.get("valid_chroms", ["chr2", "chr3", "chr4"]),
        "test_chroms": cfg.get("test_chroms", ["chr1", "chr8", "chr9"]),
        "exclude_chroms": cfg.get("exclude_chroms", ["chrX", "chrY", "chrM"]),
    }
    # absent from the params of results made before the key existed: the schema's default
    patterns = resolve_section(("windows",), {k: cfg[k] for k in ("exclude_patterns",) if k in cfg})["exclude_patterns"]
    windows, summary = make_windows(
        peaks,
        chrom_sizes,
        width=width,
        **split,
        blacklist=blacklist,
        merge_within=int(cfg.get("merge_within", 0)),
        sources={task: str(path) for task, path in peak_files.items()},
        log=log,
        exclude_patterns=patterns,
    )
    if background["enabled"]:
        no_background = list(split["exclude_chroms"]) + pattern_excluded(list(chrom_sizes), patterns)
        windows, extra = add_background(windows, peaks, chrom_sizes, fasta, background, width,
                                        split["valid_chroms"], split["test_chroms"], no_background,
                                        blacklist=blacklist, seed=1 if seed is None else int(seed), log=log)
        summary = pd.concat([summary, extra], ignore_index=True)
    log_summary(summary, log)
    for s in SPLITS:
        if not (windows["split"] == s).any():
            log.warning("the %s split has no windows (check windows.valid_chroms/test_chroms "
                        "against the genome's chromosome names)", s)
    write_windows(windows_path, windows)
    summary.to_csv(summary_path, sep="\t", index=False)
    log.info("wrote %d windows to %s", len(windows), windows_path)
    return windows
