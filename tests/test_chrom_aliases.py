"""data.chrom_aliases: peak files, bigWigs and BAM headers that name the genome's chromosomes
otherwise (1 / chr1, chr01 / chrI) are read with the genome's names."""

import numpy as np
import pandas as pd
import pytest
from test_reads import expected_dense, write_bam

from bpnet.data.dataset import build_dataset
from bpnet.data.reads import five_prime_counts
from bpnet.data.windows import write_peak_windows
from bpnet.errors import BPNetInputError
from bpnet.io.chroms import read_chrom_aliases
from bpnet.io.tracks import read_windows, write_bigwig

GENOME = {"chrI": 3000, "chrII": 2500}
ALIASES = "# file name\tgenome name\nchr01\tchrI\nchr02\tchrII\n1\tchrI\n"


@pytest.fixture
def aliases(tmp_path):
    path = tmp_path / "aliases.tsv"
    path.write_text(ALIASES)
    return path


def test_the_table_maps_aliases_and_refuses_bad_lines(tmp_path, aliases):
    assert read_chrom_aliases(aliases, GENOME) == {"chr01": "chrI", "chr02": "chrII", "1": "chrI"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("chr01\tchrI\nchr03\tchrIII\n")
    with pytest.raises(BPNetInputError, match=r"bad.tsv, line 2: 'chrIII' is not a chromosome of the genome"):
        read_chrom_aliases(bad, GENOME)
    bad.write_text("chr01\tchrI\nchr01\tchrII\n")
    with pytest.raises(BPNetInputError, match=r"line 2: alias 'chr01' names 'chrII', but line 1 names 'chrI'"):
        read_chrom_aliases(bad, GENOME)
    bad.write_text("chr01\n")
    with pytest.raises(BPNetInputError, match=r"bad.tsv, line 1: expected 'alias<TAB>genome name'"):
        read_chrom_aliases(bad, GENOME)
    with pytest.raises(BPNetInputError, match=r"absent.tsv \(data.chrom_aliases\) does not exist"):
        read_chrom_aliases(tmp_path / "absent.tsv", GENOME)


def test_bigwigs_with_other_names_read_as_the_genomes(tmp_path, aliases):
    rng = np.random.default_rng(0)
    values = {c: rng.integers(0, 5, n).astype(float) for c, n in GENOME.items()}
    path = tmp_path / "counts.bw"
    write_bigwig(path, {"chr01": GENOME["chrI"], "chr02": GENOME["chrII"]},
                 {"chr01": values["chrI"], "chr02": values["chrII"]})
    table = read_chrom_aliases(aliases, GENOME)
    got = read_windows([path], ["chrII", "chrI"], [100, 2000], 300, aliases=table)
    np.testing.assert_array_equal(got[0, :, 0], values["chrII"][100:400])
    np.testing.assert_array_equal(got[1, :, 0], values["chrI"][2000:2300])
    with pytest.raises(BPNetInputError, match=r"'chrII' .* not in the bigWig"):
        read_windows([path], ["chrII"], [100], 300)  # without the table


def test_dataset_windows_and_reads_through_the_table(tmp_path, aliases):
    rng = np.random.default_rng(1)
    fasta = tmp_path / "g.fa"
    fasta.write_text("".join(f">{c}\n{''.join(rng.choice(list('ACGT'), n))}\n" for c, n in GENOME.items()))
    sizes = tmp_path / "g.sizes"
    sizes.write_text("".join(f"{c}\t{n}\n" for c, n in GENOME.items()))
    file_sizes = {"chr01": GENOME["chrI"], "chr02": GENOME["chrII"]}
    tracks = []
    for strand in ("pos", "neg"):
        path = tmp_path / f"c.{strand}.bw"
        write_bigwig(path, file_sizes, {c: rng.integers(0, 3, n).astype(float) for c, n in file_sizes.items()})
        tracks.append(str(path))
    peaks = tmp_path / "peaks.bed"
    peaks.write_text("chr01\t500\t700\nchr02\t1200\t1400\n1\t2000\t2200\n")
    out = tmp_path / "windows.tsv"
    config = {"width": 200, "valid_chroms": ["chrII"], "test_chroms": [], "exclude_chroms": [], "exclude_patterns": []}
    windows = write_peak_windows({"A": str(peaks)}, str(sizes), str(out), str(tmp_path / "s.tsv"), config,
                                 chrom_aliases=str(aliases))
    assert sorted(windows["chrom"]) == ["chrI", "chrI", "chrII"]
    with pytest.raises(BPNetInputError, match=r"shares no chromosome .*data.chrom_aliases"):
        write_peak_windows({"A": str(peaks)}, str(sizes), str(out), str(tmp_path / "s.tsv"), config)
    arrays = build_dataset(pd.read_csv(out, sep="\t"), fasta, tracks, ["A"],
                           chrom_aliases=read_chrom_aliases(aliases, GENOME))
    assert arrays["counts"].shape == (3, 200, 2)

    reads = [{"chrom": "chr02", "start": 10, "cigar": "20M"}, {"chrom": "chr01", "start": 5, "cigar": "20M", "reverse": True}]
    bam = write_bam(tmp_path / "r.bam", reads, sizes=file_sizes)
    counts, _ = five_prime_counts([str(bam)], GENOME, aliases=read_chrom_aliases(aliases, GENOME))
    want = expected_dense([{**r, "chrom": {"chr01": "chrI", "chr02": "chrII"}[r["chrom"]]} for r in reads], GENOME)
    assert counts["pos"]["chrII"][0].tolist() == [10] and counts["neg"]["chrI"][0].tolist() == [24]
    assert want["pos"]["chrII"][10] == 1 and want["neg"]["chrI"][24] == 1
