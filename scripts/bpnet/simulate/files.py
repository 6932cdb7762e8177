"""The dataset's files: their layout (:func:`output_paths`) and the writers (FASTA with its
index, reproducible gzipped tables, bigWigs written in parallel)."""

from __future__ import annotations

import gzip
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from bpnet.io.tracks import STRANDS, write_bigwig
from bpnet.progress import progress_bar
from bpnet.simulate.binding import TFS
from bpnet.simulate.genome import Genome
from bpnet.simulate.tracks import CONTROL

FASTA_LINE = 60


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


def write_fasta(path: Path, sizes: Mapping[str, int], seq: np.ndarray) -> None:
    """Write the genome ``seq`` (global codes) as FASTA with 60 bp lines, plus ``path.fai``."""
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    fai = []
    offset = 0
    with open(path, "wb") as fh:
        start = 0
        for chrom, length in sizes.items():
            header = f">{chrom}\n".encode()
            fh.write(header)
            offset += len(header)
            fai.append(f"{chrom}\t{length}\t{offset}\t{FASTA_LINE}\t{FASTA_LINE + 1}\n")
            chars = letters[seq[start:start + length]]
            n_full = length // FASTA_LINE
            body = np.empty((n_full, FASTA_LINE + 1), dtype=np.uint8)
            body[:, :FASTA_LINE] = chars[: n_full * FASTA_LINE].reshape(n_full, FASTA_LINE)
            body[:, FASTA_LINE] = ord("\n")
            data = body.tobytes()
            if length % FASTA_LINE:
                data += chars[n_full * FASTA_LINE:].tobytes() + b"\n"
            fh.write(data)
            offset += len(data)
            start += length
    Path(f"{path}.fai").write_text("".join(fai))


def write_gzip_table(path: Path, table: pd.DataFrame, header: bool) -> None:
    """Tab-separated ``table`` gzipped with mtime 0 and no file name, so bytes are reproducible."""
    text = table.to_csv(sep="\t", index=False, header=header, lineterminator="\n")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.encode())


class _SparseTrack(Mapping):
    """``{chrom: dense values}`` built on demand from a sparse global track plus a constant.

    :func:`bpnet.io.tracks.write_bigwig` walks chromosomes in order, so only one dense chromosome
    is in memory at a time.
    """

    def __init__(self, sizes: Mapping[str, int], pos: np.ndarray, vals: np.ndarray,
                 constant: float = 0.0, dtype=np.float64):
        self.sizes = dict(sizes)
        self.offsets = dict(zip(sizes, np.concatenate([[0], np.cumsum(list(sizes.values()))[:-1]])))
        self.pos, self.vals, self.constant, self.dtype = pos, vals, constant, dtype

    def __getitem__(self, chrom: str) -> np.ndarray:
        off, length = int(self.offsets[chrom]), self.sizes[chrom]
        lo, hi = np.searchsorted(self.pos, [off, off + length])
        dense = np.full(length, self.constant, dtype=self.dtype)
        dense[self.pos[lo:hi] - off] += self.vals[lo:hi].astype(self.dtype)
        return dense

    def __iter__(self):
        return iter(self.sizes)

    def __len__(self) -> int:
        return len(self.sizes)


def _write_bigwigs(jobs: list[tuple[Path, Mapping[str, np.ndarray]]], sizes: Mapping[str, int],
                   threads: int, progress=None) -> None:
    """Write ``(path, tracks)`` bigWigs, in ``threads`` processes (writing dominates the run time).

    Each file's bytes depend only on its own track, so the output is the same for any ``threads``.
    ``progress``: optional object with ``update(1)`` per file written (in the order of ``jobs``).
    """
    def done() -> None:
        if progress is not None:
            progress.update(1)

    if threads <= 1:
        for path, track in jobs:
            write_bigwig(path, sizes, track)
            done()
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=threads, mp_context=ctx) as pool:
        for future in [pool.submit(write_bigwig, path, sizes, track) for path, track in jobs]:
            future.result()
            done()


def write_dataset(paths: Mapping[str, Path], genome: Genome, expected: Mapping, observed: Mapping,
                  peak_tables: Mapping[str, pd.DataFrame], truth: pd.DataFrame, syntax: pd.DataFrame,
                  threads: int = 1, log: logging.Logger | None = None) -> None:
    """Write every output file (:func:`output_paths`); ``log``: progress lines (one unit per file)."""
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    # FASTA (with its index) and chrom sizes, the bigWigs, the peak files, the two truth tables
    n_files = 2 + len(observed) + len(expected) + len(peak_tables) + 2
    with progress_bar(log, n_files, "write dataset", unit="file") as bar:
        write_fasta(paths["fasta"], genome.sizes, genome.seq)
        paths["chrom_sizes"].write_text("".join(f"{c}\t{n}\n" for c, n in genome.sizes.items()))
        bar.update(2)
        sizes = genome.sizes
        jobs = [(paths[f"{name.replace('.', '.counts.')}"], _SparseTrack(sizes, pos, cnt, 0, np.int64))
                for name, (pos, cnt) in observed.items()]
        jobs += [(paths[f"{name.replace('.', '.expected.')}"],
                  _SparseTrack(sizes, pos, vals.astype(np.float32), np.float32(bg), np.float32))
                 for name, (pos, vals, bg) in expected.items()]
        _write_bigwigs(jobs, sizes, threads, bar)
        for tf, table in peak_tables.items():
            write_gzip_table(paths[f"{tf}.peaks"], table, header=False)
            bar.update(1)
        write_gzip_table(paths["instances"], truth, header=True)
        write_gzip_table(paths["syntax"], syntax.round(5), header=True)
        bar.update(2)
