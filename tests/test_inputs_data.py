"""Bad data inputs are errors naming the file: a truncated bigWig, a FASTA whose .fai is stale."""

from __future__ import annotations

import os

import numpy as np
import pyfaidx
import pytest
from bpnet.errors import BPNetInputError
from bpnet.sequence import decode, open_fasta, read_fasta_windows
from bpnet.tracks import open_bigwig, read_windows, write_bigwig

SIZES = {"chr1": 30000, "chr2": 2500, "chrT": 150}


@pytest.fixture
def bigwig(tmp_path):
    rng = np.random.default_rng(1)
    tracks = {c: rng.poisson(0.5, size=n).astype(float) for c, n in SIZES.items()}
    path = tmp_path / "valid.bw"
    write_bigwig(path, SIZES, tracks)
    return path, tracks


@pytest.mark.parametrize("fraction", [0.6, 0.9, 0.999])
def test_a_truncated_bigwig_is_an_error_naming_the_file(bigwig, tmp_path, fraction):
    path, _ = bigwig
    data = path.read_bytes()
    short = tmp_path / "short copy.bw"
    short.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(BPNetInputError, match="short copy.bw.*truncated or corrupt"):
        open_bigwig(short)
    with pytest.raises(BPNetInputError, match="short copy.bw"):
        read_windows([short], ["chr1", "chr2"], [100, 200], 500)


def test_a_valid_bigwig_still_reads(bigwig, tmp_path):
    path, tracks = bigwig
    open_bigwig(path).close()
    out = read_windows([path], ["chr1", "chr2", "chr1"], [100, 200, 29000], 1000)
    np.testing.assert_array_equal(out[0, :, 0], tracks["chr1"][100:1100])
    np.testing.assert_array_equal(out[1, :, 0], tracks["chr2"][200:1200])
    np.testing.assert_array_equal(out[2, :, 0], tracks["chr1"][29000:30000])
    empty = tmp_path / "empty.bw"
    write_bigwig(empty, SIZES, {})  # a bigWig without data has no index; still valid
    assert not read_windows([empty], ["chr1"], [0], 10).any()


def write_fasta(path, seqs, width, index=True):
    with open(path, "w") as fh:
        for chrom, seq in seqs.items():
            fh.write(f">{chrom} some description\n")
            fh.writelines(seq[i:i + width] + "\n" for i in range(0, len(seq), width))
    if index:
        pyfaidx.Faidx(str(path))
    return path


@pytest.fixture
def seqs():
    rng = np.random.default_rng(2)
    return {c: "".join(rng.choice(list("ACGT"), size=n)) for c, n in
            {"chr1": 1000, "chr2": 777, "chr3": 60}.items()}


def make_newer(fai, fasta):
    t = os.path.getmtime(fasta) + 10
    os.utime(fai, (t, t))


@pytest.mark.parametrize("change", ["rewrap", "edit"])
def test_a_fasta_changed_after_indexing_is_an_error_naming_both_files(tmp_path, seqs, change):
    fasta = write_fasta(tmp_path / "genome.fa", seqs, 60)
    fai = tmp_path / "genome.fa.fai"
    old_fai = fai.read_text()
    if change == "rewrap":
        write_fasta(fasta, seqs, 50, index=False)
    else:  # same width, 7 bases added to chr1: chr2's offset moves
        write_fasta(fasta, {**seqs, "chr1": seqs["chr1"] + "ACGTACG"}, 60, index=False)
    assert fai.read_text() == old_fai
    make_newer(fai, fasta)  # the mtime alone cannot tell
    with pytest.raises(BPNetInputError, match=r"genome\.fa\.fai.*genome\.fa.*delete the stale"):
        open_fasta(fasta)
    with pytest.raises(BPNetInputError, match=r"genome\.fa\.fai"):
        read_fasta_windows(fasta, ["chr2"], [10], 100)
    assert fai.read_text() == old_fai  # the user's index is never rewritten


@pytest.mark.parametrize("width", [60, 50, 1000, 13])
def test_a_consistent_fasta_reads_windows_correctly(tmp_path, seqs, width):
    fasta = write_fasta(tmp_path / "genome.fa", seqs, width)
    make_newer(fasta, tmp_path / "genome.fa.fai")  # an older but matching .fai is fine
    codes = read_fasta_windows(fasta, ["chr1", "chr2", "chr3", "chr2"], [0, 677, 0, 5], 60)
    assert decode(codes[0]) == seqs["chr1"][:60]
    assert decode(codes[1]) == seqs["chr2"][677:737]
    assert decode(codes[2]) == seqs["chr3"]
    assert decode(codes[3]) == seqs["chr2"][5:65]


def test_a_fasta_without_index_is_indexed_as_before(tmp_path, seqs):
    fasta = write_fasta(tmp_path / "genome.fa", seqs, 60, index=False)
    assert decode(read_fasta_windows(fasta, ["chr3"], [0], 60)[0]) == seqs["chr3"]
    assert (tmp_path / "genome.fa.fai").exists()
