"""Export predicted tracks (postprocessed expected counts) as bigWig files, one per task and strand.

Two kinds of regions (config key ``export.regions``):

- ``test`` (default): the predictions of rule ``predict`` (``predictions/model.npz``) on the
  dataset windows of the test split. Windows may overlap; every base takes the prediction of the
  window whose centre is nearest to it, because a window's prediction is best at its centre (it
  sees the most sequence context there, and the model was trained on summit-centred windows).
  Bases covered by no test window have no data.
- ``genome`` or a list of chromosomes: every chromosome is tiled end to end with the model. Tiles
  have the training width ``W`` and step ``W - 2 * tile_overlap``; the last tile is aligned to the
  chromosome end (never padded past it), and a chromosome shorter than ``W`` is one tile with the
  chromosome in its centre, padded with N on both sides and cropped back. Tiles are stitched by
  the same nearest-centre rule, which keeps only the central part of each tile: at least
  ``tile_overlap`` bp are trimmed from every tile edge that is not a chromosome end. Tiles are
  predicted in chunks, so memory stays bounded for a mammalian genome.

Each output value is the tile's (window's) postprocessed track ``softmax(profile_logits) *
expm1(count_logits)``, i.e. normalised over the tile it comes from, just as the model was trained
on windows of width ``W``. Channel ``2 t`` is task ``t`` on the + strand (``{task}.pos.bw``),
channel ``2 t + 1`` the - strand (``{task}.neg.bw``).

Every bigWig header lists all chromosomes of the chrom sizes file, so IGV and the UCSC browser
load the tracks beside the observed ones. Values are written per base (fixed step 1, span 1), one
chunk at a time, by :class:`TrackWriter`. (:func:`bpnet.io.tracks.write_bigwig` needs the dense
arrays of all chromosomes of one file in one call; a genome of ``2 T`` channels would not fit in
memory, and run-length encoding gains nothing on real-valued predictions.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from bpnet.errors import BPNetInputError
from bpnet.hardware import setup_inference
from bpnet.io.npz import read_npz
from bpnet.io.sequence import N_CODE, open_fasta, read_fasta_windows
from bpnet.io.tracks import TrackWriter, open_bigwig, read_chrom_sizes, read_windows, track_paths
from bpnet.model.weights import load_checkpoint
from bpnet.progress import progress_bar
from bpnet.steps.predict import predict_profile

# Tiles predicted per chunk: 512 tiles of 1 kb with 8 channels are 16 MB of float32 predictions.
CHUNK_TILES = 512

# predict(codes (n, W) uint8, control (n, W, 2) float32 or None) -> (n, W, C) float32
PredictFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


# --------------------------------------------------------------------------------------------
# Stitching overlapping windows
# --------------------------------------------------------------------------------------------


def owned_intervals(starts: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of each window that is nearer to its centre than to any other window's centre.

    Args:
        starts: ``(n,)`` starts of windows ``[start, start + width)`` on one chromosome, sorted.
        width: window width ``W``.

    Returns:
        ``lo, hi`` ``(n,)``: window ``i`` owns ``[lo[i], hi[i])`` (empty for all but the last of
        several windows with the same start). The owned parts are disjoint, increasing, and together cover
        every base that any window covers.

    Base ``p`` (midpoint ``p + 0.5``) is nearer to the centre ``s_i + W / 2`` of window ``i``
    than to the next centre when ``p < (s_i + s_{i+1} + W) / 2``, so the boundary between two
    consecutive windows is ``(s_i + s_{i+1} + W) // 2``; a base exactly halfway goes to the
    downstream window. The nearest centre always belongs to a window covering the base, so
    clipping to each window's own extent leaves uncovered gaps uncovered.
    """
    starts = np.asarray(starts, dtype=np.int64)
    if np.any(np.diff(starts) < 0):
        raise ValueError("owned_intervals: starts must be sorted")
    # Of several windows at the same start, the last one owns their bases (ties go downstream).
    last = np.append(starts[1:] != starts[:-1], True)
    u = starts[last]
    bounds = (u[:-1] + u[1:] + width) // 2
    u_lo, u_hi = u.copy(), u + width
    u_lo[1:] = np.maximum(u_lo[1:], bounds)
    u_hi[:-1] = np.minimum(u_hi[:-1], bounds)
    lo, hi = starts.copy(), starts.copy()  # duplicates: empty
    lo[last], hi[last] = u_lo, u_hi
    return lo, hi


def gather_owned(
    starts: np.ndarray, lo: np.ndarray, hi: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pick each window's owned bases out of its predictions, without a per-window loop.

    Args:
        starts: ``(n,)`` window starts; ``values[i, j]`` is the value at base ``starts[i] + j``.
        lo, hi: ``(n,)`` owned interval of each window (see :func:`owned_intervals`).
        values: ``(n, W, C)`` predictions.

    Returns:
        ``positions`` ``(m,)`` increasing absolute bases and their ``values`` ``(m, C)``.
    """
    lengths = np.maximum(hi - lo, 0)
    rows = np.repeat(np.arange(len(starts)), lengths)
    first = np.cumsum(lengths) - lengths  # index of each window's first owned base in the output
    positions = lo[rows] + np.arange(lengths.sum()) - first[rows]
    return positions, values[rows, positions - starts[rows]]


def split_contiguous(positions: np.ndarray, values: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Cut increasing ``positions`` ``(m,)`` / ``values`` ``(m, C)`` into gap-free segments.

    Returns ``[(start, values (length, C)), ...]``, one segment per run of adjacent bases.
    """
    if len(positions) == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    seg_starts = positions[np.concatenate([[0], breaks])]
    return [(int(s), v) for s, v in zip(seg_starts, np.split(values, breaks))]


def stitch_windows(starts: np.ndarray, values: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Stitch predictions of possibly overlapping windows on one chromosome, nearest centre wins.

    Args:
        starts: ``(n,)`` window starts (any order).
        values: ``(n, W, C)`` predictions of the windows.

    Returns:
        Gap-free segments ``[(start, values (length, C)), ...]`` in increasing order; bases in no
        window are in no segment.
    """
    starts = np.asarray(starts, dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    starts = starts[order]
    lo, hi = owned_intervals(starts, values.shape[1])
    positions, owned = gather_owned(starts, lo, hi, values[order])
    return split_contiguous(positions, owned)


# --------------------------------------------------------------------------------------------
# Tiling chromosomes
# --------------------------------------------------------------------------------------------


def check_tile_overlap(width: int, overlap: int) -> int:
    """The tile step ``width - 2 * overlap``; an overlap leaving no step is a config error."""
    step = width - 2 * overlap
    if step < 1:
        raise BPNetInputError(
            f"config key export.tile_overlap: {overlap} bp trimmed from each side of a {width} bp tile "
            f"leaves nothing; expected tile_overlap < {(width + 1) // 2} (half the window width)"
        )
    return step


def tile_starts(chrom_len: int, width: int, overlap: int) -> np.ndarray:
    """Starts ``(n,)`` of the tiles covering ``[0, chrom_len)``.

    Tiles step by ``width - 2 * overlap`` from 0; the last tile starts at ``chrom_len - width`` so
    that it ends exactly at the chromosome end. A chromosome shorter than ``width`` gets one tile
    starting at ``-((width - chrom_len) // 2)``: the chromosome sits in the tile's centre and the
    bases outside it are N.
    """
    step = check_tile_overlap(width, overlap)
    if chrom_len <= width:
        return np.array([-((width - chrom_len) // 2)], dtype=np.int64)
    return np.append(np.arange(0, chrom_len - width, step, dtype=np.int64), chrom_len - width)


def read_tiles(
    fasta,
    chrom: str,
    chrom_len: int,
    starts: np.ndarray,
    width: int,
    control_paths: Sequence[str | Path] = (),
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sequence codes ``(n, W)`` and control ``(n, W, 2)`` (or None) of tiles on one chromosome.

    Only a tile of a chromosome shorter than ``W`` reaches past the chromosome; its missing bases
    are N (code 4) and its missing control is 0.
    """
    if chrom_len >= width:
        codes = read_fasta_windows(fasta, [chrom] * len(starts), starts, width)
        control = None
        if control_paths:
            control = read_windows(list(control_paths), [chrom] * len(starts), starts, width)
        return codes, control
    # One padded tile: read the whole chromosome and place it at offset -start.
    (start,) = starts
    off = int(-start)
    codes = np.full((1, width), N_CODE, dtype=np.uint8)
    codes[:, off:off + chrom_len] = read_fasta_windows(fasta, [chrom], [0], chrom_len)
    control = None
    if control_paths:
        control = np.zeros((1, width, len(control_paths)), dtype=np.float32)
        control[:, off:off + chrom_len] = read_windows(list(control_paths), [chrom], [0], chrom_len)
    return codes, control


def owned_tiles(chrom_len: int, width: int, overlap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tile starts ``(n,)`` of a chromosome and the bases ``[lo, hi)`` ``(n,)`` each tile owns
    (clipped to the chromosome: only the padded tile of a short chromosome reaches out)."""
    starts = tile_starts(chrom_len, width, overlap)
    lo, hi = owned_intervals(starts, width)
    return starts, np.clip(lo, 0, chrom_len), np.clip(hi, 0, chrom_len)


def part_tile_ranges(
    chrom_sizes: Mapping[str, int], chroms: Sequence[str], width: int, overlap: int, part: int, n_parts: int,
    chunk_tiles: int = CHUNK_TILES,
) -> list[tuple[str, int, int, int, int]]:
    """What part ``part`` (0-based) of an export in ``n_parts`` parts tiles.

    The tiles of each chromosome are predicted in chunks of ``chunk_tiles`` from its first
    tile; the chunks of ``chroms``, in order, are cut into ``n_parts`` runs of nearly equal
    length (jobs of equal cost that run in parallel and are redone alone after a kill). A part
    holds whole chunks, so every tile is predicted in the same batch whatever ``n_parts`` is,
    and the tracks do not depend on it to the last bit.

    Returns:
        ``[(chrom, first tile, stop tile, start bp, end bp), ...]``: tile ranges of the
        chromosomes the part touches and the bases ``[start, end)`` those tiles own.
    """
    if not 0 <= part < n_parts:
        raise ValueError(f"part {part} of {n_parts}: expected 0 <= part < n_parts")
    n_tiles = [len(tile_starts(chrom_sizes[c], width, overlap)) for c in chroms]
    n_chunks = [-(-n // chunk_tiles) for n in n_tiles]
    total = sum(n_chunks)
    lo, hi = part * total // n_parts, (part + 1) * total // n_parts
    out, offset = [], 0
    for chrom, n, k in zip(chroms, n_tiles, n_chunks):
        first, stop = max(lo - offset, 0), min(hi - offset, k)
        if first < stop:
            first, stop = first * chunk_tiles, min(stop * chunk_tiles, n)
            _, own_lo, own_hi = owned_tiles(chrom_sizes[chrom], width, overlap)
            out.append((chrom, first, stop, int(own_lo[first]), int(own_hi[stop - 1])))
        offset += k
    return out


def tile_chromosome(
    fasta,
    chrom: str,
    chrom_len: int,
    width: int,
    overlap: int,
    predict: PredictFn,
    control_paths: Sequence[str | Path] = (),
    chunk_tiles: int = CHUNK_TILES,
    progress=None,
    tiles: tuple[int, int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Predict one chromosome tile by tile; yield stitched segments covering ``[0, chrom_len)``
    (or the bases that tiles ``tiles = (first, stop)`` own: one part of an export, see
    :func:`part_tile_ranges`).

    Args:
        fasta: indexed FASTA path or open :class:`pyfaidx.Fasta`.
        chrom, chrom_len: the chromosome and its length.
        width: tile width ``W`` (the training window width).
        overlap: ``export.tile_overlap``.
        predict: ``predict(codes (n, W), control (n, W, 2) | None) -> (n, W, C)``.
        control_paths: control bigWigs [pos, neg] when the model uses a control track.
        chunk_tiles: tiles read and predicted at a time (bounds memory).
        progress: optional object with ``update(n_tiles)`` (e.g. tqdm).

    Yields:
        ``(start, values (length, C))``, one contiguous segment per chunk, in order; together the
        segments cover the chromosome (the tiles' owned bases) exactly once.
    """
    if isinstance(fasta, (str, Path)):
        fasta = open_fasta(fasta)  # once, not per chunk
    starts, lo, hi = owned_tiles(chrom_len, width, overlap)
    begin, stop = tiles if tiles is not None else (0, len(starts))
    for first in range(begin, stop, chunk_tiles):
        sel = slice(first, min(first + chunk_tiles, stop))
        codes, control = read_tiles(fasta, chrom, chrom_len, starts[sel], width, control_paths)
        values = predict(codes, control)
        positions, owned = gather_owned(starts[sel], lo[sel], hi[sel], values)
        if progress is not None:
            progress.update(len(codes))
        yield int(positions[0]), owned


def resolve_regions(regions, chrom_sizes: Mapping[str, int], chrom_sizes_path: str | Path) -> list[str]:
    """The chromosomes to tile for ``export.regions`` (``"genome"`` or a list), in chrom sizes order."""
    if regions == "genome":
        return list(chrom_sizes)
    if isinstance(regions, str) or not isinstance(regions, Sequence) or not regions:
        raise BPNetInputError(
            f"config key export.regions: expected 'test', 'genome' or a non-empty list of chromosomes, "
            f"got {regions!r}"
        )
    unknown = [c for c in regions if c not in chrom_sizes]
    if unknown:
        raise BPNetInputError(
            f"config key export.regions: chromosome(s) {unknown} are not in the chrom sizes file "
            f"{chrom_sizes_path} (it has {', '.join(list(chrom_sizes)[:8])}"
            f"{', ...' if len(chrom_sizes) > 8 else ''})"
        )
    wanted = set(regions)
    return [c for c in chrom_sizes if c in wanted]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# The two modes
# --------------------------------------------------------------------------------------------


def load_test_predictions(
    predictions_path: str | Path, dataset_path: str | Path, tasks: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's predictions on the test windows.

    Returns:
        ``chroms`` ``(n,)`` str, ``starts`` ``(n,)`` int64 (core window starts) and ``profile``
        ``(n, W, 2 T)`` float32 of the predicted rows whose dataset split is ``test``.
    """
    pred = read_npz(predictions_path, ["index", "profile", "tasks"], "predictions", "predict")
    index, profile, pred_tasks = pred["index"], pred["profile"], [str(t) for t in pred["tasks"]]
    if pred_tasks != list(tasks):
        raise BPNetInputError(
            f"predictions file {predictions_path} has tasks {pred_tasks}, but data.tasks is {list(tasks)}; "
            "rerun rule predict"
        )
    ds = read_npz(dataset_path, ["chrom", "start", "split", "width"], "dataset", "build_dataset")
    chroms, starts, split, width = ds["chrom"], ds["start"], ds["split"], int(ds["width"])
    if profile.ndim != 3 or profile.shape[1] != width or profile.shape[2] not in (len(tasks), 2 * len(tasks)):
        raise BPNetInputError(
            f"predictions file {predictions_path}: profile has shape {profile.shape}, expected "
            f"(n, {width}, {2 * len(tasks)}) (or {len(tasks)} channels, unstranded) for the dataset "
            f"{dataset_path}; rerun rule predict"
        )
    if len(index) and (index.min() < 0 or index.max() >= len(chroms)):
        raise BPNetInputError(
            f"predictions file {predictions_path} indexes rows up to {index.max()}, but the dataset "
            f"{dataset_path} has {len(chroms)} windows; rerun rule predict"
        )
    test = split[index] == "test"
    if not test.any():
        raise BPNetInputError(
            f"predictions file {predictions_path} holds no test windows: config key export.regions is "
            "'test', so add test to evaluation.splits, or export a genome tiling (export.regions: genome)"
        )
    rows = index[test]
    return chroms[rows].astype(str), starts[rows].astype(np.int64), profile[test]


def export_test_windows(
    writer: TrackWriter, chroms: np.ndarray, starts: np.ndarray, profile: np.ndarray
) -> int:
    """Write stitched window predictions ``profile`` ``(n, W, C)``; returns the bases written."""
    chroms = np.asarray(chroms).astype(str)
    unknown = sorted(set(chroms) - set(writer.chrom_sizes))
    if unknown:
        raise BPNetInputError(
            f"test windows lie on chromosome(s) {unknown} that the chrom sizes file does not list; "
            "data.chrom_sizes must describe the genome the windows came from"
        )
    written = 0
    for chrom in writer.chrom_sizes:  # header order, as bigWig requires
        sel = np.flatnonzero(chroms == chrom)
        if len(sel) == 0:
            continue
        for start, values in stitch_windows(starts[sel], profile[sel]):
            writer.add(chrom, start, values)
            written += len(values)
    return written


# Bases read back at a time when the parts are merged (8 tracks x 1 Mb of float32: 32 MB).
MERGE_BLOCK_BP = 1 << 20
SEGMENTS_FILE = "segments.tsv"


def export_part_tiles(
    writer: TrackWriter,
    fasta,
    ranges: Sequence[tuple[str, int, int, int, int]],
    width: int,
    overlap: int,
    predict: PredictFn,
    control_paths: Sequence[str | Path] = (),
    chunk_tiles: int = CHUNK_TILES,
    progress=None,
) -> None:
    """Predict and write the tile ranges of one part (:func:`part_tile_ranges`)."""
    if isinstance(fasta, (str, Path)):
        fasta = open_fasta(fasta)
    for chrom, first, stop, _, _ in ranges:
        for start, values in tile_chromosome(
            fasta, chrom, writer.chrom_sizes[chrom], width, overlap, predict, control_paths,
            chunk_tiles, progress, tiles=(first, stop),
        ):
            writer.add(chrom, start, values)


def merge_parts(writer: TrackWriter, part_dirs: Sequence[str | Path], block_bp: int = MERGE_BLOCK_BP) -> int:
    """Copy the parts' tracks, in part order, into ``writer`` (the genome-wide files).

    Each part directory holds the writer's file names (``{task}.{strand}.bw``, no zoom levels)
    and ``segments.tsv`` (chrom, start, end: the bases its tiles own). Values are read back
    ``block_bp`` bases at a time and written through the same :meth:`TrackWriter.add` as a
    single-job export, so the merged files equal it (bases without data in a part, below
    ``export.floor``, come back as NaN and are left out again). Returns the bases merged.
    """
    merged = 0
    names = [p.name for p in writer.paths]
    for part in map(Path, part_dirs):
        segments_path = part / SEGMENTS_FILE
        if not segments_path.exists():
            raise BPNetInputError(f"export part {part} lacks {SEGMENTS_FILE}; rerun its export_part job")
        segments = [line.split("\t") for line in segments_path.read_text().splitlines()[1:] if line]
        files = [open_bigwig(part / name) for name in names]
        try:
            for chrom, start, end in segments:
                start, end = int(start), int(end)
                for lo in range(start, end, block_bp):
                    hi = min(lo + block_bp, end)
                    values = np.stack([bw.values(chrom, lo, hi, numpy=True) for bw in files], axis=1)
                    writer.add(chrom, lo, values)
                    merged += hi - lo
        finally:
            for bw in files:
                bw.close()
    return merged


# --------------------------------------------------------------------------------------------
# Rule entry point
# --------------------------------------------------------------------------------------------


def _check_outputs(outputs: Sequence[str | Path], tasks: Sequence[str]) -> list[Path]:
    paths = [Path(p) for p in outputs]
    expected = [p.name for p in track_paths(".", tasks, max(1, len(paths) // max(len(tasks), 1)))]
    if [p.name for p in paths] != expected:
        raise ValueError(f"export outputs {[p.name for p in paths]} != channel order {expected}")
    return paths


def export_tracks(
    outputs: Sequence[str],
    tasks: Sequence[str],
    export_config: Mapping[str, Any],
    chrom_sizes: str,
    dataset: str | None = None,
    predictions: str | None = None,
    parts: Sequence[str] = (),
    log: logging.Logger = logging.getLogger(__name__),
) -> None:
    """Rule ``export_tracks_<exp>``: write ``{task}.{pos,neg}.bw`` (``outputs``, channel order).

    Args:
        outputs: the ``S T`` bigWigs, in the order of :func:`bpnet.io.tracks.track_paths`
            (``S`` 2, or 1 for unstranded tasks).
        tasks: task names.
        export_config: the config's ``export`` section (``regions``, and ``decimals`` /
            ``floor``: compact tracks, see :class:`bpnet.io.tracks.TrackWriter`).
        chrom_sizes: the genome's chrom sizes (every chromosome goes into each header).
        dataset, predictions: test mode: dataset.npz (the windows) and rule predict's model.npz.
        parts: tiling: the part directories of rule ``export_part`` (:func:`export_part`), in order.
    """
    tasks = list(tasks)
    paths = _check_outputs(outputs, tasks)
    sizes = read_chrom_sizes(chrom_sizes)
    compact = export_config.get("decimals"), export_config.get("floor")
    if export_config["regions"] == "test":
        chroms, starts, profile = load_test_predictions(predictions, dataset, tasks)
        if profile.shape[2] != len(paths):
            raise BPNetInputError(f"predictions file {predictions} has {profile.shape[2]} channels for "
                                  f"{len(paths)} track files; rerun rule predict")
        log.info("stitching %d test windows of %d bp on %d chromosome(s), nearest window centre wins",
                 len(starts), profile.shape[1], len(set(chroms)))
        with TrackWriter(paths, sizes, *compact) as writer:
            written = export_test_windows(writer, chroms, starts, profile)
        log.info("wrote %d bases x %d tracks to %s", written, len(paths), paths[0].parent)
        return
    log.info("merging %d export parts into %d genome-wide tracks", len(parts), len(paths))
    with TrackWriter(paths, sizes, *compact) as writer:
        merged = merge_parts(writer, parts)
    log.info("wrote %d bp x %d tracks to %s", merged, len(paths), paths[0].parent)


def export_part(
    outdir: str,
    tasks: Sequence[str],
    export_config: Mapping[str, Any],
    chrom_sizes: str,
    dataset: str,
    model: str,
    fasta: str,
    part: int,
    n_parts: int,
    control: Sequence[str] = (),
    device: str = "auto",
    kernels: str = "auto",
    threads: int = 1,
    chunk_tiles: int = CHUNK_TILES,
    log: logging.Logger = logging.getLogger(__name__),
) -> None:
    """Rule ``export_part``: predict part ``part`` (0-based) of ``n_parts`` of a genome tiling.

    Writes ``outdir/{task}.{strand}.bw`` (no zoom levels; :func:`merge_parts` joins the parts)
    and ``outdir/segments.tsv`` (the bases written).

    Args:
        export_config: the config's ``export`` section (``regions``: ``genome`` or chromosomes,
            ``tile_overlap``, ``decimals`` / ``floor``, ``reverse_complement_average``).
        dataset: dataset.npz (the training width W of the tiles).
        model, fasta, control: the checkpoint, the genome, and the control bigWigs
            ``[pos, neg]`` when the model uses them.
        device, kernels, threads: where and how the tiles are predicted.
        chunk_tiles: tiles predicted at a time (see :func:`part_tile_ranges`).
    """
    tasks = list(tasks)
    sizes = read_chrom_sizes(chrom_sizes)
    overlap = int(export_config["tile_overlap"])
    chroms = resolve_regions(export_config["regions"], sizes, chrom_sizes)
    width = int(read_npz(dataset, ["width"], "dataset", "build_dataset")["width"])
    check_tile_overlap(width, overlap)
    net = load_checkpoint(model, tasks=tasks)
    device = setup_inference(net, device, kernels, threads, log)
    control_paths = list(control) if net.config.use_control else []
    if net.config.use_control and len(control_paths) != net.config.num_strands:
        raise BPNetInputError(
            f"checkpoint {model} uses a control track, but no control bigWigs reach the rule: "
            "set model.use_control: true and data.control.pos / data.control.neg"
        )
    ranges = part_tile_ranges(sizes, chroms, width, overlap, part, n_parts, chunk_tiles)
    half_field = net.config.receptive_field // 2 + net.config.profile_kernel // 2
    log.info("part %d of %d: %s; %d bp tiles, step %d bp (tile_overlap %d; the model sees +-%d bp) on %s",
             part + 1, n_parts, ", ".join(f"{c}:{lo}-{hi}" for c, _, _, lo, hi in ranges) or "no tiles",
             width, width - 2 * overlap, overlap, half_field, device)
    rc_average = bool(export_config.get("reverse_complement_average", False))

    def predict(codes, control):
        return predict_profile(net, codes, control, device=device, rc_average=rc_average)

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    compact = export_config.get("decimals"), export_config.get("floor")
    total = sum(stop - first for _, first, stop, _, _ in ranges)
    paths = track_paths(out, tasks, net.config.num_strands)
    with TrackWriter(paths, sizes, *compact, zooms=0) as writer, \
            progress_bar(log, total, f"export part {part + 1}/{n_parts}", unit="tile") as bar:
        export_part_tiles(writer, fasta, ranges, width, overlap, predict, control_paths, chunk_tiles, bar)
    lines = ["chrom\tstart\tend"] + [f"{c}\t{lo}\t{hi}" for c, _, _, lo, hi in ranges]
    (out / SEGMENTS_FILE).write_text("\n".join(lines) + "\n")
    log.info("wrote %d tiles, %d bp x %d tracks to %s", total, sum(hi - lo for *_, lo, hi in ranges),
             len(paths), out)
