"""GC-matched background windows (windows.background): GC match, exclusions, split, determinism,
off by default, errors, and rule peak_windows -> build_dataset through Snakemake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyfaidx
import pytest
from scipy.stats import ks_2samp

from bpnet.data import background as bgmod
from bpnet.data.background import (
    background_settings,
    gc_bin,
    ks_statistic,
    overlaps_any,
    prefix_counts,
)
from bpnet.data.dataset import load_dataset
from bpnet.data.windows import (
    WINDOW_COLUMNS,
    assign_split,
    load_windows,
    make_windows,
    read_peaks,
    write_peak_windows,
    write_windows,
)
from bpnet.errors import BPNetInputError
from bpnet.io.sequence import N_CODE, encode, open_fasta, read_fasta_windows
from bpnet.io.tracks import write_bigwig

REPO = Path(__file__).resolve().parents[1]
WIDTH = 200
SIZES = {"chr1": 300_000, "chr2": 250_000, "chr3": 250_000, "chr4": 200_000, "chr5": 60_000}
SPLIT = {"valid_chroms": ["chr2"], "test_chroms": ["chr3"], "exclude_chroms": ["chr5"]}
N_RUN = ("chr2", 50_000, 53_000)  # a run of N
BLACKLIST = [("chr4", 0, 100_000), ("chr1", 200_000, 200_500)]


def write_fasta(path: Path, seqs: dict[str, str]) -> Path:
    with open(path, "w") as fh:
        for chrom, seq in seqs.items():
            fh.write(f">{chrom}\n")
            fh.writelines(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60))
    pyfaidx.Faidx(str(path))
    return path


def gc_gradient(rng, n: int) -> str:
    """A sequence whose GC probability rises linearly from 0.2 to 0.8 along it."""
    p_gc = np.linspace(0.2, 0.8, n)
    is_gc = rng.random(n) < p_gc
    pick = rng.random(n) < 0.5
    letters = np.where(is_gc, np.where(pick, "G", "C"), np.where(pick, "A", "T"))
    return "".join(letters)


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """5 chromosomes with GC rising along each, an N run, scattered N; 2 tasks of peaks favouring
    high GC (so peaks and genome differ in GC); a blacklist."""
    d = tmp_path_factory.mktemp("bg")
    rng = np.random.default_rng(7)
    seqs = {c: list(gc_gradient(rng, n)) for c, n in SIZES.items()}
    c, a, b = N_RUN
    seqs[c][a:b] = ["N"] * (b - a)
    for i in rng.integers(0, SIZES["chr3"], 30):
        seqs["chr3"][i] = "N"
    seqs = {c: "".join(s) for c, s in seqs.items()}
    fasta = write_fasta(d / "genome.fa", seqs)
    (d / "genome.chrom.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in SIZES.items()))
    peak_files = {}
    for t, task in enumerate(("A", "B")):
        lines = []
        for chrom, n in SIZES.items():
            # Summits drawn with density rising linearly along the chromosome, with its GC.
            summits = np.sort((rng.random(n // 8000 + 10 * t) ** (1 / 2) * (n - 2 * WIDTH) + WIDTH).astype(int))
            lines += [f"{chrom}\t{s}\t{s + 1}\n" for s in summits]
        path = d / f"{task}.bed"
        path.write_text("".join(lines))
        peak_files[task] = str(path)
    blacklist = d / "blacklist.bed"
    blacklist.write_text("".join(f"{c}\t{a}\t{b}\n" for c, a, b in BLACKLIST))
    return SimpleNamespace(dir=d, fasta=str(fasta), seqs=seqs, sizes=str(d / "genome.chrom.sizes"),
                           peaks=peak_files, blacklist=str(blacklist))


def config(**background) -> dict:
    bg = {"enabled": True, "ratio": 1.0, "exclusion_margin": 500, "gc_bins": 20, "stride": None}
    return {"width": WIDTH, "blacklist": None, "merge_within": 0, **SPLIT, "background": {**bg, **background}}


def run(genome, tmp_path, cfg, name="w", blacklist=None, seed=1, fasta=True):
    out = tmp_path / f"{name}.tsv"
    write_peak_windows(genome.peaks, genome.sizes, str(out), str(tmp_path / f"{name}_summary.tsv"), cfg,
                       blacklist=blacklist, fasta=genome.fasta if fasta else None, seed=seed)
    return out


def background_of(path) -> pd.DataFrame:
    w = load_windows(path)
    return w[w["kind"] == "background"].reset_index(drop=True)


def gc_of(genome, windows: pd.DataFrame) -> np.ndarray:
    codes = read_fasta_windows(genome.fasta, windows["chrom"], windows["start"], WIDTH)
    valid = (codes != N_CODE).sum(1)
    return ((codes == 1) | (codes == 2)).sum(1) / valid


# ------------------------------------------------------------------------------ GC match


def test_background_gc_matches_the_peaks_not_the_genome(genome, tmp_path):
    w = load_windows(run(genome, tmp_path, config(ratio=1.0)))
    peaks, bg = w[w["kind"] == "peak"], w[w["kind"] == "background"]
    assert len(bg) == pytest.approx(len(peaks), abs=10)  # ratio 1, rounded per bin
    peak_gc, bg_gc = gc_of(genome, peaks), gc_of(genome, bg)
    # Windows drawn uniformly from the same genome have another GC distribution...
    rng = np.random.default_rng(0)
    chroms = rng.choice(["chr1", "chr4"], 400)
    uniform = pd.DataFrame({"chrom": chroms, "start": rng.integers(0, 199_000, 400)})
    assert ks_statistic(peak_gc, gc_of(genome, uniform)) > 0.2
    # ... the background has the peaks' (measured 0.02-0.04 over seeds; random pairs of ~290
    # draws of one distribution: 0.11 at the 5% level, stratified draws do better).
    assert ks_statistic(peak_gc, bg_gc) < 0.08
    assert np.median(bg_gc) == pytest.approx(np.median(peak_gc), abs=0.02)


def test_summary_and_log_report_background_per_split_and_the_gc_match(genome, tmp_path, caplog):
    caplog.set_level("INFO")
    out = run(genome, tmp_path, config(ratio=0.5))
    bg = background_of(out)
    summary = pd.read_csv(tmp_path / "w_summary.tsv", sep="\t")
    rows = summary[(summary["section"] == "split") & (summary["task"] == "background")]
    assert dict(zip(rows["item"], rows["count"])) == {s: int((bg["split"] == s).sum())
                                                      for s in ("train", "valid", "test")}
    sampled = summary.query("section == 'background' and item == 'sampled'")["count"].tolist()
    assert sampled == [len(bg)]
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("background:"))
    assert f"{len(bg)} GC-matched windows" in line and "KS statistic" in line and " s; GC quantiles" in line


# ------------------------------------------------------------------------------ exclusions


def test_no_background_window_near_a_peak_or_on_the_blacklist_or_with_n(genome, tmp_path):
    margin = 700
    bg = background_of(run(genome, tmp_path, config(exclusion_margin=margin, ratio=1.0),
                           blacklist=genome.blacklist))
    assert len(bg) > 100
    # Every peak of every task, including those windowing dropped for the blacklist.
    for path in genome.peaks.values():
        peaks = read_peaks(path)
        for chrom, g in bg.groupby("chrom"):
            p_start = peaks.loc[peaks["chrom"] == chrom, "summit"].to_numpy() - WIDTH // 2
            gap = np.maximum(p_start[None, :] - (g["end"].to_numpy()[:, None]),
                             g["start"].to_numpy()[:, None] - (p_start[None, :] + WIDTH))
            assert gap.min() >= margin
    for chrom, a, b in BLACKLIST:
        on = bg[bg["chrom"] == chrom]
        assert not ((on["start"] < b) & (on["end"] > a)).any()
    codes = read_fasta_windows(genome.fasta, bg["chrom"], bg["start"], WIDTH)
    assert not (codes == N_CODE).any()


def test_exclusion_margin_zero_still_never_overlaps_a_peak_window(genome, tmp_path):
    w = load_windows(run(genome, tmp_path, config(exclusion_margin=0, ratio=1.0)))
    bg, peaks = w[w["kind"] == "background"], w[w["kind"] == "peak"]
    for chrom, g in bg.groupby("chrom"):
        p = peaks[peaks["chrom"] == chrom]["start"].to_numpy()
        s = g["start"].to_numpy()[:, None]
        assert not ((s < p[None, :] + WIDTH) & (s + WIDTH > p[None, :])).any()


def test_split_follows_the_chromosome_rule_and_excluded_chromosomes_get_none(genome, tmp_path):
    w = load_windows(run(genome, tmp_path, config(ratio=1.0)))
    bg = w[w["kind"] == "background"]
    assert set(bg["chrom"]) == {"chr1", "chr2", "chr3", "chr4"}  # not chr5 (excluded)
    np.testing.assert_array_equal(bg["split"], assign_split(bg["chrom"], ["chr2"], ["chr3"]))
    assert set(bg["split"]) == {"train", "valid", "test"}
    # Format: tasks empty, summit at width // 2, name chrom:start-end, on the stride grid, sorted.
    assert (bg["tasks"] == "").all() and (bg["end"] - bg["start"] == WIDTH).all()
    assert (bg["summit"] == bg["start"] + WIDTH // 2).all() and (bg["start"] % (WIDTH // 2) == 0).all()
    assert (bg["name"] == bg["chrom"] + ":" + bg["start"].astype(str) + "-" + bg["end"].astype(str)).all()
    order = bg["chrom"].map({c: i for i, c in enumerate(SIZES)}) * 10**9 + bg["start"]
    assert order.is_monotonic_increasing
    assert (w["kind"].iloc[:int((w["kind"] == "peak").sum())] == "peak").all()  # peaks first


def test_custom_stride_puts_candidates_on_its_grid(genome, tmp_path):
    bg = background_of(run(genome, tmp_path, config(stride=37, ratio=0.3)))
    assert len(bg) and (bg["start"] % 37 == 0).all()


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_windows_other_seed_other_windows(genome, tmp_path):
    a = run(genome, tmp_path, config(), "a", seed=5).read_bytes()
    b = run(genome, tmp_path, config(), "b", seed=5).read_bytes()
    c = run(genome, tmp_path, config(), "c", seed=6).read_bytes()
    assert a == b
    assert a != c
    wa, wc = background_of(tmp_path / "a.tsv"), background_of(tmp_path / "c.tsv")
    assert len(wa) == len(wc) and set(wa["name"]) != set(wc["name"])


def test_off_by_default_writes_exactly_the_old_windows_tsv(genome, tmp_path):
    cfg = config()
    plain = {k: v for k, v in cfg.items() if k != "background"}
    old = run(genome, tmp_path, plain, "plain", fasta=False)
    off = run(genome, tmp_path, {**cfg, "background": {**cfg["background"], "enabled": False}}, "off")
    assert old.read_bytes() == off.read_bytes()
    assert (tmp_path / "plain_summary.tsv").read_bytes() == (tmp_path / "off_summary.tsv").read_bytes()
    # ... which is make_windows' table as write_windows writes it, without a kind column.
    peaks = {t: read_peaks(p) for t, p in genome.peaks.items()}
    sizes = dict(line.split("\t") for line in Path(genome.sizes).read_text().splitlines())
    windows, _ = make_windows(peaks, {c: int(n) for c, n in sizes.items()}, width=WIDTH, **SPLIT)
    write_windows(tmp_path / "direct.tsv", windows)
    assert old.read_bytes() == (tmp_path / "direct.tsv").read_bytes()
    assert old.read_text().splitlines()[0].split("\t") == WINDOW_COLUMNS
    assert background_settings(None, 1000)["enabled"] is False


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("cfg, fasta, match", [
    (config(ratio=50.0), True, r"windows.background: GC bin 0\.\d\d-0\.\d\d needs \d+ background windows "
                               r"\(windows.background.ratio 50 x \d+ peak windows\) but the genome has \d+ "
                               r"candidates away from peaks.*lower windows.background.ratio"),
    (config(exclusion_margin=10**6), True, r"no candidate background window.*windows.background.exclusion_margin"),
    (config(), False, r"windows.background.enabled needs the genome FASTA \(data.genome_fasta\)"),
    (config(ratio=0), True, r"config key windows.background.ratio: 0 is less than or equal to the minimum of 0"),
    (config(stride=0), True, r"config key windows.background.stride: 0 is less than the minimum of 1"),
    (config(gc_bins=0), True, r"config key windows.background.gc_bins: 0 is less than the minimum of 1"),
    (config(exclusion_margin=-1), True, r"config key windows.background.exclusion_margin: -1 is less than the minimum of 0"),
    (config(typo=1), True, r"config key windows.background: Additional properties are not allowed \('typo' was unexpected\)"),
])
def test_impossible_requests_are_one_line_errors_naming_the_key(genome, tmp_path, cfg, fasta, match):
    with pytest.raises(BPNetInputError, match=match) as err:
        run(genome, tmp_path, cfg, fasta=fasta)
    assert "\n" not in str(err.value)


def test_fasta_disagreeing_with_the_chrom_sizes_is_an_error(genome, tmp_path):
    sizes = tmp_path / "other.sizes"
    sizes.write_text(Path(genome.sizes).read_text().replace("chr4\t200000", "chr4\t199000"))
    with pytest.raises(BPNetInputError, match=r"chr4 has 200000 bp in the FASTA .* but 199000 bp in the chrom sizes"):
        write_peak_windows(genome.peaks, str(sizes), str(tmp_path / "w.tsv"), str(tmp_path / "s.tsv"),
                           config(), fasta=genome.fasta)


def test_load_windows_checks_the_kind_column(genome, tmp_path):
    path = run(genome, tmp_path, config(ratio=0.2))
    w = load_windows(path)
    assert list(w.columns) == WINDOW_COLUMNS + ["kind"]
    bad = pd.read_csv(path, sep="\t", keep_default_na=False)
    bad.loc[0, "kind"] = "background"  # a peak window with tasks labelled background
    bad.to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    with pytest.raises(BPNetInputError, match=r"row 2: kind must be peak \(with tasks\) or background"):
        load_windows(tmp_path / "bad.tsv")


# ------------------------------------------------------------------------------ pieces


def test_prefix_counts_across_blocks_equal_direct_counts(genome, monkeypatch):
    monkeypatch.setattr(bgmod, "_BLOCK_BP", 1000)
    codes = encode(genome.seqs["chr3"])
    positions = np.unique(np.r_[0, 1, 999, 1000, 1001, 2500, np.random.default_rng(1).integers(0, 250_000, 50),
                                250_000])
    fa = open_fasta(genome.fasta)
    gc, nn = prefix_counts(fa, "chr3", SIZES["chr3"], positions)
    fa.close()
    expect_gc = np.r_[0, np.cumsum((codes == 1) | (codes == 2))][positions]
    expect_n = np.r_[0, np.cumsum(codes == N_CODE)][positions]
    np.testing.assert_array_equal(gc, expect_gc)
    np.testing.assert_array_equal(nn, expect_n)


def test_overlaps_any_matches_brute_force():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 10_000, 40)
    b = a + rng.integers(0, 300, 40)  # some empty intervals
    starts = rng.integers(0, 10_000, 2000)
    got = overlaps_any(starts, 50, a, b)
    bb = np.maximum(b, a + 1)
    brute = ((starts[:, None] < bb[None, :]) & (starts[:, None] + 50 > a[None, :])).any(1)
    np.testing.assert_array_equal(got, brute)
    assert not overlaps_any(starts, 50, np.zeros(0), np.zeros(0)).any()


def test_gc_bins_are_exact_at_the_edges():
    # 70/200 = 0.35 is the first value of bin 7 of 20; 1.0 falls in the last bin; all N: -1.
    np.testing.assert_array_equal(gc_bin([69, 70, 200, 0, 5], [200, 200, 200, 200, 0], 20), [6, 7, 19, 0, -1])


# ------------------------------------------------------------------------------ Snakemake


def test_rule_peak_windows_with_background_runs_in_snakemake_and_builds_a_dataset(genome, tmp_path):
    """peak_windows (background on) -> build_dataset through Snakemake with the project's rules."""
    counts = []
    rng = np.random.default_rng(0)
    for task in ("A", "B"):
        for strand in ("pos", "neg"):
            path = tmp_path / f"{task}.{strand}.bw"
            write_bigwig(path, SIZES, {c: rng.poisson(0.05, size=n).astype(float) for c, n in SIZES.items()})
            counts.append(str(path))
    config_path = tmp_path / "config.yaml"
    tasks = "".join(f"    {t}: {{pos: {counts[2 * i]}, neg: {counts[2 * i + 1]}, peaks: {genome.peaks[t]}}}\n"
                    for i, t in enumerate(("A", "B")))
    config_path.write_text(
        "experiment: e\nseed: 4\n"
        f"data:\n  genome_fasta: {genome.fasta}\n  chrom_sizes: {genome.sizes}\n  tasks:\n{tasks}"
        f"windows: {{width: {WIDTH}, valid_chroms: [chr2], test_chroms: [chr3], exclude_chroms: [chr5], "
        f"blacklist: {genome.blacklist}, background: {{enabled: true, ratio: 0.5}}}}\n"
    )
    rules = REPO / "workflow" / "rules"
    (tmp_path / "Snakefile").write_text(
        f'configfile: "{config_path}"\n'
        + "".join(f'include: "{rules / name}"\n' for name in ("common.smk", "windows.smk", "dataset.smk"))
    )
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "results/e/dataset.npz"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w = load_windows(tmp_path / "results/e/windows.tsv")
    n_bg = int((w["kind"] == "background").sum())
    assert n_bg > 0 and (w.loc[w["kind"] == "background", "tasks"] == "").all()
    ds = load_dataset(tmp_path / "results/e/dataset.npz")
    assert len(ds.start) == len(w) and int((ds.window_tasks == "").sum()) == n_bg
    np.testing.assert_array_equal(ds.split, w["split"].to_numpy())
    log = (tmp_path / "logs/e/peak_windows.log").read_text()
    assert f"background: {n_bg} GC-matched windows" in log
    # Same config, the run's seed: the library gives the same file.
    again = tmp_path / "again.tsv"
    write_peak_windows(genome.peaks, genome.sizes, str(again), str(tmp_path / "again_summary.tsv"),
                       {**config(ratio=0.5, exclusion_margin=1000), "exclude_chroms": ["chr5"]},
                       blacklist=genome.blacklist, fasta=genome.fasta, seed=4)
    assert again.read_bytes() == (tmp_path / "results/e/windows.tsv").read_bytes()


def test_ks_statistic_equals_scipys():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300).round(1), rng.normal(0.2, size=170).round(1)  # with ties
    assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    assert np.isnan(ks_statistic(a, []))
