"""Peak windowing: peak parsing, centring, drops, pooling/merging, blacklist, split, files."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from bpnet.data.windows import (
    REASONS,
    WINDOW_COLUMNS,
    load_windows,
    make_windows,
    read_peaks,
    write_peak_windows,
)
from bpnet.errors import BPNetInputError

SIZES = {"chr1": 10_000, "chr2": 8_000, "chr3": 6_000, "chrX": 5_000}


def peaks_df(chroms, summits) -> pd.DataFrame:
    return pd.DataFrame({"chrom": list(chroms), "summit": np.asarray(summits, dtype=np.int64)})


def narrowpeak_line(chrom, start, end, offset) -> str:
    return f"{chrom}\t{start}\t{end}\tpeak\t0\t.\t5.0\t-1\t3.0\t{offset}"


def reasons(summary: pd.DataFrame, task: str) -> dict[str, int]:
    rows = summary[(summary["section"] == "reason") & (summary["task"] == task)]
    return dict(zip(rows["item"], rows["count"]))


def splits(summary: pd.DataFrame, task: str = "all") -> dict[str, int]:
    rows = summary[(summary["section"] == "split") & (summary["task"] == task)]
    return dict(zip(rows["item"], rows["count"]))


def windows_of(peaks, **kw):
    kw.setdefault("width", 100)
    kw.setdefault("valid_chroms", ["chr2"])
    kw.setdefault("test_chroms", ["chr3"])
    kw.setdefault("exclude_chroms", ["chrX"])
    return make_windows(peaks, SIZES, **kw)


# ------------------------------------------------------------------------------- read_peaks


def test_narrowpeak_summit_is_start_plus_offset_and_minus_one_is_midpoint(tmp_path):
    path = tmp_path / "peaks.narrowPeak.gz"
    lines = [
        "track name=peaks",
        "browser position chr1:1-100",
        "# a comment",
        narrowpeak_line("chr1", 100, 300, 37),
        "",
        narrowpeak_line("chr2", 1000, 1101, -1),
    ]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    df = read_peaks(path)
    assert df["chrom"].tolist() == ["chr1", "chr2"]
    assert df["summit"].tolist() == [137, 1050]
    assert df["line"].tolist() == [4, 6]


def test_bed_summit_is_midpoint_and_header_line_is_skipped(tmp_path):
    path = tmp_path / "peaks.bed"
    path.write_text("chrom\tstart\tend\nchr1\t10\t21\tx\t0\t+\nchr3\t500\t501\n")
    df = read_peaks(path)
    assert df["summit"].tolist() == [15, 500]
    assert df["line"].tolist() == [2, 3]


def test_ten_column_file_without_narrowpeak_name_is_read_as_narrowpeak(tmp_path):
    path = tmp_path / "peaks.txt"
    path.write_text(narrowpeak_line("chr1", 100, 300, 5) + "\n")
    assert read_peaks(path)["summit"].tolist() == [105]


def idr_line(chrom, start, end, offset) -> str:
    """A line of raw IDR output: narrowPeak, local and global IDR, then each replicate's peak."""
    return narrowpeak_line(chrom, start, end, offset) + f"\t1.2\t1.5\t{start}\t{end}\t4.0\t{offset}" \
        + f"\t{start + 3}\t{end - 3}\t5.0\t{offset - 3}"


@pytest.mark.parametrize("name", ["conservative.idr.narrowPeak.gz", "idrValues.txt"])
def test_raw_idr_output_is_narrowpeak_by_its_content_whatever_its_name(tmp_path, name):
    path = tmp_path / name
    text = "\n".join([idr_line("chr1", 100, 300, 37), idr_line("chr2", 1000, 1101, -1)]) + "\n"
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    assert len(idr_line("chr1", 100, 300, 37).split("\t")) == 20
    df = read_peaks(path)
    assert df["summit"].tolist() == [137, 1050]  # column 10, not the midpoint
    assert df.attrs["format"] == "narrowPeak, 10+ more columns ignored (IDR output)"


def test_bed_formats_take_the_midpoint(tmp_path):
    bed12 = tmp_path / "peaks.bed"  # 12 columns, but blockSizes/blockStarts: not narrowPeak
    bed12.write_text("chr1\t100\t300\tp\t0\t+\t100\t300\t0\t2\t50,50,\t0,150,\n")
    assert read_peaks(bed12)["summit"].tolist() == [200]
    summits = tmp_path / "NAME_summits.bed"  # MACS2: the summit as a 1 bp interval
    summits.write_text("chr1\t4567\t4568\tpeak_1\t12.3\n")
    df = read_peaks(summits)
    assert df["summit"].tolist() == [4567] and df.attrs["format"] == "BED, summit = midpoint"


def test_a_bed_named_narrowpeak_is_an_error_not_midpoints(tmp_path):
    path = tmp_path / "peaks.narrowPeak"
    path.write_text("# from a BED\nchr1\t100\t300\tpeak\t0\t+\n")
    with pytest.raises(BPNetInputError) as err:
        read_peaks(path)
    msg = str(err.value)
    assert str(path) in msg and "line 2" in msg and "6 column(s) are not narrowPeak's" in msg
    assert "should not be named .narrowPeak" in msg


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        ("chr1\t100\t300\tpeak", "10 tab-separated narrowPeak columns"),
        (narrowpeak_line("chr1", "1e2", 300, 5), "integer start"),
        (narrowpeak_line("chr1", 100, 300, 200), "summit offset (column 10)"),
        (narrowpeak_line("chr1", 300, 100, 5), "0 <= start <= end"),
        (narrowpeak_line("chr1", 100, 300, "abc"), "integer summit offset"),
    ],
)
def test_malformed_narrowpeak_line_names_file_and_line(tmp_path, bad_line, expected):
    path = tmp_path / "bad.narrowPeak"
    path.write_text("\n".join([narrowpeak_line("chr1", 0, 50, 1), "# comment", bad_line]) + "\n")
    with pytest.raises(BPNetInputError) as err:
        read_peaks(path)
    assert str(path) in str(err.value)
    assert "line 3" in str(err.value)
    assert expected in str(err.value)


def test_bed_with_too_few_columns_is_an_error(tmp_path):
    path = tmp_path / "bad.bed"
    path.write_text("chr1\t1\t5\nchr1\t7\n")
    with pytest.raises(BPNetInputError, match=r"bad.bed, line 2: expected at least 3"):
        read_peaks(path)


def test_missing_and_empty_peak_files_are_errors(tmp_path):
    with pytest.raises(BPNetInputError, match="does not exist"):
        read_peaks(tmp_path / "nope.bed")
    empty = tmp_path / "empty.bed"
    empty.write_text("track name=x\n# nothing\n")
    with pytest.raises(BPNetInputError, match="has no peaks"):
        read_peaks(empty)


# ------------------------------------------------------------------------------- make_windows


@pytest.mark.parametrize("width", [100, 101])
def test_windows_are_centred_on_the_summit(width):
    w, _ = windows_of({"A": peaks_df(["chr1", "chr1"], [500, 2000])}, width=width)
    assert (w["end"] - w["start"] == width).all()
    assert (w["summit"] - w["start"] == width // 2).all()
    assert w["summit"].tolist() == [500, 2000]
    assert w["name"].tolist() == [f"chr1:{s - width // 2}-{s - width // 2 + width}" for s in (500, 2000)]
    assert list(w.columns) == WINDOW_COLUMNS


def test_windows_leaving_the_chromosome_are_dropped_but_exact_fits_kept():
    # width 100: summit 49 -> start -1 (off); 50 -> start 0 (fits); 9950 -> end 10000 (fits);
    # 9951 -> end 10001 (off).
    w, s = windows_of({"A": peaks_df(["chr1"] * 4, [49, 50, 9950, 9951])})
    assert w["start"].tolist() == [0, 9900]
    assert w["end"].tolist() == [100, 10000]
    assert reasons(s, "A")["off_chromosome_end"] == 2
    assert reasons(s, "A")["kept"] == 2


def test_excluded_and_unknown_chromosomes_are_dropped_and_counted():
    w, s = windows_of({"A": peaks_df(["chr1", "chrX", "chrUn", "chrUn"], [500, 500, 500, 600])})
    assert w["chrom"].tolist() == ["chr1"]
    r = reasons(s, "A")
    assert (r["excluded_chrom"], r["unknown_chrom"], r["kept"]) == (1, 2, 1)


def test_peak_file_sharing_no_chromosome_with_the_genome_is_an_error():
    with pytest.raises(BPNetInputError, match=r"shares no chromosome.*'1' vs 'chr1'") as err:
        windows_of({"A": peaks_df(["1", "2"], [500, 500])}, sources={"A": "a.narrowPeak"})
    assert "a.narrowPeak" in str(err.value)


def test_identical_summits_of_different_tasks_pool_and_same_task_duplicates_collapse():
    peaks = {
        "A": peaks_df(["chr1", "chr1", "chr1"], [500, 500, 3000]),
        "B": peaks_df(["chr1", "chr1"], [500, 3001]),
        "C": peaks_df(["chr1"], [500]),
    }
    w, s = windows_of(peaks)
    assert w["summit"].tolist() == [500, 3000, 3001]
    assert w["tasks"].tolist() == ["A,B,C", "A", "B"]
    assert reasons(s, "A")["duplicate"] == 1
    assert reasons(s, "A")["kept"] == 2
    assert reasons(s, "B")["kept"] == 2 and reasons(s, "C")["kept"] == 1
    # Every peak has exactly one fate.
    for task, df in peaks.items():
        assert sum(reasons(s, task).values()) == len(df)
    assert set(reasons(s, "A")) == set(REASONS)


def test_task_order_in_tags_follows_the_task_order_not_the_file_order():
    peaks = {"Z": peaks_df(["chr1"], [500]), "A": peaks_df(["chr1"], [500])}
    w, _ = windows_of(peaks)
    assert w["tasks"].tolist() == ["Z,A"]


def test_merge_within_merges_close_summits_of_different_tasks_keeping_the_first():
    peaks = {
        "A": peaks_df(["chr1", "chr1", "chr1"], [1000, 1015, 5000]),
        "B": peaks_df(["chr1", "chr1"], [1010, 5021]),
        "C": peaks_df(["chr1"], [1018]),
    }
    w, s = windows_of(peaks, merge_within=20)
    # 1000(A) opens a window; 1010(B) joins; 1015(A) cannot join (A is in it) -> new window,
    # which 1018(C) joins; 5000(A) and 5021(B) are 21 bp apart -> separate windows.
    assert w["summit"].tolist() == [1000, 1015, 5000, 5021]
    assert w["tasks"].tolist() == ["A,B", "A,C", "A", "B"]
    assert reasons(s, "B")["merged"] == 1 and reasons(s, "B")["kept"] == 1
    assert reasons(s, "C")["merged"] == 1
    assert reasons(s, "A")["kept"] == 3 and reasons(s, "A")["merged"] == 0
    # kept + merged = windows tagged with the task
    for task in peaks:
        r = reasons(s, task)
        assert r["kept"] + r["merged"] == sum(splits(s, task).values())

    w0, _ = windows_of(peaks, merge_within=0)
    assert len(w0) == 6


def test_merge_is_anchored_at_the_first_summit_not_chained():
    peaks = {"A": peaks_df(["chr1"], [1000]), "B": peaks_df(["chr1"], [1010]),
             "C": peaks_df(["chr1"], [1025])}
    w, _ = windows_of(peaks, merge_within=20)
    assert w["summit"].tolist() == [1000, 1025]
    assert w["tasks"].tolist() == ["A,B", "C"]


def test_merge_does_not_cross_chromosomes():
    peaks = {"A": peaks_df(["chr1"], [9940]), "B": peaks_df(["chr2"], [60])}
    w, _ = windows_of(peaks, merge_within=10_000)
    assert w["tasks"].tolist() == ["A", "B"]


def test_blacklist_drops_any_overlap_but_not_adjacent_windows(tmp_path):
    blacklist = tmp_path / "blacklist.bed"
    # Window of summit 1000 (width 100) is [950, 1050): [1049, 1060) overlaps by 1 bp.
    # Window of summit 3000 is [2950, 3050): [3050, 3100) only touches it (half-open).
    blacklist.write_text("chr1\t1049\t1060\nchr1\t3050\t3100\nchr9\t0\t10\n")
    peaks = {"A": peaks_df(["chr1", "chr1", "chr2"], [1000, 3000, 1000])}
    w, s = windows_of(peaks, blacklist=blacklist)
    assert w["name"].tolist() == ["chr1:2950-3050", "chr2:950-1050"]
    assert reasons(s, "A")["blacklist"] == 1


def test_blacklist_errors(tmp_path):
    peaks = {"A": peaks_df(["chr1"], [1000])}
    with pytest.raises(BPNetInputError, match="windows.blacklist.*does not exist|does not exist.*windows.blacklist"):
        windows_of(peaks, blacklist=tmp_path / "missing.bed")
    bad = tmp_path / "bad.bed"
    bad.write_text("chr1\tnot\tanumber\n")
    with pytest.raises(BPNetInputError, match="bad.bed"):
        windows_of(peaks, blacklist=bad)
    other_naming = tmp_path / "ensembl.bed"
    other_naming.write_text("1\t900\t1100\n")
    with pytest.raises(BPNetInputError, match=r"ensembl.bed \(windows.blacklist\) shares no chromosome"):
        windows_of(peaks, blacklist=other_naming)


def test_split_by_chromosome_and_sort_in_chrom_sizes_order():
    sizes = {"chr10": 5000, "chr2": 5000, "chr1": 5000}
    peaks = {"A": peaks_df(["chr1", "chr2", "chr10", "chr1", "chr10"], [3000, 500, 700, 600, 200])}
    w, s = make_windows(peaks, sizes, width=100, valid_chroms=["chr2"], test_chroms=["chr1"],
                        exclude_chroms=[])
    assert list(zip(w["chrom"], w["summit"])) == [
        ("chr10", 200), ("chr10", 700), ("chr2", 500), ("chr1", 600), ("chr1", 3000)]
    assert w["split"].tolist() == ["train", "train", "valid", "test", "test"]
    assert splits(s) == {"train": 2, "valid": 1, "test": 2}
    # Deterministic, whatever the input order.
    w2, _ = make_windows({"A": peaks["A"].iloc[::-1]}, sizes, width=100, valid_chroms=["chr2"],
                         test_chroms=["chr1"], exclude_chroms=[])
    pd.testing.assert_frame_equal(w, w2)


def test_chromosome_in_two_split_lists_is_a_config_error():
    peaks = {"A": peaks_df(["chr1"], [1000])}
    with pytest.raises(BPNetInputError, match="windows.valid_chroms and windows.test_chroms"):
        windows_of(peaks, valid_chroms=["chr2", "chr3"], test_chroms=["chr3"])
    with pytest.raises(BPNetInputError, match="windows.valid_chroms and windows.exclude_chroms"):
        windows_of(peaks, valid_chroms=["chrX"])


@pytest.mark.parametrize("key", ["valid_chroms", "test_chroms"])
def test_unknown_valid_or_test_chromosome_is_a_config_error_naming_the_key(key):
    peaks = {"A": peaks_df(["chr1"], [1000])}
    with pytest.raises(BPNetInputError, match=rf"windows\.{key} names chromosome\(s\) chr22\b") as err:
        windows_of(peaks, **{key: ["chr22"]})
    assert "data.chrom_sizes" in str(err.value) and "chr1, chr2, chr3, chrX" in str(err.value)


def test_exclude_chromosome_missing_from_the_genome_is_fine_and_logged(caplog):
    peaks = {"A": peaks_df(["chr1", "chr2"], [1000, 1000])}
    with caplog.at_level("INFO", logger="bpnet"):
        w, _ = windows_of(peaks, exclude_chroms=["chrX", "chrY", "chrM"])
    assert len(w) == 2
    assert any(r.levelname == "INFO" and "chrY, chrM" in r.getMessage() for r in caplog.records)


def test_a_few_peaks_on_unknown_contigs_warn_with_the_count_and_the_rest_are_windowed(caplog):
    peaks = {"A": peaks_df(["chr1", "chr1", "chr2", "chrUn_1", "chr3"], [500, 900, 500, 500, 500])}
    with caplog.at_level("WARNING", logger="bpnet"):
        w, s = windows_of(peaks, sources={"A": "a.narrowPeak"})
    assert len(w) == 4
    assert reasons(s, "A")["unknown_chrom"] == 1
    msgs = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("a.narrowPeak" in m and "dropped 1 of 5 peaks" in m and "chrUn_1" in m for m in msgs), msgs


def test_most_peaks_on_unknown_contigs_is_an_error_naming_the_file():
    peaks = {"A": peaks_df(["1", "2", "3", "chr1"], [500, 500, 500, 500])}
    with pytest.raises(BPNetInputError, match=r"3 of 4 peaks on contigs not in the chrom sizes.*'1' vs 'chr1'") as err:
        windows_of(peaks, sources={"A": "a.narrowPeak"})
    assert "a.narrowPeak" in str(err.value) and "1, 2, 3" in str(err.value)


def test_no_window_kept_is_an_error_that_says_why():
    peaks = {"A": peaks_df(["chrX", "chr1"], [500, 10])}
    with pytest.raises(BPNetInputError, match=r"no windows kept.*1 excluded_chrom, 1 off_chromosome_end"):
        windows_of(peaks)


# ------------------------------------------------------------------- rule peak_windows


def test_write_peak_windows_writes_windows_and_summary(tmp_path):
    sizes = tmp_path / "genome.chrom.sizes"
    sizes.write_text("".join(f"{c}\t{n}\n" for c, n in SIZES.items()))
    pa = tmp_path / "A.narrowPeak"
    pa.write_text("\n".join(narrowpeak_line("chr1", s - 10, s + 10, 10) for s in (500, 4000)) + "\n")
    pb = tmp_path / "B.bed"
    pb.write_text("chr1\t499\t502\nchr2\t1000\t1002\nchrX\t100\t300\n")
    out_w, out_s = tmp_path / "windows.tsv", tmp_path / "windows_summary.tsv"

    write_peak_windows(
        {"A": str(pa), "B": str(pb)}, str(sizes), str(out_w), str(out_s),
        {"width": 200, "blacklist": None, "exclude_chroms": ["chrX"],
         "valid_chroms": ["chr2"], "test_chroms": ["chr3"], "merge_within": 0},
    )
    w = load_windows(out_w)
    assert w["name"].tolist() == ["chr1:400-600", "chr1:3900-4100", "chr2:901-1101"]
    assert w["tasks"].tolist() == ["A,B", "A", "B"]
    assert w["split"].tolist() == ["train", "train", "valid"]
    summary = pd.read_csv(out_s, sep="\t")
    assert reasons(summary, "B")["excluded_chrom"] == 1
    assert splits(summary) == {"train": 2, "valid": 1, "test": 0}


def test_load_windows_rejects_mixed_widths(tmp_path):
    path = tmp_path / "windows.tsv"
    pd.DataFrame({"chrom": ["chr1", "chr1"], "start": [0, 100], "end": [100, 250], "summit": [50, 175],
                  "tasks": ["A", "A"], "split": ["train", "train"], "name": ["a", "b"]}).to_csv(
        path, sep="\t", index=False)
    with pytest.raises(BPNetInputError, match="same positive width"):
        load_windows(path)


# -------------------------------------------------------------------- contigs by pattern (#19)

CONTIG_SIZES = {"chr1": 10_000, "chr2": 8_000, "chr3": 6_000, "chr1_KI270706v1_random": 5_000,
                "chrUn_GL000195v1": 5_000, "chr7_KI270803v1_alt": 5_000, "chrM": 5_000, "chrEBV": 5_000}


def _contig_peaks_file(tmp_path):
    path = tmp_path / "A.bed"
    path.write_text("".join(f"{c}\t1000\t1200\n" for c in CONTIG_SIZES))
    sizes = tmp_path / "genome.chrom.sizes"
    sizes.write_text("".join(f"{c}\t{n}\n" for c, n in CONTIG_SIZES.items()))
    return path, sizes


def test_non_canonical_contigs_are_dropped_by_the_default_patterns_and_counted(tmp_path):
    peaks, sizes = _contig_peaks_file(tmp_path)
    out_w, out_s = tmp_path / "windows.tsv", tmp_path / "windows_summary.tsv"
    # the schema's default patterns apply when the key is absent (results made before it existed)
    write_peak_windows({"A": str(peaks)}, str(sizes), str(out_w), str(out_s),
                       {"width": 200, "exclude_chroms": [], "valid_chroms": ["chr2"], "test_chroms": ["chr3"]})
    assert load_windows(out_w)["chrom"].tolist() == ["chr1", "chr2", "chr3"]
    assert reasons(pd.read_csv(out_s, sep="\t"), "A")["excluded_contig"] == 5
    # [] keeps every contig
    write_peak_windows({"A": str(peaks)}, str(sizes), str(out_w), str(out_s),
                       {"width": 200, "exclude_chroms": [], "exclude_patterns": [], "valid_chroms": ["chr2"],
                        "test_chroms": ["chr3"]})
    assert len(load_windows(out_w)) == len(CONTIG_SIZES)


def test_exclude_patterns_errors_name_the_key():
    peaks = {"A": peaks_df(["chr1", "chr2"], [500, 500])}
    with pytest.raises(BPNetInputError, match=r"windows.exclude_patterns: '\(chr' is not a regular expression"):
        windows_of(peaks, exclude_patterns=["(chr"])
    with pytest.raises(BPNetInputError, match="windows.valid_chroms names chr2, which windows.exclude_patterns"):
        windows_of(peaks, exclude_patterns=["^chr2$"])
