"""A genome-browser session per experiment (rules ``igv_session``, ``igv_motif_instances``).

:func:`write_igv_session` writes ``results/<exp>/igv/session.xml``, an IGV desktop session (File >
Open Session) that opens the genome (the FASTA, or ``igv.genome_id``), per task the observed count
bigWigs, the predicted tracks and (with interpretation) the contribution bigWigs, the control when
the model uses one, the test windows as a BED and (with interpretation) the motif instances as a
BED. Paths in the session are relative to its folder (absolute paths stay absolute), so the
results folder can be moved or zipped with the data it names. Each task has one colour family: the
+ strand dark, the - strand light and drawn downwards (a flipped axis; a - strand stored negative,
``data.minus_strand_negative``, is drawn as it is); observed and predicted tracks of a task share
one autoscale group. The session opens at the test window with the most observed reads, and lists
the ``igv.top_windows`` windows with most reads (none overlapping another) as regions of interest
(Regions > Region Navigator), also written as ``top_windows.bed``.

The rule is cheap: it reads windows.tsv, the counts of the test windows of dataset.npz (a chunk of
windows at a time) and, for the motif BED, instances.tsv; no model runs.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bpnet.data.dataset import load_dataset
from bpnet.data.windows import load_windows
from bpnet.errors import BPNetInputError
from bpnet.io.npz import row_chunks

# (dark, light) per task, in task order (matplotlib's tab20 pairs); the control is grey.
COLOURS = [
    ((31, 119, 180), (174, 199, 232)),
    ((255, 127, 14), (255, 187, 120)),
    ((44, 160, 44), (152, 223, 138)),
    ((214, 39, 40), (255, 152, 150)),
    ((148, 103, 189), (197, 176, 213)),
    ((140, 86, 75), (196, 156, 148)),
    ((227, 119, 194), (247, 182, 210)),
    ((188, 189, 34), (219, 219, 141)),
    ((23, 190, 207), (158, 218, 229)),
]
GREY = ((90, 90, 90), (170, 170, 170))
STRAND_LABEL = {"pos": "+", "neg": "-"}


def task_colours(index: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(dark, light) RGB of the task at ``index`` (the families repeat after nine tasks)."""
    return COLOURS[index % len(COLOURS)]


def _rgb(colour: tuple[int, int, int]) -> str:
    return ",".join(str(c) for c in colour)


def session_relative(path: str | os.PathLike, session_dir: str | os.PathLike) -> str:
    """``path`` as the session names it: relative to the session's folder when ``path`` is relative
    (to the working directory, as the workflow's paths are), unchanged when absolute."""
    path = os.fspath(path)
    if os.path.isabs(path):
        return Path(path).as_posix()
    return Path(os.path.relpath(path, os.fspath(session_dir))).as_posix()


# --------------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------------


def test_window_reads(windows_path: str | Path, dataset_path: str | Path, split: str = "test") -> pd.DataFrame:
    """The peak windows of ``split`` in windows.tsv order with their observed reads.

    Returns columns ``chrom, start, end, name, tasks, reads`` (reads: the 5'-end counts of every
    task and strand summed over the window, from dataset.npz).
    """
    windows = load_windows(windows_path)
    keep = windows["split"] == split
    if "kind" in windows.columns:
        keep &= windows["kind"] != "background"
    windows = windows[keep].reset_index(drop=True)
    ds = load_dataset(dataset_path)
    rows = ds.split_indices(split)
    totals = np.zeros(len(rows), dtype=np.int64)
    for lo, counts in row_chunks(ds.counts, rows):
        totals[lo:lo + len(counts)] = counts[:, ds.core].sum(axis=(1, 2), dtype=np.int64)
    reads = pd.DataFrame({"chrom": ds.chrom[rows].astype(str), "start": ds.start[rows].astype(np.int64),
                          "reads": totals})
    out = windows[["chrom", "start", "end", "name", "tasks"]].merge(reads, on=["chrom", "start"], how="left")
    if out["reads"].isna().any():
        missing = out.loc[out["reads"].isna(), "name"].iloc[0]
        raise BPNetInputError(f"dataset {dataset_path} lacks the {split} window {missing} of {windows_path}; "
                              "rebuild it with rule build_dataset")
    out["reads"] = out["reads"].astype(np.int64)
    out["tasks"] = out["tasks"].fillna("").astype(str)
    return out


def top_windows(windows: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` windows with most reads, most first (ties in windows.tsv order), each overlapping
    none before it: the windows of several tasks around one summit are one region to look at."""
    chosen: list[int] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for i in np.argsort(-windows["reads"].to_numpy(), kind="stable"):
        if len(chosen) == n:
            break
        chrom, start, end = windows["chrom"].iat[i], int(windows["start"].iat[i]), int(windows["end"].iat[i])
        if any(start < e and s < end for s, e in taken.get(chrom, ())):
            continue
        chosen.append(int(i))
        taken.setdefault(chrom, []).append((start, end))
    return windows.iloc[chosen].reset_index(drop=True)


def write_windows_bed(path: str | Path, windows: pd.DataFrame, track: str) -> None:
    """BED6 with a track line: name (window name and its tasks), score 0, strand ``.``."""
    with open(path, "w") as fh:
        fh.write(f'track name="{track}"\n')
        for w in windows.itertuples(index=False):
            name = f"{w.name}|{w.tasks}" if w.tasks else w.name
            fh.write(f"{w.chrom}\t{w.start}\t{w.end}\t{name}\t0\t.\n")


def write_top_windows_bed(path: str | Path, top: pd.DataFrame) -> None:
    """BED6: name ``top<rank>|<window>|<reads> reads|<tasks>``, score the rank's share of 1000."""
    with open(path, "w") as fh:
        fh.write('track name="top test windows (observed reads)"\n')
        for rank, w in enumerate(top.itertuples(index=False), start=1):
            score = max(1, round(1000 * (len(top) - rank + 1) / len(top)))
            fh.write(f"{w.chrom}\t{w.start}\t{w.end}\t{_top_label(rank, w)}\t{score}\t.\n")


def _top_label(rank: int, w) -> str:
    label = f"top{rank}|{w.name}|{w.reads} reads"
    return f"{label}|{w.tasks}" if w.tasks else label


def locus(chrom: str, start: int, end: int) -> str:
    """IGV's 1-based inclusive ``chrom:start-end`` of a 0-based half-open interval."""
    return f"{chrom}:{int(start) + 1}-{int(end)}"


# --------------------------------------------------------------------------------------------
# Motif instances
# --------------------------------------------------------------------------------------------


def write_motif_bed(instances_path: str | Path, bed_path: str | Path, tasks: Sequence[str],
                    log: logging.Logger = logging.getLogger(__name__)) -> int:
    """Rule ``igv_motif_instances``: instances.tsv (rule motif_instances) as a BED9 for IGV.

    Name ``<task>/<pattern>/<motif>`` (the known motif the pattern resembles; without one
    ``<task>/<pattern>``), score the CWM match (cosine similarity) x 1000, the instance's strand,
    the task's dark colour (``itemRgb``). Rows in the order of instances.tsv. Returns the rows.
    """
    try:
        inst = pd.read_csv(instances_path, sep="\t", dtype={"chrom": str}, keep_default_na=False)
    except pd.errors.EmptyDataError:
        inst = pd.DataFrame()
    need = ["chrom", "start", "end", "strand", "pattern", "task", "match"]
    missing = [c for c in need if c not in inst.columns]
    if missing and len(inst.columns):
        raise BPNetInputError(f"{instances_path} lacks the column(s) {missing}; rerun rule motif_instances")
    index = {t: i for i, t in enumerate(tasks)}
    with open(bed_path, "w") as fh:
        fh.write('track name="motif instances" itemRgb="On"\n')
        if missing:  # an empty table
            log.info("no motif instances in %s", instances_path)
            return 0
        motif = inst["motif"].astype(str) if "motif" in inst.columns else pd.Series("", index=inst.index)
        match = pd.to_numeric(inst["match"], errors="coerce").fillna(0).clip(0, 1)
        for row, mot, m in zip(inst.itertuples(index=False), motif, match):
            name = f"{row.task}/{row.pattern}" + (f"/{mot}" if mot else "")
            rgb = _rgb(task_colours(index.get(row.task, len(index)))[0])
            start, end = int(row.start), int(row.end)
            fh.write(f"{row.chrom}\t{start}\t{end}\t{name}\t{round(1000 * m)}\t{row.strand}\t{start}\t{end}\t{rgb}\n")
    log.info("wrote %d motif instances to %s", len(inst), bed_path)
    return len(inst)


# --------------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------------


def _data_track(panel: ET.Element, resources: ET.Element, path: str, name: str, colour, *,
                alt_colour=None, flip: bool = False, group: int | None = None) -> None:
    ET.SubElement(resources, "Resource", {"path": path, "type": "bigwig"})
    attrs = {
        "attributeKey": name,
        "autoScale": "true",
        "clazz": "org.broad.igv.track.DataSourceTrack",
        "color": _rgb(colour),
        "altColor": _rgb(alt_colour or colour),
        "fontSize": "10",
        "height": "50",
        "id": path,
        "name": name,
        "renderer": "BAR_CHART",
        "visible": "true",
        "windowFunction": "mean",
    }
    if group is not None:
        attrs["autoscaleGroup"] = str(group)
    track = ET.SubElement(panel, "Track", attrs)
    ET.SubElement(track, "DataRange", {"baseline": "0.0", "drawBaseline": "true",
                                       "flipAxis": "true" if flip else "false", "maximum": "10.0",
                                       "minimum": "0.0", "type": "LINEAR"})


def _feature_track(panel: ET.Element, resources: ET.Element, path: str, name: str, colour) -> None:
    ET.SubElement(resources, "Resource", {"path": path, "type": "bed"})
    ET.SubElement(panel, "Track", {
        "attributeKey": name,
        "clazz": "org.broad.igv.track.FeatureTrack",
        "color": _rgb(colour),
        "displayMode": "EXPANDED",
        "fontSize": "10",
        "id": path,
        "name": name,
        "visible": "true",
    })


def _strands(paths: Sequence, tasks: Sequence[str], what: str) -> list[str]:
    """["pos", "neg"] when ``paths`` has two files per task, [""] for one (unstranded)."""
    if len(paths) == 2 * len(tasks):
        return ["pos", "neg"]
    if len(paths) == len(tasks):
        return [""]
    raise BPNetInputError(f"{what}: {len(paths)} tracks for {len(tasks)} tasks (expected one or two per task)")


def write_igv_session(
    session_path: str | Path,
    windows_path: str | Path,
    dataset_path: str | Path,
    tasks: Sequence[str],
    observed: Sequence[str],
    predicted: Sequence[str],
    windows_bed: str | Path,
    top_bed: str | Path,
    *,
    genome_fasta: str,
    genome_id: str | None = None,
    contributions: Sequence[str] = (),
    contribution_heads: Sequence[str] = (),
    control: Sequence[str] = (),
    motif_bed: str | None = None,
    n_top: int = 20,
    minus_strand_negative: bool = False,
    log: logging.Logger = logging.getLogger(__name__),
) -> str:
    """Rule ``igv_session``: session.xml, test_windows.bed and top_windows.bed (see module doc).

    Args:
        session_path: the session XML; ``windows_bed`` and ``top_bed`` are written beside it.
        windows_path, dataset_path: windows.tsv and dataset.npz (the observed reads per window).
        tasks: task names in channel order.
        observed: the count bigWigs in channel order (task1 +, task1 -, ... or one per task).
        predicted: the exported tracks, in the same order.
        genome_fasta: the genome (IGV indexes it, or reads its ``.fai``); ``genome_id`` (e.g.
            ``mm10``) replaces it when given.
        contributions, contribution_heads: the contribution bigWigs in (task, head) order, or none.
        control: the control bigWigs the model uses (+, - or one), or none.
        motif_bed: the motif instances BED (rule igv_motif_instances), or None.
        n_top: windows listed as regions of interest and in ``top_bed``.
        minus_strand_negative: the observed - strand bigWigs store negative numbers (not flipped).

    Returns the session's locus.
    """
    session_path = Path(session_path)
    here = session_path.parent
    tasks = list(tasks)
    strands = _strands(observed, tasks, "observed tracks")
    if len(predicted) != len(observed):
        raise BPNetInputError(f"{len(predicted)} predicted tracks for {len(observed)} observed ones")
    if len(contributions) != len(tasks) * len(contribution_heads):
        raise BPNetInputError(f"{len(contributions)} contribution tracks for {len(tasks)} tasks x "
                              f"{len(contribution_heads)} heads")

    windows = test_window_reads(windows_path, dataset_path)
    top = top_windows(windows, n_top)
    write_windows_bed(windows_bed, windows, "test windows")
    write_top_windows_bed(top_bed, top)
    if len(top):
        first = top.iloc[0]
        where = locus(first["chrom"], first["start"], first["end"])
        log.info("locus: %s, the test window with most observed reads (%d)", where, first["reads"])
    else:
        every = load_windows(windows_path)
        if not len(every):
            raise BPNetInputError(f"{windows_path} has no windows")
        where = locus(every["chrom"].iloc[0], every["start"].iloc[0], every["end"].iloc[0])
        log.warning("no test windows in %s: the session opens at the first window, %s", windows_path, where)

    genome = genome_id or session_relative(genome_fasta, here)
    root = ET.Element("Session", {"genome": genome, "hasGeneTrack": "false", "hasSequenceTrack": "true",
                                  "locus": where, "version": "8"})
    resources = ET.SubElement(root, "Resources")
    data = ET.SubElement(root, "Panel", {"name": "DataPanel"})
    group = 0
    for k, task in enumerate(tasks):
        dark, light = task_colours(k)
        group += 1
        for kind, paths in (("observed", observed), ("predicted", predicted)):
            for s, strand in enumerate(strands):
                path = session_relative(paths[k * len(strands) + s], here)
                neg = strand == "neg"
                label = f"{task} {STRAND_LABEL[strand]} {kind}" if strand else f"{task} {kind}"
                flip = neg and not (kind == "observed" and minus_strand_negative)
                _data_track(data, resources, path, label, light if neg else dark, flip=flip, group=group)
        for h, head in enumerate(contribution_heads):
            path = session_relative(contributions[k * len(contribution_heads) + h], here)
            _data_track(data, resources, path, f"{task} contribution ({head})", dark, alt_colour=light)
    if control:
        group += 1
        cstrands = ["pos", "neg"] if len(control) == 2 else [""]
        for path, strand in zip(control, cstrands):
            neg = strand == "neg"
            label = f"control {STRAND_LABEL[strand]}" if strand else "control"
            _data_track(data, resources, session_relative(path, here), label, GREY[1] if neg else GREY[0],
                        flip=neg and not minus_strand_negative, group=group)
    features = ET.SubElement(root, "Panel", {"name": "FeaturePanel"})
    _feature_track(features, resources, session_relative(windows_bed, here), "test windows", GREY[0])
    if motif_bed:
        _feature_track(features, resources, session_relative(motif_bed, here), "motif instances", (0, 0, 0))
    regions = ET.SubElement(root, "Regions")
    for rank, w in enumerate(top.itertuples(index=False), start=1):
        ET.SubElement(regions, "Region", {"chromosome": w.chrom, "start": str(int(w.start)),
                                          "end": str(int(w.end)), "description": _top_label(rank, w)})
    root.set("nextAutoscaleGroup", str(group + 1))
    ET.indent(root)
    ET.ElementTree(root).write(session_path, encoding="UTF-8", xml_declaration=True)
    with open(session_path, "a") as fh:
        fh.write("\n")
    log.info("wrote %s: %d tracks, %d test windows, %d regions of interest", session_path,
             len(resources), len(windows), len(top))
    return where
