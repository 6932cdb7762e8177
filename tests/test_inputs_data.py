"""Bad data inputs are errors naming the file: a truncated bigWig, a FASTA whose .fai is stale."""

from __future__ import annotations

import os

import numpy as np
import pyfaidx
import pytest

from bpnet.errors import BPNetInputError
from bpnet.io.sequence import decode, open_fasta, read_fasta_windows
from bpnet.io.tracks import open_bigwig, read_windows, write_bigwig

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


def write_raw_bigwig(path, values):
    """A chr1 (30 kb) bigWig storing ``values`` at 1-bp entries 10, 20, 30, ... (pyBigWig keeps NaN/inf)."""
    import pyBigWig

    bw = pyBigWig.open(str(path), "w")
    bw.addHeader([("chr1", SIZES["chr1"])], maxZooms=0)
    starts = [10 * (i + 1) for i in range(len(values))]
    bw.addEntries(["chr1"] * len(values), starts, ends=[s + 1 for s in starts], values=[float(v) for v in values])
    bw.close()
    return path


def build_chr1(tmp_path, count_path, **kwargs):
    import pandas as pd

    from bpnet.data.dataset import build_dataset

    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\n" + "ACGT" * (SIZES["chr1"] // 4) + "\n")
    plain = write_raw_bigwig(tmp_path / "plain.bw", [1, 2])
    w = pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [100], "summit": [50], "tasks": ["A"],
                      "split": ["train"], "name": ["w"]})
    return build_dataset(w, fasta, [count_path, plain], ["A"], **kwargs)


def test_a_count_bigwig_storing_nan_is_an_error_naming_the_file_and_the_option(tmp_path):
    path = write_raw_bigwig(tmp_path / "nan counts.bw", [3, np.nan, 1])
    with pytest.raises(BPNetInputError, match=r"nan counts\.bw.*NaN.*data\.nan_as_zero"):
        build_chr1(tmp_path, path)


def test_nan_as_zero_reads_stored_nan_as_zero_with_a_warning(tmp_path, caplog):
    path = write_raw_bigwig(tmp_path / "nan counts.bw", [3, np.nan, 1])
    with caplog.at_level("WARNING"):
        counts = build_chr1(tmp_path, path, nan_as_zero=True)["counts"]
    assert counts[0, [10, 20, 30], 0].tolist() == [3, 0, 1]
    assert counts[0, :, 0].sum() == 4
    assert any(r.levelname == "WARNING" and "nan counts.bw" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_a_count_bigwig_storing_inf_is_an_error_naming_the_file(tmp_path, value):
    path = write_raw_bigwig(tmp_path / "inf counts.bw", [3, value, 1])
    for nan_as_zero in (False, True):
        with pytest.raises(BPNetInputError, match=r"inf counts\.bw.*infinite"):
            build_chr1(tmp_path, path, nan_as_zero=nan_as_zero)


def test_a_sparse_count_bigwig_reads_no_data_as_zero_without_error(tmp_path, caplog):
    path = write_raw_bigwig(tmp_path / "sparse.bw", [3, 2, 1])
    with caplog.at_level("WARNING"):
        counts = build_chr1(tmp_path, path)["counts"]
    assert counts[0, [10, 20, 30], 0].tolist() == [3, 2, 1]
    assert counts[0, :, 0].sum() == 6 and counts[0, :, 1].sum() == 3
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
