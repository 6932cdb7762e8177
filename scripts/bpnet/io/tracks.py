"""BigWig tracks: chromosome sizes, block-wise reading of many windows, writing dense arrays.

Conventions: windows are ``[start, start + length)`` in 0-based half-open coordinates; missing
bigWig values (no data) are zeros; a window array is ``(n_windows, length, n_tracks)``.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pyBigWig
from numpy.lib.stride_tricks import sliding_window_view

from bpnet.errors import BPNetInputError
from bpnet.io.chroms import AliasedBigWig

# Strand names of a task's two channels: channel 2 t is task t on +, 2 t + 1 on -. Unstranded
# tasks have one channel, channel t, and no strand in their file names.
STRANDS = ("pos", "neg")

# Windows on one chromosome are read together while the span stays below this many bases, so a
# block read covers many windows and memory stays bounded (8 Mb of float32 = 32 MB per track).
BLOCK_BP = 8_000_000
# A gap between consecutive windows longer than this starts a new block: reading it would cost more
# than a new call (on 10k windows of a 405 Mb genome, 8 tracks: 1,337 windows/s without the split,
# 2,698 with 100 kb, 1,630 with 10 kb).
MAX_GAP_BP = 100_000


def read_chrom_sizes(path: str | Path) -> dict[str, int]:
    """Read a two-column ``chrom<TAB>size`` file into an ordered dict; bad lines are errors."""
    sizes: dict[str, int] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError as err:
        raise BPNetInputError(f"chrom sizes file {path} does not exist") from err
    for i, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 2 or not fields[1].isdigit():
            raise BPNetInputError(
                f"{path}, line {i}: expected 'chrom<TAB>size' with an integer size, got {line!r}"
            )
        sizes[fields[0]] = int(fields[1])
    if not sizes:
        raise BPNetInputError(f"chrom sizes file {path} lists no chromosomes")
    return sizes


_BW_MAGIC = 0x888FFC26
_RTREE_MAGIC = 0x2468ACE0


def check_bigwig_complete(path: str | Path) -> None:
    """Check that a bigWig is not cut short or corrupt, reading only its header and index headers.

    The header (first 64 bytes) and the zoom headers give the offsets of the chromosome tree, the
    data index and every zoom level's index; each index starts with an R-tree header that records
    where its data ends, and its root node lists its items. A short copy (interrupted download or
    copy) leaves some of these beyond the end of the file, which pyBigWig does not notice when
    opening it (and silently reads no data there); the file must also end with the bigWig magic
    number, as the writers leave it. Costs a few small reads, no scan of the data.
    """

    path = Path(path)
    size = path.stat().st_size
    hint = "; the file is truncated or corrupt (an interrupted copy or download?): fetch it again"
    with open(path, "rb") as fh:

        def fits(offset: int, n: int, what: str) -> None:
            if offset < 0 or offset + n > size:
                raise BPNetInputError(
                    f"bigWig {path}: the {what} at byte {offset} lies beyond the end of the file "
                    f"({size} bytes){hint}"
                )

        def read(offset: int, n: int, what: str) -> bytes:
            fits(offset, n, what)
            fh.seek(offset)
            return fh.read(n)

        head = read(0, 64, "header")
        magic = struct.unpack("<I", head[:4])[0]
        endian = "<"
        if magic != _BW_MAGIC:
            if struct.unpack(">I", head[:4])[0] != _BW_MAGIC:
                raise BPNetInputError(f"{path} is not a bigWig file (bad magic number)")
            endian = ">"
        _, zoom_levels, chrom_tree, full_data, full_index = struct.unpack(
            endian + "HHQQQ", head[4:32]
        )
        read(chrom_tree, 4, "chromosome tree")
        read(full_data, 4, "data section")
        indexes = [("data index", full_index)]
        zooms = read(64, 24 * zoom_levels, "zoom level headers")
        for z in range(zoom_levels):
            data_off, index_off = struct.unpack(endian + "QQ", zooms[24 * z + 8:24 * z + 24])
            read(data_off, 4, f"zoom level {z + 1} data")
            indexes.append((f"zoom level {z + 1} index", index_off))
        # Writers (UCSC kent tools, libBigWig/pyBigWig/deepTools) end the file with the magic.
        if struct.unpack(endian + "I", read(size - 4, 4, "end signature"))[0] != _BW_MAGIC:
            raise BPNetInputError(
                f"bigWig {path} does not end with the bigWig signature{hint}"
            )
        for what, offset in indexes:
            if offset == 0:  # no index (a bigWig without data)
                continue
            rtree = read(offset, 48, what)
            if struct.unpack(endian + "I", rtree[:4])[0] != _RTREE_MAGIC:
                raise BPNetInputError(f"bigWig {path}: the {what} is corrupt (bad magic){hint}")
            end_data = struct.unpack(endian + "Q", rtree[40 - 8:40])[0]
            if end_data > size:
                raise BPNetInputError(
                    f"bigWig {path}: the {what} points at data up to byte {end_data}, beyond "
                    f"the end of the file ({size} bytes){hint}"
                )
            is_leaf, _, count = struct.unpack(endian + "BBH", read(offset + 48, 4, what))
            item = 32 if is_leaf else 24
            items = read(offset + 52, item * count, f"{what} root node")
            for i in range(count):
                if is_leaf:
                    blk_off, blk_size = struct.unpack(endian + "QQ", items[i * 32 + 16:i * 32 + 32])
                    fits(blk_off, blk_size, f"{what} data block")
                else:
                    child = struct.unpack(endian + "Q", items[i * 24 + 16:i * 24 + 24])[0]
                    read(child, 4, f"{what} node")


def bigwig_nonfinite(path: str | Path) -> str | None:
    """What non-finite values a bigWig stores: ``"inf"``, ``"nan"`` or None (all finite).

    Reads the file's total summary (min, max, sum, sum of squares over every stored value; header
    bytes 44-52 give its offset): an inf shows in the min or max, a NaN (ignored by the min and
    max) in the sum. Positions with no data are not stored and do not count. pyBigWig's
    ``header()`` cannot be used: it crashes on a non-finite summary.
    """

    with open(path, "rb") as fh:
        head = fh.read(64)
        endian = "<" if struct.unpack("<I", head[:4])[0] == _BW_MAGIC else ">"
        offset = struct.unpack(endian + "Q", head[44:52])[0]
        if offset == 0:  # no summary written
            return None
        fh.seek(offset)
        raw = fh.read(40)
    if len(raw) < 40:
        raise BPNetInputError(f"bigWig {path}: the total summary lies beyond the end of the file")
    _, low, high, total, squares = struct.unpack(endian + "Qdddd", raw)
    if math.isinf(low) or math.isinf(high):
        return "inf"
    if not (math.isfinite(total) and math.isfinite(squares)):
        return "nan"
    return None


def open_bigwig(path: str | Path, aliases: Mapping[str, str] | None = None):
    """Open a bigWig for reading; a missing, unreadable, truncated or corrupt file is a clear
    error (see :func:`check_bigwig_complete`). With ``aliases`` (``data.chrom_aliases``) it is read
    with the genome's chromosome names (:class:`bpnet.io.chroms.AliasedBigWig`)."""

    if not Path(path).exists():
        raise BPNetInputError(f"bigWig file {path} does not exist")
    if Path(path).is_file():
        check_bigwig_complete(path)
    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError as err:
        raise BPNetInputError(f"cannot open {path} as a bigWig: {err}") from err
    if bw is None or not bw.isBigWig():
        raise BPNetInputError(f"{path} is not a bigWig file")
    return AliasedBigWig(bw, aliases) if aliases else bw


def _blocks(starts: np.ndarray, length: int, block_bp: int) -> Iterable[np.ndarray]:
    """Split window indices (sorted by start) into runs whose span is at most ``block_bp`` and
    whose consecutive starts are at most ``MAX_GAP_BP`` apart."""
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    gaps = np.flatnonzero(np.diff(s) > MAX_GAP_BP) + 1  # a run never crosses one of these
    first = 0
    while first < len(order):
        last = np.searchsorted(s, s[first] + max(block_bp - length, 0), side="right")
        nxt = np.searchsorted(gaps, first, side="right")
        if nxt < len(gaps):
            last = min(last, gaps[nxt])
        last = max(last, first + 1)
        yield order[first:last]
        first = last


def read_windows(
    paths: list[str | Path],
    chroms,
    starts,
    length: int,
    dtype=np.float32,
    block_bp: int = BLOCK_BP,
    aliases: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Read the values of many windows from several bigWigs, block by block.

    Args:
        paths: bigWig files, one per output track.
        chroms: ``(n,)`` chromosome of each window.
        starts: ``(n,)`` 0-based window starts.
        length: window length in bp.
        dtype: output dtype; integer dtypes round the stored values.
        aliases: ``{name in a file: genome name}`` (``data.chrom_aliases``), or None.

    Returns:
        ``(n, length, len(paths))`` values; no-data positions are 0. Each bigWig is read once per
        block of nearby windows on a chromosome, not once per window.

    A chromosome absent from a bigWig, or a window past its end, is an error naming the file.
    """
    chroms = np.asarray(chroms).astype(str)
    starts = np.asarray(starts, dtype=np.int64)
    out = np.zeros((len(starts), length, len(paths)), dtype=dtype)
    for k, path in enumerate(paths):
        bw = open_bigwig(path, aliases)
        try:
            sizes = bw.chroms()
            for chrom in map(str, np.unique(chroms)):  # str: plain names in messages
                idx = np.flatnonzero(chroms == chrom)
                if chrom not in sizes:
                    raise BPNetInputError(
                        f"chromosome {chrom!r} has windows but is not in the bigWig {path} "
                        f"(its chromosomes: {', '.join(list(sizes)[:6])}...); the FASTA, chrom "
                        "sizes and bigWigs must use the same chromosome names"
                    )
                for block in _blocks(starts[idx], length, block_bp):
                    sel = idx[block]
                    lo = int(starts[sel].min())
                    hi = int(starts[sel].max()) + length
                    if lo < 0 or hi > sizes[chrom]:
                        raise BPNetInputError(
                            f"window {chrom}:{lo}-{hi} leaves the chromosome (length "
                            f"{sizes[chrom]}) in the bigWig {path}"
                        )
                    # bigWigs store float32; keep it (no float64 copy of the block).
                    try:
                        raw = bw.values(chrom, lo, hi, numpy=True)
                    except RuntimeError as err:
                        raise BPNetInputError(
                            f"cannot read {chrom}:{lo}-{hi} from the bigWig {path} ({err}); the "
                            "file is truncated or corrupt: fetch it again"
                        ) from err
                    vals = np.asarray(raw, dtype=np.float32)
                    if vals.shape != (hi - lo,):
                        if bw.header()["nBasesCovered"] != 0:
                            raise BPNetInputError(
                                f"the bigWig {path} gave {vals.size} values for {chrom}:{lo}-"
                                f"{hi}; the file is truncated or corrupt: fetch it again"
                            )
                        vals = np.zeros(hi - lo, dtype=np.float32)  # a bigWig without data
                    # no-data positions read as NaN -> 0 (one masked pass; nan_to_num makes three)
                    np.copyto(vals, 0.0, where=np.isnan(vals))
                    # Rows of a sliding-window view: a contiguous copy per window, much faster
                    # than fancy indexing with an (n, length) index array.
                    gathered = sliding_window_view(vals, length)[starts[sel] - lo]
                    if np.issubdtype(np.dtype(dtype), np.integer):
                        gathered = np.rint(gathered)
                    out[sel, :, k] = gathered
        finally:
            bw.close()
    return out


def write_bigwig(
    path: str | Path,
    chrom_sizes: Mapping[str, int],
    tracks: Mapping[str, np.ndarray],
    offsets: Mapping[str, int] | None = None,
    skip_zeros: bool = True,
) -> None:
    """Write per-chromosome dense arrays to a bigWig, run-length encoded.

    Args:
        path: output file.
        chrom_sizes: every chromosome of the genome, in order; all go into the header so that
            genome browsers load the file beside the observed tracks.
        tracks: ``{chrom: values}``; values cover ``[offset, offset + len(values))``.
        offsets: ``{chrom: start}`` of each array (0 when absent).
        skip_zeros: leave zero runs out (they read back as no data, i.e. 0).

    Runs of equal values become one bigWig entry, so constant stretches cost nothing.
    """

    offsets = offsets or {}
    bw = pyBigWig.open(str(path), "w")
    try:
        bw.addHeader([(c, int(s)) for c, s in chrom_sizes.items()], maxZooms=10)
        for chrom in chrom_sizes:
            if chrom not in tracks:
                continue
            vals = np.asarray(tracks[chrom], dtype=np.float64)
            off = int(offsets.get(chrom, 0))
            if off < 0 or off + len(vals) > chrom_sizes[chrom]:
                raise BPNetInputError(
                    f"track for {chrom} covers {off}-{off + len(vals)}, beyond the chromosome "
                    f"length {chrom_sizes[chrom]}"
                )
            if len(vals) == 0:
                continue
            change = np.flatnonzero(np.diff(vals)) + 1
            run_starts = np.concatenate([[0], change])
            run_ends = np.concatenate([change, [len(vals)]])
            run_vals = vals[run_starts]
            keep = run_vals != 0 if skip_zeros else np.ones(len(run_vals), bool)
            keep &= ~np.isnan(run_vals)
            if not keep.any():
                continue
            bw.addEntries(
                [chrom] * int(keep.sum()),
                (run_starts[keep] + off).tolist(),
                ends=(run_ends[keep] + off).tolist(),
                values=run_vals[keep].tolist(),
            )
    finally:
        bw.close()


def track_paths(outdir: str | Path, tasks: Sequence[str], strands: int = 2) -> list[Path]:
    """``{outdir}/{task}.{pos,neg}.bw`` in channel order (task-major, + strand first), or
    ``{outdir}/{task}.bw`` for unstranded tasks (``strands`` 1)."""
    if strands == 1:
        return [Path(outdir) / f"{task}.bw" for task in tasks]
    return [Path(outdir) / f"{task}.{strand}.bw" for task in tasks for strand in STRANDS]


def tile_sums(path: str | Path, chrom: str, length: int, tile: int) -> np.ndarray:
    """Sums of a bigWig over consecutive tiles ``[i * tile, (i + 1) * tile)`` of ``chrom[:length]``
    (the last tile may be shorter; bases without data count 0), ``(ceil(length / tile),)``."""
    bw = open_bigwig(path)
    try:
        edges = list(range(0, length, tile)) + [length]
        out = np.zeros(len(edges) - 1)
        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            value = bw.stats(chrom, lo, hi, type="sum", exact=True)[0]
            out[i] = 0.0 if value is None else value
        return out
    finally:
        bw.close()


def compact_runs(
    values: np.ndarray, decimals: int | None = None, floor: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal values ``(starts, ends, values)`` of a per-base track ``(length,)``, after
    rounding to ``decimals`` places (None: as they are) and leaving out values below ``floor``."""
    vals = np.asarray(values, dtype=np.float32)
    if decimals is not None:
        vals = np.round(vals, decimals).astype(np.float32)
    keep = np.ones(len(vals), bool) if floor is None else vals >= floor
    # a run starts where a kept base follows a dropped one or its value changes
    new = keep.copy()
    new[1:] &= ~keep[:-1] | (vals[1:] != vals[:-1])
    starts = np.flatnonzero(new)
    # a run ends before the next run start or before the next dropped base
    stop = keep.copy()
    stop[:-1] &= ~keep[1:] | new[1:]
    ends = np.flatnonzero(stop) + 1
    return starts, ends, vals[starts]


class TrackWriter:
    """One bigWig per output channel, written segment by segment (a context manager).

    Args:
        paths: ``2 T`` output files in channel order (see :func:`track_paths`).
        chrom_sizes: every chromosome of the genome, in order; all go into each header.

        decimals: round every value to this many decimal places and store runs of equal values as
            one entry (bedGraph-like spans): background of a predicted track becomes long runs,
            so the files shrink many times. None: every base as float32 (fixed step 1).
        floor: values below it are not stored (no data, as outside the exported regions).
        zooms: zoom levels (summaries a browser shows when zoomed out); 0 for an intermediate file.

    Segments must arrive in header chromosome order and, within a chromosome, in increasing
    non-overlapping order (what bigWig requires).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        chrom_sizes: Mapping[str, int],
        decimals: int | None = None,
        floor: float | None = None,
        zooms: int = 10,
    ):
        self.decimals, self.floor = decimals, floor

        self.paths = [Path(p) for p in paths]
        self.chrom_sizes = dict(chrom_sizes)
        self._rank = {c: i for i, c in enumerate(self.chrom_sizes)}
        self._last = (-1, 0)  # (chromosome rank, end) of the last segment written
        self._files = []
        try:
            for p in self.paths:
                bw = pyBigWig.open(str(p), "w")
                if bw is None:
                    raise OSError(f"cannot open {p} for writing")
                self._files.append(bw)
                bw.addHeader([(c, int(s)) for c, s in self.chrom_sizes.items()], maxZooms=zooms)
        except BaseException:
            self.close()
            raise

    def add(self, chrom: str, start: int, values: np.ndarray) -> None:
        """Write ``values`` ``(length, C)`` at bases ``[start, start + length)`` of ``chrom``."""
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != len(self._files):
            raise ValueError(f"TrackWriter.add: expected values (length, {len(self._files)}), got {values.shape}")
        if chrom not in self._rank:
            raise BPNetInputError(f"chromosome {chrom!r} has predictions but is not in the chrom sizes")
        end = start + len(values)
        if start < 0 or end > self.chrom_sizes[chrom]:
            raise BPNetInputError(
                f"predictions at {chrom}:{start}-{end} leave the chromosome (length {self.chrom_sizes[chrom]} "
                "in the chrom sizes); the chrom sizes must match the genome the windows came from"
            )
        if (self._rank[chrom], start) < self._last:
            raise ValueError(f"TrackWriter.add: {chrom}:{start} arrives out of order")
        self._last = (self._rank[chrom], end)
        if len(values) == 0:
            return
        by_channel = np.ascontiguousarray(values.T, dtype=np.float32)  # (C, length)
        for bw, vals in zip(self._files, by_channel):
            if self.decimals is None and self.floor is None:
                bw.addEntries(chrom, int(start), values=vals, span=1, step=1)
                continue
            starts, ends, runs = compact_runs(vals, self.decimals, self.floor)
            if len(starts):
                bw.addEntries([chrom] * len(starts), (starts + start).tolist(), ends=(ends + start).tolist(),
                              values=runs.tolist())

    def close(self) -> None:
        """Finish all files (bigWig zoom levels and index are written here)."""
        for bw in self._files:
            bw.close()
        self._files = []

    def __enter__(self) -> "TrackWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
