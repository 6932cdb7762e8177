"""Dataset building: values against pyBigWig/pyfaidx read per window, padding, dtypes, errors, I/O."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyBigWig
import pyfaidx
import pytest

from bpnet.data.dataset import (
    build_dataset,
    count_dtype,
    load_dataset,
    outlier_windows,
    write_dataset,
    write_dataset_file,
)
from bpnet.errors import BPNetInputError
from bpnet.io.sequence import encode
from bpnet.io.tracks import write_bigwig

REPO = Path(__file__).resolve().parents[1]
SIZES = {"chr1": 3000, "chr2": 2500, "chrT": 150}
TASKS = ["A", "B"]


def write_fasta(path: Path, seqs: dict[str, str]) -> Path:
    with open(path, "w") as fh:
        for chrom, seq in seqs.items():
            fh.write(f">{chrom}\n")
            fh.writelines(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60))
    pyfaidx.Faidx(str(path))  # writes the .fai index
    return path


@pytest.fixture
def genome(tmp_path):
    """A 3-chromosome genome, 2 tasks x 2 strands of sparse Poisson counts, a float control."""
    rng = np.random.default_rng(0)
    seqs = {c: "".join(rng.choice(list("ACGTacgN"), size=n)) for c, n in SIZES.items()}
    fasta = write_fasta(tmp_path / "genome.fa", seqs)
    counts = []
    for task in TASKS:
        for strand in ("pos", "neg"):
            path = tmp_path / f"{task}.{strand}.bw"
            tracks = {c: rng.poisson(0.3, size=n).astype(float) for c, n in SIZES.items()}
            tracks["chr1"][1000:1010] = 9
            write_bigwig(path, SIZES, tracks)
            counts.append(str(path))
    control = []
    for strand in ("pos", "neg"):
        path = tmp_path / f"control.{strand}.bw"
        write_bigwig(path, SIZES, {c: rng.random(n).round(2) for c, n in SIZES.items()})
        control.append(str(path))
    return SimpleNamespace(fasta=fasta, counts=counts, control=control, seqs=seqs, dir=tmp_path)


def windows_table(chroms, starts, width) -> pd.DataFrame:
    starts = np.asarray(starts, dtype=np.int64)
    return pd.DataFrame({
        "chrom": chroms,
        "start": starts,
        "end": starts + width,
        "summit": starts + width // 2,
        "tasks": ["A"] * len(starts),
        "split": (["train", "valid", "test"] * len(starts))[:len(starts)],
        "name": [f"{c}:{s}-{s + width}" for c, s in zip(chroms, starts)],
    })


def direct_values(path, chrom, lo, hi) -> np.ndarray:
    """pyBigWig values of [lo, hi), no data = 0, positions beyond the chromosome = 0."""
    bw = pyBigWig.open(str(path))
    size = bw.chroms(chrom)
    out = np.zeros(hi - lo)
    a, b = max(lo, 0), min(hi, size)
    out[a - lo:b - lo] = np.nan_to_num(bw.values(chrom, a, b, numpy=True))
    bw.close()
    return out


def direct_codes(seqs, chrom, lo, hi) -> np.ndarray:
    seq = seqs[chrom]
    left, right = max(0, -lo), max(0, hi - len(seq))
    return encode("N" * left + seq[max(lo, 0):min(hi, len(seq))] + "N" * right)


# ------------------------------------------------------------------------------- extraction


def test_counts_sequence_and_control_match_direct_reads(genome):
    w = windows_table(["chr1", "chr2", "chr1", "chr1", "chr2"], [0, 100, 950, 2800, 2300], 200)
    arrays = build_dataset(w, genome.fasta, genome.counts, TASKS, genome.control)
    assert arrays["sequence"].dtype == np.uint8 and arrays["sequence"].shape == (5, 200)
    assert arrays["counts"].shape == (5, 200, 4)
    assert arrays["control"].dtype == np.float32 and arrays["control"].shape == (5, 200, 2)
    for i, (chrom, start) in enumerate(zip(w["chrom"], w["start"])):
        np.testing.assert_array_equal(arrays["sequence"][i], direct_codes(genome.seqs, chrom, start, start + 200))
        for k, path in enumerate(genome.counts):
            np.testing.assert_array_equal(arrays["counts"][i, :, k], direct_values(path, chrom, start, start + 200))
        for k, path in enumerate(genome.control):
            np.testing.assert_array_equal(arrays["control"][i, :, k],
                                          direct_values(path, chrom, start, start + 200).astype(np.float32))
    assert arrays["counts"][2, 50:60].min() == 9  # chr1:1000-1010 set to 9 in every track
    assert arrays["tasks"].tolist() == TASKS
    assert arrays["split"].tolist() == w["split"].tolist()
    assert arrays["start"].dtype == np.int64 and arrays["start"].tolist() == w["start"].tolist()
    assert int(arrays["width"]) == 200 and int(arrays["extra_context"]) == 0
    assert "control" not in build_dataset(w, genome.fasta, genome.counts, TASKS, None)


def test_channels_are_task_major(genome):
    w = windows_table(["chr1"], [900], 200)
    swapped = [genome.counts[2], genome.counts[3], genome.counts[0], genome.counts[1]]
    a = build_dataset(w, genome.fasta, genome.counts, TASKS)["counts"]
    b = build_dataset(w, genome.fasta, swapped, TASKS[::-1])["counts"]
    np.testing.assert_array_equal(a[..., [2, 3, 0, 1]], b)


def test_extra_context_is_read_and_padded_with_n_and_zero_past_chromosome_ends(genome):
    c = 60
    w = windows_table(["chr1", "chr1", "chr2", "chrT"], [0, 1500, 2400, 20], 100)
    arrays = build_dataset(w, genome.fasta, genome.counts, TASKS, genome.control, extra_context=c)
    assert arrays["sequence"].shape == (4, 220)
    for i, (chrom, start) in enumerate(zip(w["chrom"], w["start"])):
        lo, hi = start - c, start + 100 + c
        np.testing.assert_array_equal(arrays["sequence"][i], direct_codes(genome.seqs, chrom, lo, hi))
        for k, path in enumerate(genome.counts):
            np.testing.assert_array_equal(arrays["counts"][i, :, k], direct_values(path, chrom, lo, hi))
    # chr1:0 -> 60 bp before the chromosome; chrT (150 bp) is shorter than the stored 220 bp.
    assert (arrays["sequence"][0, :c] == 4).all() and (arrays["counts"][0, :c] == 0).all()
    assert (arrays["sequence"][3, 20 + c + 130:] == 4).all()
    assert (arrays["control"][2, 100 + c + 40:] == 0).all()  # chr2 ends 40 bp after window 2
    # The core window equals what is built without context.
    plain = build_dataset(w, genome.fasta, genome.counts, TASKS, genome.control)
    for key in ("sequence", "counts", "control"):
        np.testing.assert_array_equal(arrays[key][:, c:c + 100], plain[key])
    assert arrays["start"].tolist() == w["start"].tolist()  # core start, context excluded


@pytest.mark.parametrize("top, dtype", [(255, np.uint8), (256, np.uint16), (65535, np.uint16), (70000, np.int32)])
def test_counts_use_the_smallest_integer_type(genome, top, dtype):
    assert count_dtype(top) == dtype
    path = genome.dir / "big.bw"
    track = np.zeros(SIZES["chr1"])
    track[1200] = top
    write_bigwig(path, SIZES, {"chr1": track})
    w = windows_table(["chr1"], [1100], 200)
    counts = build_dataset(w, genome.fasta, [path, genome.counts[1]], ["A"])["counts"]
    assert counts.dtype == dtype
    assert counts[0, 100, 0] == top
    # the large track last: the counts read so far are widened, none is lost
    widened = build_dataset(w, genome.fasta, [genome.counts[1], path], ["A"])["counts"]
    assert widened.dtype == dtype and widened[0, 100, 1] == top
    np.testing.assert_array_equal(widened[..., 0], counts[..., 1])
    assert widened[..., 0].max() > 0


@pytest.mark.parametrize("value", [2.5, -1.0])
def test_non_integer_or_negative_counts_are_errors_naming_the_file(genome, value):
    path = genome.dir / "normalised.bw"
    track = np.ones(SIZES["chr1"])
    track[1234] = value
    write_bigwig(path, SIZES, {"chr1": track})
    w = windows_table(["chr1"], [1100], 200)
    with pytest.raises(BPNetInputError, match=r"normalised\.bw holds .* at chr1:1234.*non-negative integer"):
        build_dataset(w, genome.fasta, [genome.counts[0], path], ["A"])


# ------------------------------------------------------------------------------- errors


def test_chromosome_missing_from_a_bigwig_names_fasta_and_bigwig(genome):
    path = genome.dir / "nochr2.bw"
    write_bigwig(path, {"chr1": 3000, "chrT": 150}, {"chr1": np.ones(3000)})
    w = windows_table(["chr1", "chr2"], [100, 100], 200)
    with pytest.raises(BPNetInputError) as err:
        build_dataset(w, genome.fasta, [genome.counts[0], path], ["A"])
    assert "'chr2'" in str(err.value) and str(genome.fasta) in str(err.value) and str(path) in str(err.value)


def test_chromosome_length_disagreement_names_both_files(genome):
    path = genome.dir / "longer.bw"
    write_bigwig(path, {"chr1": 3500, "chr2": 2500}, {"chr1": np.ones(3500)})
    w = windows_table(["chr1"], [100], 200)
    with pytest.raises(BPNetInputError, match=r"'chr1' is 3000 bp in the FASTA .*genome\.fa but 3500 bp in the bigWig .*longer\.bw"):
        build_dataset(w, genome.fasta, genome.counts[:2], ["A"], control_bigwigs=[path, path])


def test_chromosome_missing_from_the_fasta_is_an_error(genome):
    w = windows_table(["chr7"], [100], 200)
    with pytest.raises(BPNetInputError, match=r"'chr7' has windows in wins\.tsv but is not in the FASTA .*genome\.fa"):
        build_dataset(w, genome.fasta, genome.counts[:2], ["A"], windows_source="wins.tsv")


def test_window_past_the_fasta_end_and_wrong_track_count_are_errors(genome):
    with pytest.raises(BPNetInputError, match="leaves the chromosome"):
        build_dataset(windows_table(["chr2"], [2400], 200), genome.fasta, genome.counts[:2], ["A"])
    with pytest.raises(BPNetInputError, match="2 count bigWigs"):
        build_dataset(windows_table(["chr2"], [100], 200), genome.fasta, genome.counts[:3], ["A"])


# ------------------------------------------------------------------------------- files


def test_write_load_round_trip_is_deterministic(genome, tmp_path):
    w = windows_table(["chr1", "chr1", "chr2"], [0, 1000, 500], 200)
    arrays = build_dataset(w, genome.fasta, genome.counts, TASKS, extra_context=25)
    p1, p2 = tmp_path / "a.npz", tmp_path / "b.npz"
    write_dataset(p1, arrays)
    write_dataset(p2, build_dataset(w, genome.fasta, genome.counts, TASKS, extra_context=25))
    assert p1.read_bytes() == p2.read_bytes()
    with np.load(p1, allow_pickle=False) as npz:  # a plain .npz
        assert set(npz.files) == set(arrays)
    ds = load_dataset(p1)
    assert (len(ds), ds.n_tasks, ds.width, ds.extra_context, ds.length) == (3, 2, 200, 25, 250)
    assert ds.control is None
    np.testing.assert_array_equal(ds.counts, arrays["counts"])
    np.testing.assert_array_equal(ds.sequence[:, ds.core], arrays["sequence"][:, 25:225])
    assert ds.split_mask("valid").tolist() == [False, True, False]
    assert ds.split_indices("train").tolist() == [0]
    assert ds.chrom.tolist() == ["chr1", "chr1", "chr2"]
    assert ds.counts[..., ds.task_channels("B")].shape == (3, 250, 2)
    with pytest.raises(BPNetInputError, match="split must be"):
        ds.split_mask("validation")


def test_load_dataset_errors(tmp_path):
    with pytest.raises(BPNetInputError, match="does not exist"):
        load_dataset(tmp_path / "none.npz")
    partial = tmp_path / "partial.npz"
    np.savez(partial, sequence=np.zeros((1, 10), np.uint8))
    with pytest.raises(BPNetInputError, match=r"lacks the array\(s\) \['counts'"):
        load_dataset(partial)


def test_write_dataset_file_reads_windows_tsv_and_writes_npz(genome, tmp_path):
    w = windows_table(["chr1", "chr2"], [300, 700], 200)
    w.to_csv(tmp_path / "windows.tsv", sep="\t", index=False)
    out = tmp_path / "dataset.npz"

    write_dataset_file(
        str(tmp_path / "windows.tsv"), str(genome.fasta), genome.counts, TASKS,
        str(out), control_bigwigs=genome.control, extra_context=10,
    )
    ds = load_dataset(out)
    assert ds.counts.shape == (2, 220, 4) and ds.control.shape == (2, 220, 2)
    np.testing.assert_array_equal(ds.counts[1, :, 3], direct_values(genome.counts[3], "chr2", 690, 910))


@pytest.mark.skipif(shutil.which("bedtools") is None, reason="bedtools not installed")
def test_rules_run_in_snakemake(genome, tmp_path):
    """peak_windows -> build_dataset through Snakemake with the project's rule files."""
    (tmp_path / "genome.chrom.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in SIZES.items()))
    for task, summits in zip(TASKS, ([500, 1500], [1500, 2000])):
        (tmp_path / f"{task}.bed").write_text("".join(f"chr1\t{s}\t{s + 1}\n" for s in summits)
                                             + "chr2\t1200\t1202\n")
    (tmp_path / "bl.bed").write_text("chr1\t2090\t2091\n")  # drops chr1:1900-2100
    config = tmp_path / "config.yaml"
    tasks = "".join(f"    {t}: {{pos: {genome.counts[2 * i]}, neg: {genome.counts[2 * i + 1]}, peaks: {tmp_path / (t + '.bed')}}}\n"
                    for i, t in enumerate(TASKS))
    config.write_text(
        "experiment: e\n"
        f"data:\n  genome_fasta: {genome.fasta}\n  chrom_sizes: {tmp_path / 'genome.chrom.sizes'}\n"
        f"  tasks:\n{tasks}"
        f"windows: {{width: 200, valid_chroms: [chr2], test_chroms: [chrT], blacklist: {tmp_path / 'bl.bed'}}}\n"
        "dataset: {extra_context: 5}\n"
    )
    rules = REPO / "workflow" / "rules"
    (tmp_path / "Snakefile").write_text(
        f'configfile: "{config}"\n'
        + "".join(f'include: "{rules / name}"\n' for name in ("common.smk", "windows.smk", "dataset.smk"))
    )
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "results/e/dataset.npz"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    windows = pd.read_csv(tmp_path / "results/e/windows.tsv", sep="\t")
    assert windows["name"].tolist() == ["chr1:400-600", "chr1:1400-1600", "chr2:1101-1301"]
    assert windows["tasks"].tolist() == ["A", "A,B", "A,B"]
    summary = pd.read_csv(tmp_path / "results/e/windows_summary.tsv", sep="\t")
    assert summary.query("task == 'B' and item == 'blacklist'")["count"].tolist() == [1]
    ds = load_dataset(tmp_path / "results/e/dataset.npz")
    assert ds.counts.shape == (3, 210, 4)
    assert ds.split.tolist() == ["train", "train", "valid"]
    np.testing.assert_array_equal(ds.counts[1, :, 2], direct_values(genome.counts[2], "chr1", 1395, 1605))
    assert (tmp_path / "results/e/benchmarks/build_dataset.tsv").exists()
    assert "wrote 3 windows" in (tmp_path / "logs/e/peak_windows.log").read_text()


def test_block_wise_readers_match_direct_reads(genome, monkeypatch):
    """read_windows / read_fasta_windows split a chromosome into blocks; results must not change."""
    from bpnet.io import sequence, tracks

    rng = np.random.default_rng(3)
    starts = rng.integers(0, SIZES["chr1"] - 200, size=40)
    chroms = np.array(["chr1"] * 30 + ["chr2"] * 10)
    starts[30:] = rng.integers(0, SIZES["chr2"] - 200, size=10)
    small = tracks.read_windows(genome.counts, chroms, starts, 200, block_bp=450)
    whole = tracks.read_windows(genome.counts, chroms, starts, 200)
    np.testing.assert_array_equal(small, whole)
    for i in range(len(starts)):
        np.testing.assert_array_equal(small[i, :, 1], direct_values(genome.counts[1], chroms[i], starts[i], starts[i] + 200))
    monkeypatch.setattr(sequence, "_BLOCK_BP", 450)
    codes = sequence.read_fasta_windows(genome.fasta, chroms, starts, 200)
    for i in range(len(starts)):
        np.testing.assert_array_equal(codes[i], direct_codes(genome.seqs, chroms[i], starts[i], starts[i] + 200))


def test_blocks_split_at_long_gaps_and_cover_every_window_once():
    from bpnet.io.tracks import MAX_GAP_BP, _blocks

    starts = np.array([5_000, 0, 2_000, 5_000 + MAX_GAP_BP + 1, 900_000, 903_000, 30_000_000])
    blocks = [b.tolist() for b in _blocks(starts, 1000, block_bp=8_000_000)]
    assert sorted(i for b in blocks for i in b) == list(range(len(starts)))
    # sorted by start; a new block after each gap > MAX_GAP_BP, and never more than block_bp long
    assert blocks == [[1, 2, 0], [3], [4, 5], [6]]
    assert [b.tolist() for b in _blocks(np.array([0, 3_000, 6_000]), 1000, block_bp=4_000)] == [[0, 1], [2]]


def test_outlier_windows_are_those_above_their_tasks_quantile():
    rng = np.random.default_rng(0)
    n, c, w = 200, 5, 20
    counts = rng.poisson(1.0, (n, w + 2 * c, 4)).astype(np.uint16)
    window_tasks = np.array(["A"] * 100 + ["B"] * 90 + ["A,B"] * 5 + [""] * 5)
    counts[7, c:c + w, 0:2] += 500  # an A peak far above the rest
    counts[150, c:c + w, 2:4] += 400  # a B peak
    counts[197, c:c + w] += 900  # a background window: never an outlier
    counts[10, :c, 0:2] += 900  # reads outside the core window do not count
    outlier, dropped = outlier_windows(counts, window_tasks, ["A", "B"], c, w, 0.99)
    assert outlier[7] and outlier[150] and not outlier[197] and not outlier[10]
    totals_a = counts[np.flatnonzero(np.char.find(window_tasks.astype(str), "A") >= 0), c:c + w, 0:2].sum(axis=(1, 2))
    assert dropped["A"] == int((totals_a > np.quantile(totals_a, 0.99)).sum())
    assert outlier.sum() <= sum(dropped.values())  # a window may be an outlier of both tasks
    assert not outlier[window_tasks == ""].any()


def test_write_dataset_file_drops_outliers_from_every_array(genome, tmp_path):
    w = windows_table(["chr1", "chr1", "chr2"], [300, 700, 500], 200)
    w.to_csv(tmp_path / "windows.tsv", sep="\t", index=False)
    kept = write_dataset_file(str(tmp_path / "windows.tsv"), str(genome.fasta), genome.counts,
                              TASKS, str(tmp_path / "all.npz"))
    totals = kept["counts"][:, :, 0:2].sum(axis=(1, 2))
    top = int(np.argmax(totals))
    write_dataset_file(str(tmp_path / "windows.tsv"), str(genome.fasta), genome.counts,
                       TASKS, str(tmp_path / "cut.npz"), outlier_quantile=0.6)
    ds = load_dataset(tmp_path / "cut.npz")
    assert len(ds.start) < 3 and int(kept["start"][top]) not in ds.start.tolist()
    assert ds.sequence.shape[0] == ds.counts.shape[0] == len(ds.split) == len(ds.window_tasks) == len(ds.chrom)


def test_a_minus_strand_stored_negative_is_read_with_the_option_and_named_without(genome):
    w = windows_table(["chr1", "chr2"], [1100, 700], 200)
    plain = build_dataset(w, genome.fasta, genome.counts[:2], ["A"])["counts"]
    stored = genome.dir / "negative.neg.bw"  # the same - strand, stored as negative numbers
    write_bigwig(stored, SIZES, {c: -direct_values(genome.counts[1], c, 0, n) for c, n in SIZES.items()})
    read = build_dataset(w, genome.fasta, [genome.counts[0], stored], ["A"], minus_strand_negative=True)["counts"]
    np.testing.assert_array_equal(read, plain)
    assert plain[..., 1].sum() > 0
    with pytest.raises(BPNetInputError, match=r"negative.neg.bw holds -\d+ .*set data.minus_strand_negative: true"):
        build_dataset(w, genome.fasta, [genome.counts[0], stored], ["A"])
    # with the option, a positive value in a - strand file is named (the + strand is read as is)
    with pytest.raises(BPNetInputError, match=r"\.neg\.bw holds \d+ .*minus_strand_negative: true every - strand value"):
        build_dataset(w, genome.fasta, genome.counts[:2], ["A"], minus_strand_negative=True)


def test_unstranded_tasks_have_one_channel_each(genome, tmp_path):
    w = windows_table(["chr1", "chr2"], [1100, 700], 200)
    arrays = build_dataset(w, genome.fasta, genome.counts[:2], TASKS, control_bigwigs=genome.control[:1], strands=1)
    assert arrays["counts"].shape == (2, 200, 2) and arrays["control"].shape == (2, 200, 1)
    np.testing.assert_array_equal(arrays["counts"][1, :, 1], direct_values(genome.counts[1], "chr2", 700, 900))
    write_dataset(tmp_path / "u.npz", arrays)
    ds = load_dataset(tmp_path / "u.npz")
    assert ds.strands == 1 and ds.task_channels("B") == slice(1, 2)
    with pytest.raises(BPNetInputError, match=r"expected 1 unstranded count bigWig per task .* got 4"):
        build_dataset(w, genome.fasta, genome.counts, TASKS, strands=1)
    with pytest.raises(BPNetInputError, match=r"expected 1 control bigWig\(s\), as the tasks have, got 2"):
        build_dataset(w, genome.fasta, genome.counts[:2], TASKS, control_bigwigs=genome.control, strands=1)
