"""BAM/CRAM -> 5'-end count bigWigs (bpnet.data.reads): counts against an independent count of the
reads the test writes, every filter, replicates, CRAM, and clear errors for bad files."""

import re

import numpy as np
import pyBigWig
import pysam
import pytest

from bpnet.data.reads import SUMMARY_COLUMNS, five_prime_counts, write_read_bigwigs
from bpnet.errors import BPNetInputError

SIZES = {"chr1": 300, "chr2": 200}


def ref_length(cigar: str) -> int:
    """Reference bases an alignment spans (M, D, N, =, X consume the reference)."""
    return sum(int(n) for n, op in re.findall(r"(\d+)([MIDNSHP=X])", cigar) if op in "MDN=X")


def expected_five_prime(read: dict) -> tuple[str, int]:
    """(strand, 0-based position) of a read's 5' end, computed from the test's own description."""
    if read.get("reverse"):
        return "neg", read["start"] + ref_length(read["cigar"]) - 1
    return "pos", read["start"]


def write_bam(path, reads, sizes=SIZES, mode="wb", fasta=None, sort=True):
    header = {"HD": {"VN": "1.6", "SO": "coordinate" if sort else "unsorted"},
              "SQ": [{"SN": c, "LN": n} for c, n in sizes.items()]}
    names = list(sizes)
    order = sorted(reads, key=lambda r: (names.index(r["chrom"]), r["start"])) if sort else reads
    with pysam.AlignmentFile(str(path), mode, header=header, reference_filename=fasta) as out:
        for i, r in enumerate(order):
            a = pysam.AlignedSegment(out.header)
            a.query_name = r.get("name", f"r{i}")
            length = sum(int(n) for n, op in re.findall(r"(\d+)([MIDNSHP=X])", r["cigar"]) if op in "MIS=X")
            a.query_sequence = "A" * length
            a.query_qualities = pysam.qualitystring_to_array("I" * length)
            a.flag = r.get("flag", 0) | (0x10 if r.get("reverse") else 0)
            a.reference_id = names.index(r["chrom"])
            a.reference_start = r["start"]
            a.cigarstring = r["cigar"]
            a.mapping_quality = r.get("mapq", 60)
            out.write(a)
    return path


def random_reads(rng, n, sizes=SIZES):
    reads = []
    for _ in range(n):
        chrom = str(rng.choice(list(sizes)))
        cigar = str(rng.choice(["20M", "5S15M", "10M2D10M", "8M3I9M", "12M100N8M", "18M2S"]))
        start = int(rng.integers(0, sizes[chrom] - ref_length(cigar)))
        reads.append({"chrom": chrom, "start": start, "cigar": cigar, "reverse": bool(rng.random() < 0.5)})
    return reads


def dense(counts, sizes=SIZES):
    """{strand: {chrom: dense array}} from five_prime_counts' sparse result."""
    out = {}
    for strand, per_chrom in counts.items():
        out[strand] = {c: np.zeros(n, np.int64) for c, n in sizes.items()}
        for c, (pos, cnt) in per_chrom.items():
            out[strand][c][pos] = cnt
    return out


def expected_dense(reads, sizes=SIZES):
    out = {s: {c: np.zeros(n, np.int64) for c, n in sizes.items()} for s in ("pos", "neg")}
    for r in reads:
        strand, pos = expected_five_prime(r)
        out[strand][r["chrom"]][pos] += 1
    return out


def assert_same(got, want):
    for strand in ("pos", "neg"):
        for chrom in want[strand]:
            np.testing.assert_array_equal(got[strand][chrom], want[strand][chrom], err_msg=f"{strand} {chrom}")


def test_five_prime_ends_of_spliced_clipped_and_gapped_reads(tmp_path):
    rng = np.random.default_rng(0)
    reads = random_reads(rng, 500)
    bam = write_bam(tmp_path / "a.bam", reads)
    counts, (summary,) = five_prime_counts([str(bam)], SIZES)
    assert_same(dense(counts), expected_dense(reads))
    assert summary.reads == summary.counted == 500


def test_unsorted_file_and_replicates_are_summed(tmp_path):
    rng = np.random.default_rng(1)
    a, b = random_reads(rng, 300), random_reads(rng, 200)
    bams = [str(write_bam(tmp_path / "a.bam", a, sort=False)), str(write_bam(tmp_path / "b.sam", b, mode="w"))]
    counts, summaries = five_prime_counts(bams, SIZES)
    assert_same(dense(counts), expected_dense(a + b))
    assert [s.counted for s in summaries] == [300, 200]


def test_filters_drop_what_they_name(tmp_path):
    keep = [{"chrom": "chr1", "start": 10, "cigar": "20M"},
            {"chrom": "chr1", "start": 50, "cigar": "20M", "reverse": True, "mapq": 10},
            {"chrom": "chr2", "start": 30, "cigar": "20M", "flag": 0x1 | 0x40}]  # read 1 of a pair
    drop = {
        "unmapped": {"chrom": "chr1", "start": 5, "cigar": "20M", "flag": 0x4},
        "secondary_or_supplementary": {"chrom": "chr1", "start": 6, "cigar": "20M", "flag": 0x100},
        "qc_fail": {"chrom": "chr1", "start": 7, "cigar": "20M", "flag": 0x200},
        "duplicate": {"chrom": "chr1", "start": 8, "cigar": "20M", "flag": 0x400},
        "low_mapq": {"chrom": "chr1", "start": 9, "cigar": "20M", "mapq": 9},
        "read2_skipped": {"chrom": "chr2", "start": 90, "cigar": "20M", "flag": 0x1 | 0x80, "reverse": True},
    }
    supplementary = {"chrom": "chr1", "start": 11, "cigar": "20M", "flag": 0x800}
    bam = write_bam(tmp_path / "f.bam", keep + list(drop.values()) + [supplementary])
    counts, (s,) = five_prime_counts([str(bam)], SIZES, min_mapq=10)
    assert_same(dense(counts), expected_dense(keep))
    assert s.reads == len(keep) + len(drop) + 1 and s.counted == len(keep)
    assert {c: getattr(s, c) for c in drop} == {c: 1 + (c == "secondary_or_supplementary") for c in drop}

    # the options bring back duplicates and read 2 (both ends of a fragment)
    counts, (s,) = five_prime_counts([str(bam)], SIZES, min_mapq=10, keep_duplicates=True, paired_end="both")
    assert_same(dense(counts), expected_dense(keep + [drop["duplicate"], drop["read2_skipped"]]))
    assert s.duplicate == s.read2_skipped == 0


def test_reads_on_contigs_outside_the_genome_are_counted_apart(tmp_path):
    sizes = {**SIZES, "chrUn_x": 100}
    reads = [{"chrom": "chr1", "start": 1, "cigar": "20M"}, {"chrom": "chrUn_x", "start": 3, "cigar": "20M"}]
    bam = write_bam(tmp_path / "u.bam", reads, sizes=sizes)
    counts, (s,) = five_prime_counts([str(bam)], SIZES)
    assert s.off_genome == 1 and s.off_genome_contigs == {"chrUn_x"}
    assert_same(dense(counts), expected_dense(reads[:1]))


def test_cram_is_read_with_the_genome_fasta(tmp_path):
    fasta = tmp_path / "g.fa"
    fasta.write_text("".join(f">{c}\n{'ACGT' * (n // 4)}\n" for c, n in SIZES.items()))
    pysam.faidx(str(fasta))
    rng = np.random.default_rng(2)
    reads = [r for r in random_reads(rng, 100) if "N" not in r["cigar"]]
    cram = write_bam(tmp_path / "a.cram", reads, mode="wc", fasta=str(fasta))
    counts, _ = five_prime_counts([str(cram)], SIZES, fasta=str(fasta))
    assert_same(dense(counts), expected_dense(reads))


def test_bigwigs_and_summary_are_written(tmp_path):
    rng = np.random.default_rng(3)
    reads = random_reads(rng, 400)
    bam = write_bam(tmp_path / "a.bam", reads)
    sizes = tmp_path / "g.sizes"
    sizes.write_text("".join(f"{c}\t{n}\n" for c, n in SIZES.items()))
    out = {s: tmp_path / f"counts.{s}.bw" for s in ("pos", "neg")}
    write_read_bigwigs([str(bam)], str(sizes), str(out["pos"]), str(out["neg"]), str(tmp_path / "s.tsv"),
                       min_mapq=0)
    want = expected_dense(reads)
    for strand, path in out.items():
        with pyBigWig.open(str(path)) as bw:
            assert bw.chroms() == SIZES
            for chrom, n in SIZES.items():
                got = np.nan_to_num(np.array(bw.values(chrom, 0, n)))
                np.testing.assert_array_equal(got, want[strand][chrom])
    lines = (tmp_path / "s.tsv").read_text().splitlines()
    assert lines[0].split("\t") == list(SUMMARY_COLUMNS)
    assert lines[1].split("\t")[1:3] == ["400", "400"]


def test_bad_files_are_one_line_errors(tmp_path):
    good = [{"chrom": "chr1", "start": 1, "cigar": "20M"}]
    other_assembly = write_bam(tmp_path / "mm9.bam", good, sizes={"chr1": 310, "chr2": 200})
    with pytest.raises(BPNetInputError, match=r"mm9.bam: contig chr1 is 310 bp in the BAM header but 300 bp"):
        five_prime_counts([str(other_assembly)], SIZES)
    other_names = write_bam(tmp_path / "ens.bam", [{"chrom": "1", "start": 1, "cigar": "20M"}],
                            sizes={"1": 300})
    with pytest.raises(BPNetInputError, match=r"ens.bam: no contig name in common .*BAM: 1, .*genome: chr1"):
        five_prime_counts([str(other_names)], SIZES)
    text = tmp_path / "notes.bam"
    text.write_text("these are not reads\n")
    with pytest.raises(BPNetInputError, match=r"notes.bam: not a readable BAM/CRAM/SAM file"):
        five_prime_counts([str(text)], SIZES)
    with pytest.raises(BPNetInputError, match=r"absent.bam: no such BAM/CRAM file"):
        five_prime_counts([str(tmp_path / "absent.bam")], SIZES)
    rng = np.random.default_rng(4)
    big = write_bam(tmp_path / "big.bam", random_reads(rng, 20000))
    cut = tmp_path / "cut.bam"
    data = big.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BPNetInputError, match=r"cut.bam: not a readable BAM/CRAM/SAM file .*truncated"):
        five_prime_counts([str(cut)], SIZES)
    # cut in the middle but ending with the end-of-file block: found while reading
    cut.write_bytes(data[: len(data) // 2] + data[-28:])
    with pytest.raises(BPNetInputError, match=r"cut.bam: cannot read past read [\d,]+: .*truncated or corrupt"):
        five_prime_counts([str(cut)], SIZES)
    dups = write_bam(tmp_path / "dups.bam", [{"chrom": "chr1", "start": 1, "cigar": "20M", "flag": 0x400}])
    with pytest.raises(BPNetInputError, match=r"dups.bam: no read passed the filters .*keep_duplicates False"):
        five_prime_counts([str(dups)], SIZES)
    with pytest.raises(BPNetInputError, match=r"paired_end is 'mate'"):
        five_prime_counts([str(dups)], SIZES, paired_end="mate")


def test_memory_request_counts_reads_from_the_index_or_the_size(tmp_path):
    from bpnet.data.reads import MEM_BASE_MB, counting_mem_mb, estimated_reads

    rng = np.random.default_rng(5)
    bam = write_bam(tmp_path / "a.bam", random_reads(rng, 3000))
    assert estimated_reads([str(bam)]) == bam.stat().st_size // 9  # no index: from the size
    pysam.index(str(bam))
    assert estimated_reads([str(bam)]) == 3000
    assert estimated_reads([str(tmp_path / "absent.bam")]) == 0
    assert counting_mem_mb([str(bam)]) >= MEM_BASE_MB
