"""Aligned reads (BAM/CRAM) -> 5'-end count bigWigs, one per strand.

BPNet models the 5' ends of reads at base resolution, per strand. :func:`five_prime_counts` reads
one or more BAM/CRAM files of a task (replicates are summed) with pysam and counts, for every
read that passes the filters, the position of its 5' end on its strand:

- a read on the + strand: its 5' end is its leftmost aligned base, ``reference_start``;
- a read on the - strand: its rightmost aligned base, ``reference_end - 1`` (soft clips excluded,
  as the aligner reported the alignment).

That is the convention of every assay BPNet is trained on: in ChIP-nexus / ChIP-exo the 5' end of
a read is where the exonuclease stopped; in ChIP-seq it is a fragment end, counted per strand
(the paper's ChIP-seq tasks). Paired-end data count one end per fragment by default
(``paired_end="read1"``: read 1's 5' end, the exonuclease stop of ChIP-nexus/exo); ``"both"``
counts both reads' 5' ends, each on its own strand (the two fragment ends of paired ChIP-seq).

Filters (counted in the summary): unmapped, secondary, supplementary and QC-failed reads are never
counted; reads flagged as duplicates are dropped unless ``keep_duplicates``; reads with a mapping
quality below ``min_mapq`` are dropped. Reads on contigs absent from the genome are counted as
``off_genome``; a contig of the BAM header whose length differs from the genome's is an error (the
reads were aligned to another assembly).

Memory is bounded by the distinct 5' positions, not by the genome: positions are buffered, then
reduced to (position, count) pairs every :data:`BUFFER_READS` reads, so a file need not be sorted
or indexed.
"""

from __future__ import annotations

import contextlib
import logging
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pyBigWig

from bpnet.errors import BPNetInputError
from bpnet.io.chroms import genome_name, read_chrom_aliases
from bpnet.io.tracks import read_chrom_sizes
from bpnet.progress import progress_bar

PAIRED_END_MODES = ("read1", "both")

# SAM flags
_PAIRED, _UNMAPPED, _REVERSE, _READ2 = 0x1, 0x4, 0x10, 0x80
_SECONDARY, _QCFAIL, _DUPLICATE, _SUPPLEMENTARY = 0x100, 0x200, 0x400, 0x800

# Positions buffered before they are reduced to (key, count) pairs: 8 M int64 keys are 64 MB.
BUFFER_READS = 8_000_000
# Reads between two progress updates (a progress line is logged at most every 20 s).
_UPDATE_READS = 200_000
# bigWig entries added per pyBigWig call (lists of Python numbers: bounded memory).
_ENTRIES_PER_CALL = 1_000_000

SUMMARY_COLUMNS = ("file", "reads", "counted", "unmapped", "secondary_or_supplementary", "qc_fail",
                   "duplicate", "low_mapq", "read2_skipped", "off_genome")


@dataclass
class ReadSummary:
    """What happened to the reads of one file (the columns of read_counts.tsv)."""

    file: str
    reads: int = 0
    counted: int = 0
    unmapped: int = 0
    secondary_or_supplementary: int = 0
    qc_fail: int = 0
    duplicate: int = 0
    low_mapq: int = 0
    read2_skipped: int = 0
    off_genome: int = 0
    off_genome_contigs: set[str] = field(default_factory=set)

    def row(self) -> list:
        return [getattr(self, c) for c in SUMMARY_COLUMNS]


class _Counter:
    """(contig index, position) keys of one strand, reduced to unique keys with counts as they come."""

    def __init__(self):
        self.buffer = array("q")
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []

    def flush(self) -> None:
        if not self.buffer:
            return
        keys, counts = np.unique(np.frombuffer(self.buffer, dtype=np.int64), return_counts=True)
        self.keys.append(keys)
        self.counts.append(counts.astype(np.int64))
        self.buffer = array("q")
        if len(self.keys) > 8:  # keep the list short: merge what has been reduced so far
            self.keys, self.counts = self._merged()

    def _merged(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        keys = np.concatenate(self.keys)
        counts = np.concatenate(self.counts)
        order = np.argsort(keys, kind="stable")
        keys, counts = keys[order], counts[order]
        first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        return [keys[first]], [np.add.reduceat(counts, first)]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted unique keys and their counts."""
        self.flush()
        if not self.keys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        keys, counts = self._merged()
        return keys[0], counts[0]


def _open(path: str, fasta: str | None, threads: int):
    import pysam  # imported here: only this step needs it

    if not Path(path).is_file():
        raise BPNetInputError(f"{path}: no such BAM/CRAM file")
    try:
        return pysam.AlignmentFile(str(path), "r", reference_filename=fasta, threads=max(1, threads),
                                   check_sq=False)
    except (ValueError, OSError) as err:
        raise BPNetInputError(f"{path}: not a readable BAM/CRAM/SAM file ({err})") from None


def check_header(path: str, header_lengths: Mapping[str, int], chrom_sizes: Mapping[str, int],
                 sizes_name: str) -> None:
    """Refuse a BAM whose contigs disagree with the genome: a contig of both with different
    lengths (another assembly), or no contig in common (other names: e.g. ``1`` vs ``chr1``)."""
    if not header_lengths:
        raise BPNetInputError(f"{path}: the header has no @SQ lines (reference contigs); give a BAM/CRAM "
                              "of reads aligned to the genome")
    for contig, length in header_lengths.items():
        if contig in chrom_sizes and chrom_sizes[contig] != length:
            raise BPNetInputError(
                f"{path}: contig {contig} is {length:,} bp in the BAM header but {chrom_sizes[contig]:,} "
                f"bp in {sizes_name}: the reads were aligned to another assembly than data.genome_fasta"
            )
    if not set(header_lengths) & set(chrom_sizes):
        bam_names = ", ".join(list(header_lengths)[:3])
        genome_names = ", ".join(list(chrom_sizes)[:3])
        raise BPNetInputError(
            f"{path}: no contig name in common with {sizes_name} (BAM: {bam_names}, ...; genome: "
            f"{genome_names}, ...): the reads were aligned to a genome with other names (map them: "
            "data.chrom_aliases)"
        )


def five_prime_counts(
    paths: Sequence[str],
    chrom_sizes: Mapping[str, int],
    min_mapq: int = 0,
    keep_duplicates: bool = False,
    paired_end: str = "read1",
    fasta: str | None = None,
    threads: int = 1,
    sizes_name: str = "the chrom sizes",
    log: logging.Logger | None = None,
    aliases: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], list[ReadSummary]]:
    """Count the 5' ends of the reads of ``paths`` (summed over files) per strand and contig.

    Args:
        paths: BAM/CRAM/SAM files (replicates of one task); CRAM needs ``fasta``.
        chrom_sizes: the genome, ``{contig: length}``; reads elsewhere are counted as off_genome.
        min_mapq: reads with a lower mapping quality are dropped.
        keep_duplicates: count reads flagged as PCR/optical duplicates (flag 0x400).
        paired_end: ``"read1"`` (one 5' end per fragment) or ``"both"`` (both reads' 5' ends).
        fasta: reference FASTA for CRAM decoding.
        threads: decompression threads per file.
        sizes_name: how errors name the genome's sizes (the file).
        log: rule logger for progress and the per-file summary.
        aliases: ``{contig name in the BAM: genome name}`` (``data.chrom_aliases``), or None.

    Returns:
        ``counts[strand][contig] = (positions, counts)``, strand ``"pos"``/``"neg"``, positions
        sorted 0-based int64 and counts int64 (> 0), and one :class:`ReadSummary` per file.
    """
    if paired_end not in PAIRED_END_MODES:
        raise BPNetInputError(f"data.reads.paired_end is {paired_end!r}; expected one of {PAIRED_END_MODES}")
    if not paths:
        raise BPNetInputError("no BAM/CRAM file given")
    names = list(chrom_sizes)
    index = {c: i for i, c in enumerate(names)}
    strands = {"pos": _Counter(), "neg": _Counter()}
    summaries = []
    drop_always = _UNMAPPED | _SECONDARY | _SUPPLEMENTARY | _QCFAIL
    for path in paths:
        summary = ReadSummary(file=str(path))
        bam = _open(path, fasta, threads)
        try:
            names_here = [genome_name(c, aliases) for c in bam.references]
            check_header(path, dict(zip(names_here, bam.lengths)), chrom_sizes, sizes_name)
            # BAM contig id -> genome index (-1: not in the genome)
            tid_map = np.array([index.get(c, -1) for c in names_here] or [-1], dtype=np.int64)
            pos_buf, neg_buf = strands["pos"], strands["neg"]
            n = 0
            bar = progress_bar(log, None, f"reads of {Path(path).name}", unit="read")
            try:
                for read in bam.fetch(until_eof=True):
                    n += 1
                    if n % _UPDATE_READS == 0:
                        bar.update(_UPDATE_READS)
                    flag = read.flag
                    if flag & drop_always:
                        if flag & _UNMAPPED:
                            summary.unmapped += 1
                        elif flag & (_SECONDARY | _SUPPLEMENTARY):
                            summary.secondary_or_supplementary += 1
                        else:
                            summary.qc_fail += 1
                        continue
                    if flag & _DUPLICATE and not keep_duplicates:
                        summary.duplicate += 1
                        continue
                    if flag & _PAIRED and flag & _READ2 and paired_end == "read1":
                        summary.read2_skipped += 1
                        continue
                    if read.mapping_quality < min_mapq:
                        summary.low_mapq += 1
                        continue
                    g = tid_map[read.reference_id]
                    if g < 0:
                        summary.off_genome += 1
                        summary.off_genome_contigs.add(read.reference_name)
                        continue
                    if flag & _REVERSE:
                        neg_buf.buffer.append((int(g) << 32) | (read.reference_end - 1))
                    else:
                        pos_buf.buffer.append((int(g) << 32) | read.reference_start)
                    if len(pos_buf.buffer) + len(neg_buf.buffer) >= BUFFER_READS:
                        pos_buf.flush()
                        neg_buf.flush()
            except OSError as err:  # truncated or corrupt compressed blocks
                raise BPNetInputError(f"{path}: cannot read past read {n:,}: {err} (truncated or corrupt "
                                      "file?)") from None
            finally:
                bar.update(n % _UPDATE_READS)
                bar.close()
        finally:
            with contextlib.suppress(OSError):  # closing a corrupt file fails again: the error is raised
                bam.close()
        summary.reads = n
        summary.counted = n - sum(getattr(summary, c) for c in SUMMARY_COLUMNS[3:])
        summaries.append(summary)
        if log:
            dropped = ", ".join(f"{c} {getattr(summary, c):,}" for c in SUMMARY_COLUMNS[3:]
                                if getattr(summary, c))
            log.info("%s: %s reads, %s counted%s", path, f"{n:,}", f"{summary.counted:,}",
                     f" (dropped: {dropped})" if dropped else "")
            if summary.off_genome_contigs:
                shown = sorted(summary.off_genome_contigs)
                log.info("%s: reads on contigs outside the genome: %s%s", path, ", ".join(shown[:10]),
                         " ..." if len(shown) > 10 else "")
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for strand, counter in strands.items():
        keys, counts = counter.result()
        contig = keys >> 32
        positions = keys & 0xFFFFFFFF
        bounds = np.searchsorted(contig, np.arange(len(names) + 1))
        out[strand] = {
            c: (positions[bounds[i]:bounds[i + 1]], counts[bounds[i]:bounds[i + 1]])
            for i, c in enumerate(names) if bounds[i + 1] > bounds[i]
        }
    if not any(s.counted for s in summaries):
        raise BPNetInputError(
            f"{', '.join(map(str, paths))}: no read passed the filters (see the log: min_mapq {min_mapq}, "
            f"keep_duplicates {keep_duplicates}, paired_end {paired_end})"
        )
    return out, summaries


# Bytes per read of a BAM at the densest (short names, no qualities): estimates reads from a file
# size where no index tells the count; real BAMs hold 20-60 bytes per read.
_MIN_BAM_BYTES_PER_READ = 9
# Peak memory of counting: measured 1.31 GB for 20 M reads (benchmarks/bench_bam_counts.py), i.e.
# ~35 bytes per read over a ~0.6 GB base; requested with a margin.
MEM_BASE_MB, MEM_BYTES_PER_READ = 600, 50


def estimated_reads(paths: Sequence[str]) -> int:
    """Reads in ``paths``: from the BAM index where there is one (mapped + unmapped), otherwise from
    the file size at the densest BAM encoding (an overestimate). Missing files count 0."""
    import pysam

    total = 0
    for path in paths:
        if not Path(path).exists():
            continue
        try:
            with pysam.AlignmentFile(str(path), "r", check_sq=False) as bam:
                stats = bam.get_index_statistics()
                total += sum(s.total for s in stats) + bam.unmapped
                continue
        except (ValueError, OSError, AttributeError):  # no index (or not a BAM): by size
            pass
        total += Path(path).stat().st_size // _MIN_BAM_BYTES_PER_READ
    return int(total)


def counting_mem_mb(paths: Sequence[str]) -> int:
    """Rule bam_counts' memory request (MB) for ``paths``."""
    return int(MEM_BASE_MB + MEM_BYTES_PER_READ * estimated_reads(paths) / 1e6)


def write_count_bigwig(path: str | Path, chrom_sizes: Mapping[str, int],
                       counts: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write ``{contig: (positions, counts)}`` as a bigWig of per-base counts, every contig of the
    genome in its header (the tracks load beside the genome's other tracks)."""
    bw = pyBigWig.open(str(path), "w")
    try:
        bw.addHeader([(c, int(s)) for c, s in chrom_sizes.items()], maxZooms=10)
        for chrom in chrom_sizes:
            if chrom not in counts:
                continue
            positions, values = counts[chrom]
            for lo in range(0, len(positions), _ENTRIES_PER_CALL):
                starts = positions[lo:lo + _ENTRIES_PER_CALL]
                bw.addEntries([chrom] * len(starts), starts.tolist(), ends=(starts + 1).tolist(),
                              values=values[lo:lo + _ENTRIES_PER_CALL].astype(np.float64).tolist())
    finally:
        bw.close()


def write_read_bigwigs(
    paths: Sequence[str],
    chrom_sizes_path: str,
    out_pos: str,
    out_neg: str,
    out_summary: str,
    min_mapq: int = 0,
    keep_duplicates: bool = False,
    paired_end: str = "read1",
    fasta: str | None = None,
    threads: int = 1,
    log: logging.Logger | None = None,
    chrom_aliases: str | None = None,
) -> None:
    """Rule bam_counts: the 5'-end count bigWigs of one task's BAM/CRAM files and a summary TSV
    (one row per file: reads seen, counted and dropped by each filter)."""
    sizes = read_chrom_sizes(chrom_sizes_path)
    aliases = read_chrom_aliases(chrom_aliases, sizes) if chrom_aliases else None
    counts, summaries = five_prime_counts(
        paths, sizes, min_mapq=min_mapq, keep_duplicates=keep_duplicates, paired_end=paired_end,
        fasta=fasta, threads=threads, sizes_name=str(chrom_sizes_path), log=log, aliases=aliases,
    )
    write_count_bigwig(out_pos, sizes, counts["pos"])
    write_count_bigwig(out_neg, sizes, counts["neg"])
    lines = ["\t".join(SUMMARY_COLUMNS)] + ["\t".join(map(str, s.row())) for s in summaries]
    Path(out_summary).write_text("\n".join(lines) + "\n")
    if log:
        total = {s: int(sum(c.sum() for _, c in counts[s].values())) for s in counts}
        log.info("wrote %s (%s reads) and %s (%s reads)", out_pos, f"{total['pos']:,}", out_neg,
                 f"{total['neg']:,}")
