"""Predict what the user asks: BED regions of the genome or FASTA sequences (config key
``predict_regions``; rules ``region_predictions`` and ``region_tracks``).

The model's input and output have the same width ``W``, the dataset's window width (all its
convolutions are 'same'; export and rule predict run it on ``W``-bp windows the same way), and a
window's prediction is normalised over that window, as in training. So every region or sequence
is cut into windows of ``W`` bp exactly as :mod:`bpnet.steps.export` tiles a chromosome
(:func:`bpnet.steps.export.owned_tiles`), with the region in place of the chromosome:

- a region of ``W`` bp or less is one window with the region in its centre; the bases of the
  window outside the region are the genome's (BED), N past a chromosome end, or N around a FASTA
  sequence. Only the region's own bases are kept.
- a longer region is tiled: windows step by ``W - 2 * tile_overlap`` from the region start, the
  last one ends at the region end, and every base takes the prediction of the window whose centre
  is nearest (at least ``tile_overlap`` bp are trimmed from every window edge inside the region).
  Each base of a region is predicted exactly once.

A FASTA sequence shorter than ``W`` is therefore padded with N on both sides (not an error): the
model sees less real sequence than it was trained on, so its prediction there is less reliable;
the log counts such sequences.

Outputs (:func:`predict_regions`):

- ``predictions.npz`` (:func:`bpnet.io.npz.write_npz`): ``profile`` float32 ``(sum of lengths,
  2T)``, the predicted expected 5'-end counts of every base of every region, regions one after
  another in input order; region ``i`` is rows ``offsets[i]:offsets[i + 1]``; channels task-major
  (task ``t`` + strand ``2 t``, - strand ``2 t + 1``). ``offsets`` int64 ``(n + 1,)``, ``name``
  ``(n,)`` str, ``length`` int64 ``(n,)``, ``counts`` float64 ``(n, 2T)`` (the profile summed over
  each region), ``tasks`` ``(T,)``, ``width`` and ``tile_overlap`` (); for BED input also
  ``chrom`` ``(n,)`` str, ``start`` and ``end`` int64 ``(n,)`` (0-based, half-open).
- ``counts.tsv``: one row per region (BED: ``name chrom start end length``; FASTA: ``name
  length``), then per task ``<task>_total``, ``<task>_pos``, ``<task>_neg``: the predicted reads
  over the region's bases, i.e. the profile summed over the region (for a region of exactly ``W``
  bp, the count head's prediction ``expm1(count_logit)``).
- BED input only, :func:`write_region_tracks`: ``tracks/{task}.{pos,neg}.bw`` holding the profile
  at the regions' genome coordinates (every chromosome of the chrom sizes in the header, per-base
  float32, no data outside the regions). Where regions overlap, a base takes the value of the
  region whose centre is nearest (the first listed on a tie), as export stitches windows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from bpnet.data.dataset import read_padded
from bpnet.errors import BPNetInputError
from bpnet.hardware import inference_batch_size, setup_inference
from bpnet.io.npz import read_npz, write_npz
from bpnet.io.sequence import N_CODE, encode, open_fasta, read_fasta_windows
from bpnet.io.text import read_text_lines
from bpnet.io.tracks import STRANDS, TrackWriter, read_chrom_sizes, read_windows, track_paths
from bpnet.model.weights import load_checkpoint
from bpnet.progress import progress_bar
from bpnet.steps.export import CHUNK_TILES, gather_owned, owned_tiles, split_contiguous
from bpnet.steps.predict import predict_profile

_SKIP_PREFIXES = ("#", "track", "browser")

# read(region index (n,), start relative to the region (n,)) -> codes (n, W), control (n, W, 2) | None
ReadTiles = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray | None]"]
# predict(codes (n, W), control | None) -> expected counts (n, W, C)
PredictFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


# --------------------------------------------------------------------------------------------
# Reading the user's regions and sequences
# --------------------------------------------------------------------------------------------


@dataclass
class BedRegions:
    """Regions of a BED file, in file order: ``name``, ``chrom`` ``(n,)`` str, ``start``, ``end``
    ``(n,)`` int64 (0-based, half-open)."""

    name: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def length(self) -> np.ndarray:
        return self.end - self.start


def read_bed_regions(path: str | Path, chrom_lengths: Mapping[str, int], genome: str | Path = "the genome") -> BedRegions:
    """Read the regions of a BED file (3 or more columns, optionally gzipped) and check them
    against the genome's chromosome lengths.

    Column 4, when present and not ``.``, names a region; otherwise its name is
    ``chrom:start-end``. Empty, ``#``, ``track`` and ``browser`` lines are skipped. Each mistake
    is a :class:`BPNetInputError` naming the file and line: fewer than 3 columns, a start or end
    that is not an integer, a negative start, ``end <= start``, a chromosome that ``genome`` lacks,
    a region past the chromosome end; and a file without regions.
    """
    path = Path(path)
    names, chroms, starts, ends = [], [], [], []
    shown = ", ".join(list(chrom_lengths)[:6]) + (", ..." if len(chrom_lengths) > 6 else "")
    for i, line in enumerate(read_text_lines(path, "BED file"), start=1):
        if not line.strip() or line.startswith(_SKIP_PREFIXES):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        where = f"{path}, line {i}"
        if len(fields) < 3:
            raise BPNetInputError(
                f"{where}: expected at least 3 columns (chrom, start, end), got {len(fields)}: {line[:80]!r}"
            )
        chrom, start_text, end_text = fields[0].strip(), fields[1].strip(), fields[2].strip()
        try:
            start, end = int(start_text), int(end_text)
        except ValueError:
            raise BPNetInputError(
                f"{where}: expected integer start and end (columns 2 and 3), got {start_text!r} and {end_text!r}"
            ) from None
        if start < 0 or end <= start:
            raise BPNetInputError(
                f"{where}: expected 0 <= start < end (0-based, half-open), got start {start} and end {end}"
            )
        if chrom not in chrom_lengths:
            raise BPNetInputError(
                f"{where}: chromosome {chrom!r} is not in the genome FASTA {genome} (it has {shown})"
            )
        if end > chrom_lengths[chrom]:
            raise BPNetInputError(
                f"{where}: region {chrom}:{start}-{end} ends past the end of {chrom} "
                f"({chrom_lengths[chrom]} bp in {genome})"
            )
        name = fields[3].strip() if len(fields) > 3 else ""
        names.append(name if name and name != "." else f"{chrom}:{start}-{end}")
        chroms.append(chrom)
        starts.append(start)
        ends.append(end)
    if not names:
        raise BPNetInputError(
            f"BED file {path} holds no regions; expected lines 'chrom<TAB>start<TAB>end[<TAB>name]'"
        )
    return BedRegions(np.array(names, dtype=str), np.array(chroms, dtype=str),
                      np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))


def read_fasta_records(path: str | Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """The records of a FASTA file (optionally gzipped): names ``(n,)`` str (the header up to the
    first blank) and each sequence as ``uint8`` codes (:func:`bpnet.io.sequence.encode`).

    Each mistake is a :class:`BPNetInputError` naming the file (and line or record): no record,
    sequence before the first header, a header without a name, a record without sequence, a letter
    that is not DNA (A, C, G, T, N or an IUPAC ambiguity code, taken as N).
    """
    path = Path(path)
    names: list[str] = []
    records: list[np.ndarray] = []
    lines = read_text_lines(path, "FASTA file")
    header_line, name, chunks = 0, None, []

    def finish() -> None:
        if name is None:
            return
        if not chunks:
            raise BPNetInputError(f"{path}, line {header_line}: record {name!r} has no sequence")
        names.append(name)
        records.append(encode("".join(chunks), f"{path}, record {name!r} (header on line {header_line})"))

    for i, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            finish()
            fields = line[1:].split()
            if not fields:
                raise BPNetInputError(f"{path}, line {i}: a header '>' without a name")
            header_line, name, chunks = i, fields[0], []
        elif line.startswith(";"):  # an old-style comment
            continue
        elif name is None:
            raise BPNetInputError(
                f"{path}, line {i}: sequence before the first header line; expected '>name' first"
            )
        else:
            chunks.append(line)
    finish()
    if not names:
        raise BPNetInputError(f"FASTA file {path} holds no records; expected '>name' lines, each followed by sequence")
    return np.array(names, dtype=str), records


# --------------------------------------------------------------------------------------------
# Tiling regions of any length
# --------------------------------------------------------------------------------------------


def check_region_overlap(width: int, overlap: int, key: str = "predict_regions.<name>.tile_overlap") -> None:
    """A ``tile_overlap`` that leaves a step of at least 1 bp between the windows of a long region."""
    if not 0 <= overlap < (width + 1) // 2:
        raise BPNetInputError(
            f"config key {key}: {overlap} bp trimmed from each side of a {width} bp window leaves "
            f"nothing; expected 0 <= tile_overlap < {(width + 1) // 2} (half the window width)"
        )


def default_overlap(width: int) -> int:
    """``tile_overlap: null``: a fifth of the window width (200 bp of 1000, export's default)."""
    return width // 5


def region_tiles(lengths: np.ndarray, width: int, overlap: int) -> tuple[np.ndarray, ...]:
    """The windows that predict regions of ``lengths`` ``(n,)`` bp.

    Returns ``region``, ``start``, ``lo``, ``hi`` ``(n_tiles,)``, regions in order: window ``k``
    belongs to region ``region[k]``, covers ``[start[k], start[k] + width)`` relative to the region
    start (negative or past the region for a region shorter than ``width``, which sits in the
    centre) and gives the region's bases ``[lo[k], hi[k])``; these owned parts of one region are
    disjoint and cover ``[0, length)`` exactly once (:func:`bpnet.steps.export.owned_tiles`).
    """
    check_region_overlap(width, overlap)
    lengths = np.asarray(lengths, dtype=np.int64)
    unique, inverse = np.unique(lengths, return_inverse=True)  # regions of one length tile alike
    tiles = [owned_tiles(int(n), width, overlap) for n in unique]
    counts = np.array([len(t[0]) for t in tiles], dtype=np.int64)[inverse]
    region = np.repeat(np.arange(len(lengths), dtype=np.int64), counts)
    if len(lengths) == 0:
        return region, region.copy(), region.copy(), region.copy()
    start, lo, hi = (np.concatenate([tiles[j][k] for j in inverse]).astype(np.int64) for k in range(3))
    return region, start, lo, hi


def predict_tiled(
    lengths: np.ndarray,
    width: int,
    overlap: int,
    read: ReadTiles,
    predict: PredictFn,
    num_outputs: int,
    chunk_tiles: int = CHUNK_TILES,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predict regions of ``lengths`` ``(n,)`` bp window by window, ``chunk_tiles`` windows at a time.

    Args:
        read: ``read(region, start)`` -> codes ``(k, W)`` and control ``(k, W, 2)`` (or None) of
            ``k`` windows given by their region and start relative to it (:func:`region_tiles`).
        predict: ``predict(codes, control)`` -> ``(k, W, C)`` expected counts.
        progress: optional object with ``update(n_windows)``.

    Returns:
        ``profile`` float32 ``(lengths.sum(), C)`` (region ``i`` at rows ``offsets[i]:offsets[i+1]``)
        and ``offsets`` int64 ``(n + 1,)``.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    profile = np.empty((int(offsets[-1]), num_outputs), dtype=np.float32)
    region, start, lo, hi = region_tiles(lengths, width, overlap)
    for first in range(0, len(region), chunk_tiles):
        sel = slice(first, first + chunk_tiles)
        codes, control = read(region[sel], start[sel])
        values = predict(codes, control)
        # rows of the profile: a region's base b is row offsets[region] + b
        base = offsets[region[sel]]
        rows, owned = gather_owned(base + start[sel], base + lo[sel], base + hi[sel], values)
        profile[rows] = owned
        if progress is not None:
            progress.update(len(codes))
    return profile, offsets


def region_counts(profile: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The profile summed over each region: float64 ``(n, C)``."""
    if len(offsets) <= 1:
        return np.zeros((0, profile.shape[1]))
    return np.add.reduceat(profile, offsets[:-1], axis=0, dtype=np.float64)


def genome_reader(fasta, bed: BedRegions, chrom_lengths: Mapping[str, int], width: int,
                  control_paths: Sequence[str | Path] = ()) -> ReadTiles:
    """:data:`ReadTiles` for BED regions: windows of the genome, N (and control 0) past a
    chromosome end (:func:`bpnet.data.dataset.read_padded`)."""
    fa = open_fasta(fasta) if isinstance(fasta, (str, Path)) else fasta
    sizes = np.array([chrom_lengths[c] for c in bed.chrom], dtype=np.int64)

    def read(region: np.ndarray, start: np.ndarray):
        chroms, starts, chrom_len = bed.chrom[region], bed.start[region] + start, sizes[region]
        codes = read_padded(lambda c, s, n: read_fasta_windows(fa, c, s, n), chroms, starts, width,
                            chrom_len, N_CODE)
        control = None
        if control_paths:
            control = read_padded(lambda c, s, n: read_windows(list(control_paths), c, s, n),
                                  chroms, starts, width, chrom_len, 0.0)
        return codes, control

    return read


def records_reader(records: Sequence[np.ndarray], width: int) -> ReadTiles:
    """:data:`ReadTiles` for FASTA sequences: windows of the records, N outside a record."""

    def read(region: np.ndarray, start: np.ndarray):
        codes = np.full((len(region), width), N_CODE, dtype=np.uint8)
        for k, (r, s) in enumerate(zip(region.tolist(), start.tolist())):
            rec = records[r]
            lo, hi = max(s, 0), min(s + width, len(rec))
            codes[k, lo - s:hi - s] = rec[lo:hi]
        return codes, None

    return read


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def count_columns(tasks: Sequence[str], strands: int = 2) -> list[str]:
    """``<task>_total``, ``<task>_pos``, ``<task>_neg`` per task, in task order (``<task>_total``
    alone for unstranded tasks, ``strands`` 1)."""
    return [f"{task}_{what}" for task in tasks for what in ("total", *(STRANDS if strands == 2 else ()))]


def write_counts_tsv(path: str | Path, tasks: Sequence[str], names: np.ndarray, lengths: np.ndarray,
                     counts: np.ndarray, bed: BedRegions | None = None) -> None:
    """``counts.tsv``: one row per region (see the module docstring); values to 7 significant digits."""
    tasks = list(tasks)
    head = ["name", "chrom", "start", "end", "length"] if bed is not None else ["name", "length"]
    strands = counts.shape[1] // max(len(tasks), 1)
    per_task = counts.reshape(len(counts), len(tasks), strands)
    parts = [per_task.sum(axis=2, keepdims=True)] + ([per_task] if strands == 2 else [])
    values = np.concatenate(parts, axis=2).reshape(len(counts), -1)
    lines = ["\t".join(head + count_columns(tasks, strands))]
    for i in range(len(names)):
        ident = [str(names[i])]
        if bed is not None:
            ident += [str(bed.chrom[i]), str(int(bed.start[i])), str(int(bed.end[i]))]
        ident.append(str(int(lengths[i])))
        lines.append("\t".join(ident + [f"{v:.7g}" for v in values[i]]))
    Path(path).write_text("\n".join(lines) + "\n")


def stitch_regions(starts: np.ndarray, ends: np.ndarray, first_rows: np.ndarray,
                   profile: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The bases of regions ``[starts[i], ends[i])`` of one chromosome (in input order) with their
    predictions ``profile[first_rows[i] + b]``, as gap-free segments ``[(start, values (length, C))]``
    in increasing order. A base in several regions takes the value of the region whose centre is
    nearest to it, the first of them on a tie."""
    starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    lengths = ends - starts
    region = np.repeat(np.arange(len(starts)), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = starts[region] + within
    rows = np.asarray(first_rows, dtype=np.int64)[region] + within
    twice_distance = np.abs(2 * pos + 1 - (starts + ends)[region])
    order = np.lexsort((region, twice_distance, pos))  # by base, then distance, then input order
    pos, rows = pos[order], rows[order]
    first = np.ones(len(pos), dtype=bool)
    first[1:] = pos[1:] != pos[:-1]
    return split_contiguous(pos[first], profile[rows[first]])


def write_region_tracks(
    outdir: str | Path,
    predictions: str | Path,
    chrom_sizes: str | Path,
    tasks: Sequence[str],
    log: logging.Logger = logging.getLogger(__name__),
) -> None:
    """Rule ``region_tracks``: ``outdir/{task}.{pos,neg}.bw`` (``{task}.bw`` for unstranded tasks)
    from the ``predictions.npz`` of BED
    regions (:func:`predict_regions`): the profile at the regions' genome coordinates, per-base
    float32, every chromosome of ``chrom_sizes`` in the header (see :func:`stitch_regions` for
    overlapping regions)."""
    tasks = list(tasks)
    pred = read_npz(predictions, None, "region predictions", "region_predictions")
    if "chrom" not in pred:
        raise BPNetInputError(
            f"region predictions {predictions} hold FASTA sequences, which have no genome coordinates; "
            "bigWig tracks are written for BED regions only"
        )
    got = [str(t) for t in pred["tasks"]]
    if got != tasks:
        raise BPNetInputError(f"region predictions {predictions} have tasks {got}, but data.tasks is {tasks}; "
                              "rerun rule region_predictions")
    sizes = read_chrom_sizes(chrom_sizes)
    chroms = pred["chrom"].astype(str)
    unknown = sorted(set(chroms) - set(sizes))
    if unknown:
        raise BPNetInputError(
            f"regions of {predictions} lie on chromosome(s) {unknown} that the chrom sizes file "
            f"{chrom_sizes} does not list; data.chrom_sizes must describe data.genome_fasta"
        )
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    profile, offsets = pred["profile"], pred["offsets"]
    written = 0
    paths = track_paths(out, tasks, profile.shape[-1] // len(tasks))
    with TrackWriter(paths, sizes) as writer:
        for chrom in sizes:  # header order, as bigWig requires
            sel = np.flatnonzero(chroms == chrom)
            if len(sel) == 0:
                continue
            for start, values in stitch_regions(pred["start"][sel], pred["end"][sel], offsets[sel], profile):
                writer.add(chrom, start, values)
                written += len(values)
    log.info("wrote %d bases of %d regions x %d tracks to %s", written, len(chroms), len(paths), out)


# --------------------------------------------------------------------------------------------
# Rule entry point
# --------------------------------------------------------------------------------------------


def predict_regions(
    counts_path: str | Path,
    predictions_path: str | Path,
    tasks: Sequence[str],
    model: str | Path,
    dataset: str | Path,
    bed: str | Path | None = None,
    sequences: str | Path | None = None,
    genome: str | Path | None = None,
    control: Sequence[str | Path] = (),
    tile_overlap: int | None = None,
    rc_average: bool = False,
    device: str = "auto",
    kernels: str = "auto",
    threads: int = 1,
    chunk_tiles: int = CHUNK_TILES,
    name: str = "regions",
    log: logging.Logger = logging.getLogger(__name__),
) -> None:
    """Rule ``region_predictions``: predict the regions of ``bed`` (with the genome FASTA
    ``genome``) or the records of the FASTA ``sequences`` (exactly one of them) with the checkpoint
    ``model``; write ``counts_path`` (counts.tsv) and ``predictions_path`` (predictions.npz), laid
    out as the module docstring says.

    Args:
        tasks: data.tasks (the checkpoint must predict them, in this order).
        dataset: dataset.npz, whose window width ``W`` the model was trained on.
        control: the control bigWigs ``[pos, neg]`` when the model uses them (BED regions only: a
            FASTA sequence has no control track).
        tile_overlap: bp trimmed from each window edge inside a region longer than ``W``; None:
            :func:`default_overlap`.
        rc_average: average each window with its reverse complement (predict.reverse_complement_average).
        name: the predict_regions entry, for messages and the log.
    """
    if (bed is None) == (sequences is None):
        raise ValueError("predict_regions: give exactly one of bed and sequences")
    tasks = list(tasks)
    key = f"predict_regions.{name}"
    width = int(read_npz(dataset, ["width"], "dataset", "build_dataset")["width"])
    overlap = default_overlap(width) if tile_overlap is None else int(tile_overlap)
    check_region_overlap(width, overlap, f"{key}.tile_overlap")
    net = load_checkpoint(model, tasks=tasks)
    control_paths = list(control) if net.config.use_control else []
    if net.config.use_control and (sequences is not None or len(control_paths) != net.config.num_strands):
        raise BPNetInputError(
            f"config key {key}: checkpoint {model} uses a control track, which "
            + ("FASTA sequences do not have; predict BED regions of the genome instead" if sequences is not None
               else "does not reach the rule: set data.control")
        )
    if bed is not None:
        if genome is None:
            raise ValueError("predict_regions: BED regions need the genome FASTA")
        fa = open_fasta(genome)
        chrom_lengths = {c: len(fa[c]) for c in fa.keys()}
        regions = read_bed_regions(bed, chrom_lengths, genome)
        names, lengths = regions.name, regions.length
        read = genome_reader(fa, regions, chrom_lengths, width, control_paths)
        source = f"regions of {bed}"
    else:
        regions = None
        names, records = read_fasta_records(sequences)
        lengths = np.array([len(r) for r in records], dtype=np.int64)
        read = records_reader(records, width)
        source = f"sequences of {sequences}"
    device = setup_inference(net, device, kernels, threads, log)
    n_tiles = len(region_tiles(lengths, width, overlap)[0])
    log.info("%s: %d %s of %d-%d bp (%d shorter than the %d bp window, centred in it%s), %d windows "
             "(step %d bp, tile_overlap %d) on %s%s", name, len(names), source, lengths.min(), lengths.max(),
             int((lengths < width).sum()), width, ", N around them" if sequences is not None else "",
             n_tiles, width - 2 * overlap, overlap, device,
             ", averaged with the reverse complement" if rc_average else "")
    batch = inference_batch_size(device)

    def predict(codes, ctl):
        return predict_profile(net, codes, ctl, batch_size=batch, device=device, rc_average=rc_average)

    with progress_bar(log, n_tiles, f"predict {name}", unit="window") as bar:
        profile, offsets = predict_tiled(lengths, width, overlap, read, predict, net.config.num_outputs,
                                         chunk_tiles, bar)
    counts = region_counts(profile, offsets)
    arrays = {"tasks": np.array(tasks, dtype=str), "name": names, "length": lengths, "offsets": offsets,
              "profile": profile, "counts": counts, "width": np.int64(width), "tile_overlap": np.int64(overlap)}
    if regions is not None:
        arrays.update(chrom=regions.chrom, start=regions.start, end=regions.end)
    write_npz(predictions_path, arrays)
    write_counts_tsv(counts_path, tasks, names, lengths, counts, regions)
    log.info("wrote %d bp x %d tracks of %d %s to %s and %s", len(profile), profile.shape[1], len(names),
             "regions" if regions is not None else "sequences", predictions_path, counts_path)
