"""The simulated OSKN ChIP-nexus dataset: files, truth, ChIP-nexus shape, peaks, syntax, seeds."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pyfaidx
import pytest
import yaml
from scipy.stats import poisson

import bpnet.simulate.genome as genome_module
from bpnet.data.windows import read_peaks
from bpnet.errors import BPNetInputError
from bpnet.interpret.syntax import periodicity
from bpnet.io.sequence import encode, reverse_complement_codes
from bpnet.io.tracks import read_chrom_sizes, read_windows
from bpnet.simulate.binding import T_KLF4, T_NANOG, T_OCT4, T_SOX2, TFS, occupancy
from bpnet.simulate.config import resolve_config
from bpnet.simulate.files import output_paths, sparse_runs, write_dataset
from bpnet.simulate.generate import simulate_dataset
from bpnet.simulate.genome import (
    MM10_AUTOSOMES,
    background_sequence,
    chrom_sizes_for,
    chromosome_sequences,
    make_genome,
)
from bpnet.simulate.loci import MAX_DECOYS, MAX_STRONG, plant_loci
from bpnet.simulate.motifs import KLF4, MOTIFS, NANOG, OS, affinity, background_probs, load_motifs
from bpnet.simulate.peaks import (
    LOCAL_LAMBDA_BP,
    SUMMIT_SMOOTH_BP,
    _box,
    call_all_peaks,
    call_peaks,
    call_peaks_sparse,
    poisson_logsf,
)
from bpnet.simulate.summary import NEAR_BP, oracle_check, sample_windows
from bpnet.simulate.tracks import (
    LocusSequence,
    _sample_counts,
    cut_bias_table,
    expected_track,
    signal_tracks,
    tf_tracks,
)
from bpnet.simulate.truth import SYNTAX_MAX_BP, planted_syntax, truth_table

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
SMALL = {"seed": 3, "scale": 0.1}  # 3 Mb genome, 150 enhancers: about 1 s of work
DEFAULTS = resolve_config({})  # the schema's defaults


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small simulated dataset and its summary."""
    out = tmp_path_factory.mktemp("sim")
    summary = simulate_dataset(out, SMALL)
    return out, summary


def _truth(out):
    return pd.read_csv(out / "truth" / "instances.tsv.gz", sep="\t")


def _bound_sites(truth, tf, min_occ, isolation=150):
    """Sites bound by ``tf`` with no other bound site of ``tf`` within ``isolation`` bp."""
    b = truth[truth[f"occupancy_{tf}"] >= min_occ].sort_values(["chrom", "center"])
    gap_prev = b.groupby("chrom")["center"].diff().fillna(np.inf)
    gap_next = -b.groupby("chrom")["center"].diff(-1).fillna(-np.inf)
    return b[(gap_prev > isolation) & (gap_next > isolation)]


# --------------------------------------------------------------------------------------------
# Files and formats
# --------------------------------------------------------------------------------------------


def test_writes_every_declared_file(small):
    out, _ = small
    for path in output_paths(out).values():
        assert path.exists() and path.stat().st_size > 0, path


def test_genome_chromosomes_and_sizes_agree_across_files(small):
    out, summary = small
    sizes = read_chrom_sizes(out / "genome.chrom.sizes")
    assert list(sizes) == [f"chr{i}" for i in range(1, 20)]  # chr1..chr19, the paper's split works
    assert sizes == chrom_sizes_for(summary["config"])
    assert sum(sizes.values()) == pytest.approx(0.1 * DEFAULTS["genome_length"], rel=1e-6)
    fa = pyfaidx.Fasta(str(out / "genome.fa"), rebuild=False)
    assert {k: len(v) for k, v in fa.items()} == sizes
    for path in output_paths(out).values():
        if path.suffix == ".bw":
            bw = pyBigWig.open(str(path))
            assert bw.isBigWig() and bw.chroms() == sizes, path
            bw.close()
    # mm10-like proportions: chr1 is the longest, chr19 the shortest
    assert max(sizes, key=sizes.get) == "chr1" and min(sizes, key=sizes.get) == "chr19"


def test_fasta_index_is_what_a_fresh_index_gives(small, tmp_path):
    out, _ = small
    copy_fa = tmp_path / "genome.fa"
    copy_fa.write_bytes((out / "genome.fa").read_bytes())
    pyfaidx.Faidx(str(copy_fa))  # builds genome.fa.fai from scratch
    assert (tmp_path / "genome.fa.fai").read_text() == (out / "genome.fa.fai").read_text()
    raw = "".join((out / "genome.fa").read_text().split(">chr2\n")[0].splitlines()[1:])
    fa = pyfaidx.Fasta(str(out / "genome.fa"), rebuild=False)
    assert str(fa["chr1"][1234:1300]) == raw[1234:1300]


def test_background_has_realistic_gc_and_cpg_depletion():
    seq = background_sequence(np.random.default_rng(0), 2_000_000, 0.42, 0.03, 0.8)
    gc = np.isin(seq, [1, 2]).mean()
    assert abs(gc - 0.42) < 0.01
    cpg = ((seq[:-1] == 1) & (seq[1:] == 2)).mean()
    observed_over_expected = cpg / ((seq == 1).mean() * (seq == 2).mean())
    assert 0.1 < observed_over_expected < 0.4  # mammalian CpG depletion (mouse ~0.2)


def test_counts_are_nonnegative_integers_and_expected_is_positive(small):
    out, _ = small
    paths = output_paths(out)
    for key, path in paths.items():
        if path.suffix != ".bw":
            continue
        bw = pyBigWig.open(str(path))
        vals = np.concatenate([np.array([v for _, _, v in bw.intervals(c) or []]) for c in bw.chroms()])
        bw.close()
        if ".counts." in key:
            assert vals.size and vals.min() >= 1 and np.all(vals == np.round(vals)), key  # zeros = no data
        else:
            # expected rate = constant background + site contributions, never zero
            assert vals.min() >= DEFAULTS["tfs"]["Oct4"]["background"] * 0.999, key


def test_narrowpeak_format(small):
    out, summary = small
    sizes = read_chrom_sizes(out / "genome.chrom.sizes")
    for tf in TFS:
        path = out / "chip-nexus" / tf / "idr-optimal-set.narrowPeak.gz"
        peaks = pd.read_csv(path, sep="\t", header=None)
        assert peaks.shape[1] == 10 and len(peaks) == summary["peaks"][tf] > 20
        chrom, start, end, summit_offset = peaks[0], peaks[1], peaks[2], peaks[9]
        assert chrom.isin(list(sizes)).all()
        assert ((start >= 0) & (end <= chrom.map(sizes)) & (start < end)).all()
        assert ((summit_offset >= 0) & (summit_offset < end - start)).all()
        assert (peaks[5] == ".").all() and (peaks[4].between(0, 1000)).all()
        assert (peaks[7] >= DEFAULTS["peaks"]["min_log10p"]).all()  # pValue = -log10 p
        assert (peaks[8] <= peaks[7]).all() and (peaks[6] > 1).all()  # q >= p; enriched
        # the pipeline's reader finds the same summits
        assert (read_peaks(path)["summit"].to_numpy() == (start + summit_offset).to_numpy()).all()


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------


def test_planted_motifs_are_where_the_truth_says(small):
    out, summary = small
    truth = _truth(out)
    assert set(truth["kind"]) == {"strong", "decoy", "pair", "isolated"}
    assert set(truth["motif"]) == set(MOTIFS)
    fa = pyfaidx.Fasta(str(out / "genome.fa"), rebuild=False)
    pfms = load_motifs()
    bg = background_probs(summary["config"]["gc_content"])
    for motif, rows in truth.groupby("motif"):
        codes = np.stack([encode(str(fa[c][s:e])) for c, s, e in zip(rows["chrom"], rows["start"], rows["end"])])
        minus = (rows["strand"] == "-").to_numpy()
        codes[minus] = reverse_complement_codes(codes[minus])
        aff = affinity(codes, pfms[motif], bg, summary["config"]["affinity_temperature"])
        np.testing.assert_allclose(aff, rows["affinity"], atol=1e-5)
        # strong instances match their PWM far better than decoys do
        kind = rows["kind"].to_numpy()
        assert np.median(aff[kind != "decoy"]) > 5 * np.median(aff[kind == "decoy"])


def test_truth_columns_are_consistent(small):
    out, summary = small
    truth = _truth(out)
    occ = truth[[f"occupancy_{tf}" for tf in TFS]].to_numpy()
    assert ((occ >= 0) & (occ < 1)).all()
    thr = summary["config"]["bound_threshold"]
    assert (truth["bound"] == (occ >= thr).any(axis=1)).all()
    # who binds what: only Oct4 and Sox2 at the composite, only Nanog at Nanog motifs, ...
    for motif, tfs in {"Oct4-Sox2": {"Oct4", "Sox2"}, "Oct4": {"Oct4"}, "Sox2": {"Sox2"},
                       "Nanog": {"Nanog"}, "Klf4": {"Klf4"}}.items():
        rows = truth[truth["motif"] == motif]
        for tf in TFS:
            assert (rows[f"occupancy_{tf}"] > 0).any() == (tf in tfs), (motif, tf)
    # isolated motifs lack partners: mostly closed and unbound
    iso = truth[truth["kind"] == "isolated"]
    enh = truth[truth["kind"] != "isolated"]
    assert iso["accessibility"].median() < 0.2 < enh["accessibility"].median()
    assert iso["bound"].mean() < enh["bound"].mean()


def test_expected_tracks_are_the_mean_of_the_counts(small):
    out, summary = small
    peaks = summary["peak_tables"]["Nanog"]
    chroms = peaks["chrom"].to_numpy()
    starts = (peaks["start"] + peaks["peak"] - 500).to_numpy()
    ok = starts >= 0
    tracks = [out / "chip-nexus" / "Nanog" / "counts.pos.bw", out / "chip-nexus" / "Nanog" / "counts.neg.bw",
              out / "truth" / "Nanog" / "expected.pos.bw", out / "truth" / "Nanog" / "expected.neg.bw"]
    w = read_windows(tracks, chroms[ok], starts[ok], 1000, dtype=np.float64)
    obs, exp = w[..., :2].sum(axis=(1, 2)), w[..., 2:].sum(axis=(1, 2))
    assert abs(obs.sum() / exp.sum() - 1) < 0.1
    assert np.corrcoef(np.log1p(obs), np.log1p(exp))[0, 1] > 0.8
    # overdispersed: per-window totals vary more than Poisson around the expectation
    assert np.mean((obs - exp) ** 2 / exp) > 2


# --------------------------------------------------------------------------------------------
# ChIP-nexus shape and peaks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("track", ["counts", "expected"])
def test_plus_strand_upstream_minus_strand_downstream(small, track):
    out, _ = small
    truth = _truth(out)
    for tf in TFS:
        sites = _bound_sites(truth, tf, min_occ=0.1)
        assert len(sites) >= 10, tf
        centre = np.floor(sites["center"].to_numpy()).astype(np.int64)
        folder = "chip-nexus" if track == "counts" else "truth"
        name = "counts" if track == "counts" else "expected"
        paths = [out / folder / tf / f"{name}.{s}.bw" for s in ("pos", "neg")]
        w = read_windows(paths, sites["chrom"].to_numpy(), centre - 60, 121, dtype=np.float64).sum(axis=0)
        up, down = slice(0, 60), slice(61, 121)
        assert w[up, 0].sum() > 2 * w[down, 0].sum(), tf  # + strand 5' ends upstream
        assert w[down, 1].sum() > 2 * w[up, 1].sum(), tf  # - strand 5' ends downstream
        # the modes (of the 5 bp smoothed profiles) sit about footprint / 2 from the centre
        footprint = DEFAULTS["tfs"][tf]["footprint"]
        smooth = np.stack([np.convolve(w[:, s], np.ones(5), mode="same") for s in (0, 1)], axis=1)
        assert abs((60 - np.argmax(smooth[:, 0])) - footprint / 2) <= 4, tf
        assert abs((np.argmax(smooth[:, 1]) - 60) - footprint / 2) <= 4, tf


def test_peak_summits_fall_near_bound_sites(small):
    out, summary = small
    truth = _truth(out)
    for tf in TFS:
        peaks = summary["peak_tables"][tf]
        bound = truth[truth[f"occupancy_{tf}"] >= summary["config"]["bound_threshold"]]
        summit = peaks["start"] + peaks["peak"]
        dist = np.array([
            np.abs(bound.loc[bound["chrom"] == c, "center"].to_numpy() - s).min(initial=np.inf)
            for c, s in zip(peaks["chrom"], summit)
        ])
        assert np.mean(dist <= 50) > 0.85, tf
        assert np.isclose(summary["false_peak_share"][tf], np.mean(dist > NEAR_BP))
        # strongly bound sites are (almost) never missed; some weak ones are
        assert 0 <= summary["missed_share"][tf] < 0.2


def test_patchcap_control_marks_open_chromatin(small):
    out, _ = small
    truth = _truth(out)
    loci = truth.groupby("locus").agg(chrom=("chrom", "first"), center=("center", "mean"),
                                      access=("accessibility", "first"))
    paths = [out / "chip-nexus" / "patchcap" / f"counts.{s}.bw" for s in ("pos", "neg")]
    reads = read_windows(paths, loci["chrom"].to_numpy(), loci["center"].astype(int).to_numpy() - 100,
                         200, dtype=np.float64).sum(axis=(1, 2))
    open_, closed = reads[loci["access"].to_numpy() > 0.5], reads[loci["access"].to_numpy() < 0.05]
    assert open_.mean() > 10 * closed.mean()


# --------------------------------------------------------------------------------------------
# Soft syntax
# --------------------------------------------------------------------------------------------


def _occ(centers, motifs, affs, **syntax):
    cfg = resolve_config({"syntax": syntax})
    locus = np.zeros(len(centers), dtype=np.int64)
    return occupancy(locus, np.asarray(centers, float), np.asarray(motifs), np.asarray(affs, float), cfg)


def test_nanog_pair_at_helical_spacing_binds_more():
    n = NANOG
    at = {d: _occ([0, d], [n, n], [0.5, 0.5])[0][0, T_NANOG] for d in (10, 11, 15, 16, 21)}
    assert at[10] > 1.3 * at[15] and at[11] > 1.3 * at[16] and at[21] > 1.3 * at[15]
    # without the syntax rule the spacing does not matter
    flat = {d: _occ([0, d], [n, n], [0.5, 0.5], nanog_nanog=0)[0][0, T_NANOG] for d in (10, 15)}
    assert flat[10] == pytest.approx(flat[15])


def test_oct4_sox2_raises_nearby_nanog_and_klf4():
    os_, k, n = OS, KLF4, NANOG
    # same motifs (same accessibility), composite near vs far from the Klf4 / Nanog motif
    near, _ = _occ([0, 30, 700], [k, os_, n], [0.5, 0.5, 0.5])
    far, _ = _occ([0, 700, 1400], [k, n, os_], [0.5, 0.5, 0.5])
    assert near[0, T_KLF4] > 1.2 * far[0, T_KLF4]
    near_n, _ = _occ([0, 30, 700], [n, os_, k], [0.5, 0.5, 0.5])
    assert near_n[0, T_NANOG] > 1.2 * far[1, T_NANOG]
    # the composite binds both Oct4 and Sox2
    occ, _ = _occ([0], [os_], [0.8])
    assert occ[0, T_OCT4] > 0 and occ[0, T_SOX2] > 0 and occ[0, T_NANOG] == 0


def test_syntax_shows_up_in_the_simulated_occupancy():
    # Only the genome and the planted loci are needed (no reads, no files).
    cfg = resolve_config({"seed": 5, "scale": 0.1, "nanog_pairs": 1.0, "nanog_pair_spacing": [10, 16]})
    rngs = [np.random.default_rng(s) for s in range(3)]
    genome = make_genome(cfg, rngs[0])
    truth = truth_table(cfg, genome, plant_loci(cfg, genome, rngs[1], rngs[2]))
    pairs = truth[truth["kind"] == "pair"].sort_values(["locus", "start"])
    first, second = pairs.groupby("locus").head(1), pairs.groupby("locus").tail(1)
    spacing = second["start"].to_numpy() - first["start"].to_numpy()
    occ = np.minimum(first["occupancy_Nanog"].to_numpy(), second["occupancy_Nanog"].to_numpy())
    helical, off_phase = occ[np.isin(spacing, [10, 11])], occ[np.isin(spacing, [15, 16])]
    assert len(helical) > 20 and len(off_phase) > 20
    assert np.median(helical) > 1.2 * np.median(off_phase)


def test_planted_syntax_is_the_occupancy_of_an_isolated_pair():
    cfg = resolve_config({})
    t = planted_syntax(cfg, np.arange(1, 151))
    assert len(t) == len(MOTIFS) ** 2 * 150 * len(TFS)
    nn = t[(t.motif_a == "Nanog") & (t.motif_b == "Nanog") & (t.task == "Nanog")].set_index("distance")
    # the table is the occupancy() of a lone pair over each motif alone
    pair, _ = _occ([0, 21], [NANOG, NANOG], [1, 1])
    alone, _ = _occ([0], [NANOG], [1])
    assert nn.loc[21, "log2fc_a"] == pytest.approx(np.log2(pair[0, T_NANOG] / alone[0, T_NANOG]))
    assert np.allclose(nn["log2fc_a"], nn["log2fc_b"])  # symmetric pair
    assert periodicity(nn["log2fc_a"].to_numpy()[6:])[0] == pytest.approx(cfg["syntax"]["helical_period"], abs=0.2)
    # Oct4-Sox2 helps Klf4 at B, more when near; TFs that do not bind a motif have no fold change there
    ok = t[(t.motif_a == "Oct4-Sox2") & (t.motif_b == "Klf4") & (t.task == "Klf4")].set_index("distance")["log2fc_b"]
    assert ok.loc[10] > ok.loc[150] > 0
    assert t[(t.motif_a == "Nanog") & (t.task == "Klf4")]["log2fc_a"].isna().all()
    # without the syntax rules a Nanog pair's effect does not depend on the distance
    flat = planted_syntax(resolve_config({"syntax": {"nanog_nanog": 0, "nanog_sox2": 0}}), np.arange(1, 60))
    flat = flat[(flat.motif_a == "Nanog") & (flat.motif_b == "Nanog") & (flat.task == "Nanog")]["log2fc_a"]
    assert np.ptp(flat.to_numpy()) < 1e-9


def test_writes_the_planted_syntax(small):
    out, summary = small
    written = pd.read_csv(out / "truth" / "syntax.tsv.gz", sep="\t")
    expected = planted_syntax(summary["config"], np.arange(1, SYNTAX_MAX_BP + 1))
    assert list(written.columns) == list(expected.columns) and len(written) == len(expected)
    assert np.allclose(written["log2fc_a"], expected["log2fc_a"], atol=1e-5, equal_nan=True)


# --------------------------------------------------------------------------------------------
# Determinism, config
# --------------------------------------------------------------------------------------------


def _file_bytes(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(Path(out).rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    cfg = {"seed": 11, "scale": 0.03}
    simulate_dataset(tmp_path / "a", cfg)
    simulate_dataset(tmp_path / "b", cfg, threads=2)  # parallel writing gives the same files
    simulate_dataset(tmp_path / "c", {**cfg, "seed": 12})
    simulate_dataset(tmp_path / "d", {**cfg, "noise": {"dispersion": 1.0}})
    a, b, c, d = (_file_bytes(tmp_path / x) for x in "abcd")
    assert len(a) == len(output_paths(tmp_path)) and a == b
    # gzip members carry no timestamp or name
    peaks = tmp_path / "a" / "chip-nexus" / "Oct4" / "idr-optimal-set.narrowPeak.gz"
    assert peaks.read_bytes()[4:8] == b"\0\0\0\0"
    assert gzip.decompress(peaks.read_bytes())
    assert a["genome.chrom.sizes"] == c["genome.chrom.sizes"]  # the size depends on config only
    assert a["genome.fa"] != c["genome.fa"] and a["truth/instances.tsv.gz"] != c["truth/instances.tsv.gz"]
    # each stage has its own random stream: other noise, same genome and truth, other reads
    assert a["genome.fa"] == d["genome.fa"] and a["truth/instances.tsv.gz"] == d["truth/instances.tsv.gz"]
    assert a["truth/Oct4/expected.pos.bw"] == d["truth/Oct4/expected.pos.bw"]
    assert a["chip-nexus/Oct4/counts.pos.bw"] != d["chip-nexus/Oct4/counts.pos.bw"]


def test_scale_multiplies_genome_and_loci():
    one = chrom_sizes_for(resolve_config({"scale": 1.0}))
    ten = chrom_sizes_for(resolve_config({"scale": 10.0}))
    assert sum(ten.values()) == pytest.approx(10 * sum(one.values()), rel=1e-6)
    assert sum(one.values()) == pytest.approx(DEFAULTS["genome_length"], rel=1e-6)


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"num_chroms": 5}, "simulation.num_chroms"),
        ({"scale": 0}, "simulation.scale"),
        ({"scale": "big"}, "simulation.scale"),
        ({"tfs": {"Oct4": {"depth": -1}}}, "simulation.tfs.Oct4.depth"),
        ({"tfs": {"Oct5": {"depth": 1}}}, "simulation.tfs"),
        ({"colour": 1}, "simulation"),
        ({"nanog_pair_spacing": [20, 10]}, "simulation.nanog_pair_spacing"),
        ({"noise": {"dispersion": 0}}, "simulation.noise.dispersion"),
        ({"motif_mix": {"Oct4-Sox2": 0, "Oct4": 0, "Sox2": 0, "Nanog": 0, "Klf4": 0}}, "simulation.motif_mix"),
        ({"peaks": {"window": 100.0}}, "simulation.peaks.window"),  # integers are ints (they index arrays)
    ],
)
def test_bad_config_names_the_key(bad, key):
    with pytest.raises(BPNetInputError, match=key.replace(".", r"\.")) as info:
        resolve_config(bad)
    message = str(info.value)
    assert message.startswith(f"config key {key}: ") and "\n" not in message  # one line


def test_too_many_loci_for_the_genome_is_a_clear_error(tmp_path):
    with pytest.raises(BPNetInputError, match=r"simulation\.enhancers"):
        simulate_dataset(tmp_path, {"scale": 0.03, "enhancers": 100_000})
    with pytest.raises(BPNetInputError, match=r"simulation\.genome_length"):
        simulate_dataset(tmp_path, {"genome_length": 100_000})


def test_the_schema_defaults_are_what_the_library_uses():
    from snakemake.utils import validate

    # the workflow's validation fills the schema's defaults; the library resolves to the same
    config = {"data": {"genome_fasta": "g.fa", "chrom_sizes": "g.sizes", "tasks": {"t": {"pos": "p", "neg": "n", "peaks": "x"}}},
              "simulation": {}}
    validate(config, str(SCHEMA))
    assert config["simulation"] == DEFAULTS == resolve_config(None)
    # the documented default dataset: 90 Mb from seed 1
    assert DEFAULTS["seed"] == 1 and DEFAULTS["genome_length"] * DEFAULTS["scale"] == 90_000_000
    # the default config file sets seed and scale; everything else is the schema's
    default = yaml.safe_load((SCHEMA.parents[2] / "config" / "config.yaml").read_text())
    assert resolve_config(default["simulation"]) == {**DEFAULTS, **default["simulation"]}
    # a partial override keeps the other defaults of its sub-section, in the workflow and the library
    user = {"tfs": {"Oct4": {"depth": 5.0}}}
    config["simulation"] = {"tfs": {"Oct4": {"depth": 5.0}}}
    validate(config, str(SCHEMA))
    assert config["simulation"]["tfs"]["Oct4"] == {**DEFAULTS["tfs"]["Oct4"], "depth": 5.0}
    assert config["simulation"]["tfs"]["Nanog"] == DEFAULTS["tfs"]["Nanog"]
    assert resolve_config(user) == config["simulation"]
    assert user == {"tfs": {"Oct4": {"depth": 5.0}}} and resolve_config({}) == DEFAULTS  # nothing leaks
    # the generator's own limits are the schema's ranges
    keys = yaml.safe_load(SCHEMA.read_text())["properties"]["simulation"]["properties"]
    assert keys["num_chroms"]["maximum"] == len(MM10_AUTOSOMES)
    assert (keys["motifs_per_enhancer"]["maximum"], keys["decoys_per_enhancer"]["maximum"]) == (MAX_STRONG, MAX_DECOYS)


# --------------------------------------------------------------------------------------------
# Bounded memory (issue #17): the streamed dataset is the whole-genome one, byte for byte
# --------------------------------------------------------------------------------------------


def test_streamed_dataset_is_the_whole_genome_dataset(tmp_path):
    # simulate_dataset makes the genome one chromosome at a time and the tracks one TF at a time;
    # the same stages on the whole genome in memory, written by write_dataset, give the same files.
    cfg = resolve_config({"seed": 11, "scale": 0.03})
    rng_genome, rng_loci, rng_motifs, rng_bias, rng_noise, rng_control = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg["seed"]).spawn(6))
    genome = make_genome(cfg, rng_genome)
    planted = plant_loci(cfg, genome, rng_loci, rng_motifs)
    expected, observed = signal_tracks(cfg, genome, planted, rng_bias, rng_noise, rng_control)
    peaks = call_all_peaks(cfg, genome, observed)
    write_dataset(output_paths(tmp_path / "whole"), genome, expected, observed, peaks,
                  truth_table(cfg, genome, planted), planted_syntax(cfg, np.arange(1, SYNTAX_MAX_BP + 1)))
    summary = simulate_dataset(tmp_path / "streamed", cfg)
    assert _file_bytes(tmp_path / "whole") == _file_bytes(tmp_path / "streamed")
    assert summary["peaks"] == {tf: len(t) for tf, t in peaks.items()}
    # the oracle check, from the files read back and the test chromosomes' rates made again
    pd.testing.assert_frame_equal(summary["oracle"], oracle_check(observed, expected, peaks, genome.sizes),
                                  check_exact=True)


def test_streamed_chromosomes_are_the_planted_genome():
    cfg = resolve_config({"seed": 4, "scale": 0.03})
    genome = make_genome(cfg, np.random.default_rng(1))
    planted = plant_loci(cfg, genome, np.random.default_rng(2), np.random.default_rng(3))
    streamed = [seq for _, _, seq in chromosome_sequences(cfg, np.random.default_rng(1), planted.plant)]
    assert np.array_equal(np.concatenate(streamed), genome.seq)
    # the sequence around the loci stands in for the genome: the same tracks
    around = LocusSequence.around(planted.centers)
    offset = 0
    for seq in streamed:
        around.fill(seq, offset)
        offset += len(seq)
    assert around.filled.all()
    rngs = [np.random.default_rng(s) for s in (6, 7)]
    table = cut_bias_table(np.random.default_rng(5), cfg["cut_bias_sd"])
    whole = list(tf_tracks(cfg, genome.seq, genome.length, planted, table, *[np.random.default_rng(s) for s in (6, 7)]))
    for (tf, exp_a, obs_a), (_, exp_b, obs_b) in zip(whole, tf_tracks(cfg, around, genome.length, planted, table, *rngs)):
        for a, b in [*zip(exp_a.values(), exp_b.values()), *zip(obs_a.values(), obs_b.values())]:
            assert all(np.array_equal(x, y) for x, y in zip(a, b)), tf
    # a subset of the loci (the oracle's test chromosomes) has the whole track's values there
    loci = np.flatnonzero(np.isin(genome.to_local(planted.centers)[0], ["chr1", "chr9"]))
    pos, rate, _ = expected_track(cfg, around, planted, table, "Nanog", -1, loci)
    all_pos, all_rate, _ = whole[2][1]["Nanog.neg"]
    on = np.isin(genome.to_local(all_pos)[0], ["chr1", "chr9"])
    assert 0 < len(pos) < len(all_pos) and np.array_equal(pos, all_pos[on]) and np.array_equal(rate, all_rate[on])


def test_background_sequence_does_not_depend_on_its_pieces(monkeypatch):
    rng = np.random.default_rng(8)
    whole = background_sequence(rng, 1_234_567, 0.42, 0.03, 0.8)
    after = rng.random(3)
    monkeypatch.setattr(genome_module, "SEQ_CHUNK_BP", 2 * genome_module.ISOCHORE_BP)
    rng = np.random.default_rng(8)
    assert np.array_equal(background_sequence(rng, 1_234_567, 0.42, 0.03, 0.8), whole)
    assert np.array_equal(rng.random(3), after)  # the same draws, in the same order


def _call_peaks_dense(total, lam_genome, pk):
    """The peak caller before issue #17 (dense arrays over the whole chromosome): the reference."""
    window = pk["window"]
    smooth = _box(total, window)
    lam = np.maximum(lam_genome * window, _box(total, LOCAL_LAMBDA_BP) * window / LOCAL_LAMBDA_BP)
    k_min = poisson.isf(10.0 ** -pk["min_log10p"], lam_genome * window)
    cand = np.flatnonzero(smooth > k_min)
    log10p = -poisson_logsf(smooth[cand], lam[cand]) / np.log(10)
    sig = cand[log10p >= pk["min_log10p"]]
    lp = np.zeros(len(total))
    lp[cand] = log10p
    new = np.r_[True, np.diff(sig) > window + pk["merge_gap"]]
    run_lo, run_hi = sig[new], sig[np.r_[new[1:], True]] + 1
    fine = _box(total, SUMMIT_SMOOTH_BP).astype(np.float64)
    lengths = run_hi - run_lo
    idx = np.repeat(run_lo - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    bounds = np.r_[0, np.cumsum(lengths)[:-1]]
    run_max = np.maximum.reduceat(fine[idx], bounds)
    at_max = np.where(fine[idx] == np.repeat(run_max, lengths), idx, np.iinfo(np.int64).max)
    summit = np.minimum.reduceat(at_max, bounds)
    return pd.DataFrame({"start": np.maximum(run_lo - window // 2, 0), "end": np.minimum(run_hi + window // 2, len(total)),
                         "summit": summit, "signal": smooth[summit] / lam[summit],
                         "log10p": np.maximum.reduceat(lp[idx], bounds)})


def test_chunked_sparse_peak_calling_is_the_dense_one():
    rng = np.random.default_rng(9)
    length = 300_000
    rate = np.full(length, 0.02)
    for c in rng.integers(0, length, 80):  # peaks of all strengths, some at the ends
        rate[max(c - 40, 0):c + 40] += rng.gamma(1.0, 0.5)
    rate[:30] += 3.0
    rate[-30:] += 3.0
    total = rng.poisson(rate)
    pk = DEFAULTS["peaks"]
    lam_genome = total.sum() / length
    reference = _call_peaks_dense(total, lam_genome, pk)
    assert len(reference) > 20 and reference["start"].iloc[0] == 0 and reference["end"].iloc[-1] == length
    pos = np.flatnonzero(total)
    for chunk in (997, 10_000, 10**9):  # chunk borders inside peaks and runs
        got = call_peaks_sparse(pos, total[pos], length, lam_genome, pk, chunk_bp=chunk)
        pd.testing.assert_frame_equal(got, reference, check_exact=True)
    pd.testing.assert_frame_equal(call_peaks(total, lam_genome, pk), reference, check_exact=True)


@pytest.mark.parametrize("constant, dtype", [(0, np.int64), (np.float32(0.01), np.float32)])
def test_sparse_bigwig_runs_are_those_of_the_dense_track(constant, dtype):
    length = 50
    pos = np.array([0, 1, 2, 7, 8, 20, 21, 22, 49])
    vals = np.array([1, 1, 2, 0, 3, 3, 1, 1, 5]).astype(dtype)  # equal neighbours, a zero, the ends
    if dtype == np.float32:
        vals[3] = np.float32(0.0)  # constant + 0: a point that merges with its gaps
    dense = np.full(length, constant, dtype=dtype)
    dense[pos] += vals
    d = dense.astype(np.float64)
    change = np.flatnonzero(np.diff(d)) + 1
    starts, ends = np.r_[0, change], np.r_[change, length]
    keep = (d[starts] != 0) & ~np.isnan(d[starts])
    got = sparse_runs(pos, vals, length, constant, dtype)
    for a, b in zip(got, (starts[keep], ends[keep], d[starts][keep])):
        assert np.array_equal(a, b)
    # no points at all: one run of the constant, or nothing
    s, e, v = sparse_runs(pos[:0], vals[:0], length, constant, dtype)
    assert (s.tolist(), e.tolist()) == (([0], [length]) if constant else ([], []))


def test_sampled_counts_sum_background_and_signal_per_position():
    pos = np.array([5, 9, 10, 11, 40, 99])
    rate = np.array([0.5, 3.0, 0.1, 8.0, 2.0, 1.0])
    uniq, cnt = _sample_counts(np.random.default_rng(3), 100, 0.5, pos, rate, 0.35)
    # the same draws, summed with np.unique as before issue #17
    rng = np.random.default_rng(3)
    n_bg = rng.poisson(0.5 * 100)
    bg = rng.integers(0, 100, n_bg)
    sig = rng.poisson(rate * rng.gamma(0.35, 1 / 0.35, rate.size))
    ref_pos, inv = np.unique(np.r_[bg, pos[sig > 0]], return_inverse=True)
    ref_cnt = np.bincount(inv, weights=np.r_[np.ones(n_bg), sig[sig > 0]]).astype(np.int64)
    assert np.array_equal(uniq, ref_pos) and np.array_equal(cnt, ref_cnt) and cnt.dtype == np.int64
    assert (sig > 0).any() and np.isin(pos[sig > 0], bg).any()  # both cases: shared and new positions


def test_oracle_windows_beyond_the_cap_are_a_seeded_sample():
    starts = np.arange(0, 50_000, 1000)
    assert sample_windows(starts, None) is starts and sample_windows(starts, 50) is starts
    a, b = sample_windows(starts, 20), sample_windows(starts, 20)
    assert np.array_equal(a, b) and len(np.unique(a)) == 20 and np.all(np.diff(a) > 0) and np.isin(a, starts).all()
