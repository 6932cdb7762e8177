"""The dataset's files: their layout (:func:`output_paths`) and the writers (FASTA with its
index, one chromosome at a time; reproducible gzipped tables; bigWigs from sparse tracks, written
in parallel, one chromosome at a time)."""

from __future__ import annotations

import gzip
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import pyBigWig

from bpnet.io.tracks import STRANDS
from bpnet.progress import progress_bar
from bpnet.simulate.binding import TFS
from bpnet.simulate.genome import Genome
from bpnet.simulate.tracks import CONTROL

FASTA_LINE = 60
FASTA_BLOCK_LINES = 100_000  # lines formatted at once (6 MB)


def output_paths(outdir: str | Path) -> dict[str, Path]:
    """Every file :func:`~bpnet.simulate.generate.simulate_dataset` writes, keyed by a short name."""
    out = Path(outdir)
    paths = {
        "fasta": out / "genome.fa",
        "fai": out / "genome.fa.fai",
        "chrom_sizes": out / "genome.chrom.sizes",
        "instances": out / "truth" / "instances.tsv.gz",
        "syntax": out / "truth" / "syntax.tsv.gz",
    }
    for tf in TFS + (CONTROL,):
        for s in STRANDS:
            paths[f"{tf}.counts.{s}"] = out / "chip-nexus" / tf / f"counts.{s}.bw"
    for tf in TFS:
        paths[f"{tf}.peaks"] = out / "chip-nexus" / tf / "idr-optimal-set.narrowPeak.gz"
        for s in STRANDS:
            paths[f"{tf}.expected.{s}"] = out / "truth" / tf / f"expected.{s}.bw"
    return paths


def check_outputs(outdir: str | Path, declared: Iterable[str | Path]) -> None:
    """Raise when a ``declared`` path (a rule's outputs) is not one of :func:`output_paths`."""
    written = {str(p) for p in output_paths(outdir).values()}
    missing = [str(p) for p in declared if str(Path(p)) not in written]
    if missing:
        raise RuntimeError(f"rule outputs not written by bpnet.simulate: {missing}")


class FastaWriter:
    """FASTA with 60 bp lines written one chromosome at a time (:meth:`add`), and its ``.fai``
    index when closed (a context manager)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = open(self.path, "wb")
        self._offset = 0
        self._fai: list[str] = []

    def add(self, chrom: str, seq: np.ndarray) -> None:
        """Append chromosome ``chrom`` with codes ``seq`` (0-3 ACGT, 4 N)."""
        letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
        header = f">{chrom}\n".encode()
        self._fh.write(header)
        self._offset += len(header)
        self._fai.append(f"{chrom}\t{len(seq)}\t{self._offset}\t{FASTA_LINE}\t{FASTA_LINE + 1}\n")
        block = FASTA_LINE * FASTA_BLOCK_LINES
        for a in range(0, len(seq), block):
            chars = letters[seq[a:a + block]]
            n_full = len(chars) // FASTA_LINE
            body = np.empty((n_full, FASTA_LINE + 1), dtype=np.uint8)
            body[:, :FASTA_LINE] = chars[: n_full * FASTA_LINE].reshape(n_full, FASTA_LINE)
            body[:, FASTA_LINE] = ord("\n")
            self._fh.write(body.data)
            self._offset += body.nbytes
            if len(chars) % FASTA_LINE:  # only in the last block
                tail = chars[n_full * FASTA_LINE:].tobytes() + b"\n"
                self._fh.write(tail)
                self._offset += len(tail)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
            Path(f"{self.path}.fai").write_text("".join(self._fai))

    def __enter__(self) -> "FastaWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_fasta(path: Path, sizes: Mapping[str, int], seq: np.ndarray) -> None:
    """Write the genome ``seq`` (global codes) as FASTA with 60 bp lines, plus ``path.fai``."""
    with FastaWriter(path) as fasta:
        start = 0
        for chrom, length in sizes.items():
            fasta.add(chrom, seq[start:start + length])
            start += length


def write_gzip_table(path: Path, table: pd.DataFrame, header: bool) -> None:
    """Tab-separated ``table`` gzipped with mtime 0 and no file name, so bytes are reproducible."""
    text = table.to_csv(sep="\t", index=False, header=header, lineterminator="\n")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.encode())


def sparse_runs(pos: np.ndarray, vals: np.ndarray, length: int, constant=0,
                dtype=np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal values of the dense track ``constant`` + ``vals`` at ``pos`` of one
    chromosome, without making it: ``(starts, ends, values)``, zero and NaN runs left out.

    ``pos`` ``(n,)`` sorted, distinct, in ``[0, length)``. The dense track would be
    ``np.full(length, constant, dtype)`` with ``vals.astype(dtype)`` added at ``pos``; the runs
    are exactly those :func:`bpnet.io.tracks.write_bigwig` writes of it (``values`` float64).
    """
    n = len(pos)
    point = (np.full(n, constant, dtype=dtype) + vals.astype(dtype)).astype(np.float64)
    const = float(np.asarray(constant, dtype=dtype))
    # Segments in order: the gap of constant values before each point, the point, the last gap.
    gap_start = np.r_[0, pos + 1]
    gap_end = np.r_[pos, length]
    seg_start = np.empty(2 * n + 1, dtype=np.int64)
    seg_start[0::2], seg_start[1::2] = gap_start, pos
    seg_val = np.full(2 * n + 1, const)
    seg_val[1::2] = point
    keep = np.ones(2 * n + 1, dtype=bool)
    keep[0::2] = gap_end > gap_start  # empty gaps left out
    seg_start, seg_val = seg_start[keep], seg_val[keep]
    first = np.r_[0, np.flatnonzero(np.diff(seg_val)) + 1]  # a run starts where the value changes
    starts, values = seg_start[first], seg_val[first]
    ends = np.r_[starts[1:], length]
    keep = (values != 0) & ~np.isnan(values)
    return starts[keep], ends[keep], values[keep]


def write_sparse_bigwig(path: Path, sizes: Mapping[str, int], pos: np.ndarray, vals: np.ndarray,
                        constant=0, dtype=np.float64) -> None:
    """Write the bigWig of a sparse global track (``constant`` + ``vals`` at sorted global
    ``pos``, summed in ``dtype``), one chromosome at a time: the same file as
    :func:`bpnet.io.tracks.write_bigwig` of its dense chromosomes, without making them."""
    bw = pyBigWig.open(str(path), "w")
    try:
        bw.addHeader([(c, int(s)) for c, s in sizes.items()], maxZooms=10)
        offset = 0
        for chrom, length in sizes.items():
            lo, hi = np.searchsorted(pos, [offset, offset + length])
            starts, ends, values = sparse_runs(pos[lo:hi] - offset, vals[lo:hi], length, constant, dtype)
            if len(starts):
                bw.addEntries([chrom] * len(starts), starts.tolist(), ends=ends.tolist(), values=values.tolist())
            offset += length
    finally:
        bw.close()


_JOBS: list = []  # the bigWigs write_bigwigs is writing (its forked workers read them from here)


def _write_job(i: int) -> None:
    path, args = _JOBS[i]
    write_sparse_bigwig(path, *args)


def write_bigwigs(jobs: list[tuple[Path, tuple]], threads: int, progress=None) -> None:
    """Write ``(path, (sizes, pos, vals, constant, dtype))`` bigWigs (:func:`write_sparse_bigwig`)
    in ``threads`` forked processes, which share the tracks instead of copying them.

    Each file's bytes depend only on its own track, so the output is the same for any ``threads``.
    ``progress``: optional object with ``update(1)`` per file written (in the order of ``jobs``).
    """
    global _JOBS

    def done() -> None:
        if progress is not None:
            progress.update(1)

    if threads <= 1 or len(jobs) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for path, args in jobs:
            write_sparse_bigwig(path, *args)
            done()
        return
    _JOBS = jobs
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(threads, len(jobs)), mp_context=ctx) as pool:
            for future in [pool.submit(_write_job, i) for i in range(len(jobs))]:
                future.result()
                done()
    finally:
        _JOBS = []


def bigwig_jobs(paths: Mapping[str, Path], sizes: Mapping[str, int], expected: Mapping,
                observed: Mapping) -> list[tuple[Path, tuple]]:
    """The bigWig jobs of some tracks (:func:`write_bigwigs`): ``observed[name] = (pos, counts)``
    as integer counts, ``expected[name] = (pos, rate, background)`` as float32 rates."""
    jobs = [(paths[name.replace(".", ".counts.")], (sizes, pos, cnt, 0, np.int64))
            for name, (pos, cnt) in observed.items()]
    jobs += [(paths[name.replace(".", ".expected.")], (sizes, pos, vals.astype(np.float32), np.float32(bg), np.float32))
             for name, (pos, vals, bg) in expected.items()]
    return jobs


def write_dataset(paths: Mapping[str, Path], genome: Genome, expected: Mapping, observed: Mapping,
                  peak_tables: Mapping[str, pd.DataFrame], truth: pd.DataFrame, syntax: pd.DataFrame,
                  threads: int = 1, log: logging.Logger | None = None) -> None:
    """Write every output file (:func:`output_paths`) of a dataset held in memory (``genome.seq``
    included); ``log``: progress lines (one unit per file)."""
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    # FASTA (with its index) and chrom sizes, the bigWigs, the peak files, the two truth tables
    n_files = 2 + len(observed) + len(expected) + len(peak_tables) + 2
    with progress_bar(log, n_files, "write dataset", unit="file") as bar:
        write_fasta(paths["fasta"], genome.sizes, genome.seq)
        write_chrom_sizes(paths["chrom_sizes"], genome.sizes)
        bar.update(2)
        write_bigwigs(bigwig_jobs(paths, genome.sizes, expected, observed), threads, bar)
        for tf, table in peak_tables.items():
            write_gzip_table(paths[f"{tf}.peaks"], table, header=False)
            bar.update(1)
        write_truth(paths, truth, syntax)
        bar.update(2)


def write_chrom_sizes(path: Path, sizes: Mapping[str, int]) -> None:
    path.write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))


def write_truth(paths: Mapping[str, Path], truth: pd.DataFrame, syntax: pd.DataFrame) -> None:
    """The two truth tables (planted instances, planted syntax)."""
    write_gzip_table(paths["instances"], truth, header=True)
    write_gzip_table(paths["syntax"], syntax.round(5), header=True)
