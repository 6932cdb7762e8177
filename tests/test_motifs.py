"""Motifs: MEME reading/writing, similarity, TF-MoDISco on planted contributions, CWM scanning,
precision / recall against planted instances, and the rules' functions."""

import logging
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from bpnet.errors import BPNetInputError
from bpnet.interpret.contributions import Contributions, save_contributions
from bpnet.interpret.instances import call_instances, locate_instances, scan_cwms
from bpnet.interpret.meme import (
    consensus,
    information_content,
    motif_similarity,
    read_meme_motifs,
    resolve_known_motifs,
    reverse_complement_matrix,
)
from bpnet.interpret.modisco import (
    Pattern,
    best_matches,
    discover_motifs,
    read_modisco_h5,
    run_modisco,
    similarity_table,
    trim_bounds,
    write_meme,
)
from bpnet.interpret.truth import check_against_truth, instance_recovery
from bpnet.simulate.config import resolve_config
from bpnet.simulate.truth import planted_syntax

LOG = logging.getLogger("test_motifs")
MEME = str(resources.files("bpnet").joinpath("data/oskn_motifs.meme"))
LABELS = {"Oct4-Sox2": "MA0142.1", "Oct4": "MA1115.1", "Sox2": "MA0143.5", "Nanog": "MA2339.1", "Klf4": "MA0039.5"}


@pytest.fixture(scope="module")
def known():
    return resolve_known_motifs(read_meme_motifs(MEME), LABELS, MEME)


# --------------------------------------------------------------------------------------------
# MEME files and similarity
# --------------------------------------------------------------------------------------------


def test_read_meme_ids_and_names():
    motifs = read_meme_motifs(MEME)
    assert motifs["MA2339.1"] is motifs["Nanog"]
    assert motifs["MA0142.1"].shape == (15, 4) and motifs["Pou5f1::Sox2"] is motifs["MA0142.1"]
    assert consensus(motifs["MA2339.1"]) == "GCAATCA"
    assert np.allclose(motifs["MA0039.5"].sum(axis=1), 1, atol=1e-3)


def test_read_meme_errors(tmp_path):
    with pytest.raises(BPNetInputError, match="does not exist"):
        read_meme_motifs(tmp_path / "none.meme")
    empty = tmp_path / "empty.meme"
    empty.write_text("MEME version 4\n\nALPHABET= ACGT\n")
    with pytest.raises(BPNetInputError, match="holds no motif"):
        read_meme_motifs(empty)
    bad = tmp_path / "bad.meme"
    bad.write_text("MEME version 4\n\nMOTIF m1\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0.5 0.5\n1 0 0 0\n")
    with pytest.raises(BPNetInputError, match="m1.*probabilities"):
        read_meme_motifs(bad)
    with pytest.raises(BPNetInputError, match="interpretation.motifs.X"):
        resolve_known_motifs(read_meme_motifs(MEME), {"X": "MA9999.9"}, MEME)


def test_similarity(known):
    nanog = known["Nanog"]
    assert motif_similarity(nanog, nanog) == (pytest.approx(1.0), 0, "+")
    sim, offset, orient = motif_similarity(reverse_complement_matrix(nanog), nanog)
    assert sim == pytest.approx(1.0) and orient == "-"
    # embedded in uninformative flanks, and a motif estimated from 200 sampled sites
    flanked = np.vstack([np.full((5, 4), 0.25), nanog, np.full((6, 4), 0.25)])
    assert motif_similarity(flanked, nanog)[:2] == (pytest.approx(1.0), -5)
    rng = np.random.default_rng(0)
    sites = np.stack([rng.choice(4, size=200, p=p / p.sum()) for p in nanog], axis=1)
    estimated = np.stack([np.bincount(col, minlength=4) for col in sites.T]) / 200
    assert motif_similarity(estimated, nanog)[0] > 0.95
    # unrelated planted motifs are far apart
    table = similarity_table([Pattern("p", "t", "pos", known["Klf4"], known["Klf4"], known["Klf4"],
                                      np.zeros((0, 8, 4)))], known)
    assert table.set_index("motif").loc["Klf4", "similarity"] == pytest.approx(1.0)
    assert (table.set_index("motif").drop("Klf4")["similarity"] < 0.5).all()
    matches = best_matches(table, 0.7)
    assert matches.loc[0, "motif"] == "Klf4" and matches.loc[0, "best_motif"] == "Klf4"
    assert best_matches(table.assign(similarity=0.3), 0.7).loc[0, "motif"] == ""


def test_information_content_and_trim():
    pfm = np.array([[1, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    assert information_content(pfm) == pytest.approx([2.0, 0.0], abs=0.05)  # pseudocount 1e-3
    cwm = np.zeros((10, 4))
    cwm[3, 0], cwm[6, 2], cwm[8, 1] = 1.0, -0.5, 0.1
    assert trim_bounds(cwm, 0.3) == (3, 7)


# --------------------------------------------------------------------------------------------
# Synthetic contributions with planted motifs
# --------------------------------------------------------------------------------------------


def planted_contributions(known, n=300, length=200, seed=0):
    """Random sequences with Nanog and Klf4 sites sampled from their PFMs (60 % of windows each,
    either strand) and hypothetical contributions = 0.1 x log-odds at the sites, noise elsewhere.

    Returns codes (n, L), hyp (n, L, 4) float32 and the planted sites (window, start, end, motif, strand).
    """
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, length)).astype(np.uint8)
    hyp = rng.normal(0, 0.02, (n, length, 4)).astype(np.float32)
    sites = []
    occupied = np.zeros((n, length), dtype=bool)
    for label in ("Nanog", "Klf4"):
        pfm = known[label]
        w = len(pfm)
        log_odds = np.log2((pfm + 0.01) / 0.25)
        for i in np.flatnonzero(rng.random(n) < 0.6):
            for _ in range(20):  # a free place (sites never overlap)
                pos = int(rng.integers(15, length - w - 15))
                if not occupied[i, pos - 2:pos + w + 2].any():
                    break
            occupied[i, pos:pos + w] = True
            site = np.array([rng.choice(4, p=p / p.sum()) for p in pfm], dtype=np.uint8)
            minus = rng.random() < 0.5
            codes[i, pos:pos + w] = 3 - site[::-1] if minus else site
            hyp[i, pos:pos + w] += 0.1 * (reverse_complement_matrix(log_odds) if minus else log_odds)
            sites.append((i, pos, pos + w, label, "-" if minus else "+"))
    return codes, hyp, pd.DataFrame(sites, columns=["window", "start", "end", "motif", "strand"])


@pytest.fixture(scope="module")
def modisco_run(tmp_path_factory, known):
    """TF-MoDISco on the planted contributions (a few seconds once numba's cache is warm)."""
    from bpnet.io.sequence import one_hot

    codes, hyp, sites = planted_contributions(known)
    h5 = tmp_path_factory.mktemp("modisco") / "modisco.h5"
    run_modisco(one_hot(codes), hyp, {"max_seqlets_per_metacluster": 1000, "n_leiden_runs": 4}, h5)
    return codes, hyp, sites, h5


def test_modisco_recovers_planted_motifs(modisco_run, known, tmp_path):
    codes, hyp, sites, h5 = modisco_run
    patterns = read_modisco_h5(h5, "t")
    pos = [p for p in patterns if p.metacluster == "pos"]
    assert len(pos) >= 2
    sim = similarity_table(pos, known)
    best = sim.groupby("motif")["similarity"].max()
    assert best["Nanog"] > 0.9 and best["Klf4"] > 0.9
    assert best[["Oct4-Sox2", "Oct4", "Sox2"]].max() < 0.7  # not planted
    for p in pos:
        assert p.pfm.shape == p.cwm.shape == (p.width, 4)
        assert p.seqlet_contrib.shape == (p.n_seqlets, p.width, 4)
        assert np.allclose(p.cwm, p.seqlet_contrib.mean(axis=0), atol=1e-4)  # the CWM is the seqlets' mean
    # MEME round trip
    write_meme(tmp_path / "motifs.meme", pos, "pfm")
    back = read_meme_motifs(tmp_path / "motifs.meme")
    for p in pos:
        assert np.allclose(back[p.name], p.pfm, atol=1e-5)


def test_scan_finds_planted_sites(modisco_run, known):
    codes, hyp, sites, h5 = modisco_run
    from bpnet.io.sequence import one_hot

    patterns = [p for p in read_modisco_h5(h5, "t") if p.metacluster == "pos"]
    matches = best_matches(similarity_table(patterns, known), 0.7)
    contrib = hyp * one_hot(codes)
    hits = scan_cwms(contrib, patterns, 0.02, 0.02)
    assert set(hits.columns) >= {"window", "pos", "end", "strand", "pattern", "match", "contrib"}
    hits = hits.merge(matches[["pattern", "motif"]], on="pattern")
    # within a pattern, non-maximum suppression leaves hits at least half a width apart
    for (_, pattern), g in hits.groupby(["window", "pattern"]):
        half = patterns[[p.name for p in patterns].index(pattern)].width // 2
        assert (np.diff(np.sort(g["pos"].to_numpy())) > half).all()
    windows = pd.DataFrame({"chrom": [f"w{i}" for i in range(len(codes))], "start": 0, "end": codes.shape[1]})
    truth = sites.assign(chrom=[f"w{i}" for i in sites["window"]], bound=True)
    located = hits.assign(chrom=[f"w{i}" for i in hits["window"]], start=hits["pos"])
    rec = instance_recovery(located, truth, windows, ["Nanog", "Klf4"], tolerance=2).set_index("motif")
    assert (rec["recall"] > 0.9).all() and (rec["precision"] > 0.95).all()
    # stricter quantiles keep fewer planted sites (the weakest 10 % of seqlets on either score fail)
    strict = scan_cwms(contrib, patterns, 0.1, 0.1).merge(matches[["pattern", "motif"]], on="pattern")
    strict = strict.assign(chrom=[f"w{i}" for i in strict["window"]], start=strict["pos"])
    rec_strict = instance_recovery(strict, truth, windows, ["Nanog", "Klf4"], tolerance=2).set_index("motif")
    assert (rec_strict["recall"] < rec["recall"]).all() and (rec_strict["recall"] > 0.7).all()
    # the strand is found: a hit's orientation relative to its known motif equals the planted one
    nanog = patterns[[p.name for p in patterns].index(matches.set_index("motif").loc["Nanog", "pattern"])]
    flip = motif_similarity(nanog.pfm, known["Nanog"])[2] == "-"
    h = located[located["pattern"] == nanog.name].merge(truth, on=["chrom", "start"], suffixes=("", "_true"))
    relative = np.where(flip, np.where(h["strand"] == "+", "-", "+"), h["strand"])
    assert len(h) > 50 and (relative == h["strand_true"]).mean() > 0.95


def test_scan_exact_positions_and_thresholds():
    """A hand-made pattern; contributions equal to its CWM at known places, in both orientations."""
    rng = np.random.default_rng(1)
    cwm = np.zeros((6, 4))
    cwm[np.arange(6), [0, 2, 2, 1, 3, 0]] = [1.0, 0.8, 0.9, 0.7, 1.0, 0.6]
    seqlets = np.stack([cwm * rng.uniform(0.8, 1.2) + rng.normal(0, 0.02, cwm.shape) for _ in range(50)])
    pattern = Pattern("t.pos.0", "t", "pos", np.abs(cwm) + 0.01, cwm, cwm, seqlets)
    contrib = rng.normal(0, 0.01, (3, 100, 4))
    contrib[0, 10:16] += cwm
    contrib[0, 60:66] += reverse_complement_matrix(cwm)
    contrib[1, 40:46] += 0.2 * cwm  # right shape, too little contribution
    hits = scan_cwms(contrib, [pattern], match_quantile=0.1, contrib_quantile=0.1)
    got = sorted(zip(hits["window"], hits["pos"], hits["strand"]))
    assert got == [(0, 10, "+"), (0, 60, "-")]
    assert (hits["match"] > 0.9).all() and (hits["end"] - hits["pos"] == 6).all()
    # a lower contribution threshold admits the weak one
    weak = scan_cwms(contrib, [pattern], match_quantile=0.1, contrib_quantile=0.0)
    assert len(weak) == 2  # 0.2 x CWM is still below every seqlet
    assert scan_cwms(contrib * 0, [pattern]).empty


def test_locate_instances_keeps_one_copy_in_overlaps():
    hits = pd.DataFrame({"window": [0, 1, 1, 2], "pos": [30, 0, 40, 5], "end": [36, 6, 46, 11],
                         "strand": "+", "pattern": "p", "task": "t", "match": 1.0, "contrib": 1.0})
    # windows 0 and 1 overlap (100-150 and 130-180): the hit at 130-136 is found in both
    located = locate_instances(hits, np.array(["chr1", "chr1", "chr2"]), np.array([100, 130, 7]), 50)
    assert list(zip(located["chrom"], located["start"], located["end"])) == [
        ("chr1", 130, 136), ("chr1", 170, 176), ("chr2", 12, 18)]


def test_instance_recovery_counts():
    truth = pd.DataFrame({"chrom": "c", "start": [10, 50, 90, 500, 20], "end": [17, 57, 97, 507, 28],
                          "motif": ["N", "N", "N", "N", "K"], "bound": [True, True, False, True, True]})
    windows = pd.DataFrame({"chrom": ["c"], "start": [0], "end": [200]})  # the instance at 500 is outside
    hits = pd.DataFrame({"chrom": "c", "start": [11, 88, 150, 21], "end": [18, 95, 157, 29],
                         "motif": ["N", "N", "N", ""]})
    rec = instance_recovery(hits, truth, windows, ["N", "K"], tolerance=0).set_index("motif")
    assert rec.loc["N", "n_bound"] == 2 and rec.loc["N", "n_hits"] == 3
    assert rec.loc["N", "precision"] == pytest.approx(1 / 3)  # only 11-18 hits a bound instance
    assert rec.loc["N", "precision_any"] == pytest.approx(2 / 3)  # 88-95 hits the unbound one
    assert rec.loc["N", "recall"] == pytest.approx(1 / 2)
    assert rec.loc["K", "n_hits"] == 0 and rec.loc["K", "recall"] == 0.0 and np.isnan(rec.loc["K", "precision"])


# --------------------------------------------------------------------------------------------
# The rules' functions on the planted contributions
# --------------------------------------------------------------------------------------------


def test_rules_discovery_instances_and_check(modisco_run, tmp_path):
    codes, hyp, sites, _ = modisco_run
    n, length = codes.shape
    chrom = np.array([f"chr{1 + i % 2}" for i in range(n)])
    start = np.array([1000 * (i // 2) for i in range(n)], dtype=np.int64)
    contrib_path = tmp_path / "contrib.npz"
    save_contributions(contrib_path, Contributions(
        index=np.arange(n) * 2, chrom=chrom, start=start, sequence=codes,
        hypothetical=np.stack([hyp, hyp * 0.5])[None].astype(np.float16), tasks=["Nanog"],
        heads=["profile", "counts"], n_references=3, seed=1))
    cfg = {
        "motifs": LABELS,
        "modisco": {"head": "profile", "window": 400, "max_seqlets_per_metacluster": 1000, "n_leiden_runs": 4,
                    "trim_threshold": 0.3},
        "scan": {"match_quantile": 0.02, "contrib_quantile": 0.02, "min_similarity": 0.7, "tolerance": 2},
    }
    out = tmp_path / "modisco" / "Nanog"
    out.mkdir(parents=True)
    h5 = str(out / "modisco.h5")
    discover_motifs(str(contrib_path), MEME, h5, str(out / "motifs.meme"), str(out / "cwms.meme"),
                    str(out / "patterns.tsv"), str(out / "logos"), task="Nanog", interpretation=cfg, threads=1, log=LOG)
    table = pd.read_csv(out / "patterns.tsv", sep="\t")
    assert {"Nanog", "Klf4"} <= set(table["motif"].dropna())
    pngs = sorted(p.name for p in (out / "logos").iterdir())
    assert pngs == sorted(f"{p}.png" for p in table["pattern"])
    assert (out / "cwms.meme").read_text().count("MOTIF") == len(table)

    instances_path = str(tmp_path / "instances.tsv")
    call_instances(str(contrib_path), {"Nanog": h5}, MEME, instances_path, str(tmp_path / "motifs.tsv"),
                   interpretation=cfg, log=LOG)
    inst = pd.read_csv(instances_path, sep="\t", keep_default_na=False)
    assert list(inst.columns[:6]) == ["chrom", "start", "end", "strand", "pattern", "task"]
    assert set(inst["window_index"]) <= set(np.arange(n) * 2)

    truth = sites.assign(chrom=chrom[sites["window"]], start=start[sites["window"]] + sites["start"],
                         end=start[sites["window"]] + sites["end"], bound=True)
    truth.to_csv(tmp_path / "instances.tsv.gz", sep="\t", index=False)
    summary = tmp_path / "syntax_summary.tsv"
    pd.DataFrame({"pair": ["Nanog__Nanog", "Nanog__Klf4", "Nanog__Sox2", "Oct4-Sox2__Klf4"],
                  "task": ["Nanog", "Klf4", "Nanog", "Klf4"], "measure": ["log2fc_a", "log2fc_b", "log2fc_a", "log2fc_b"],
                  "mean_log2fc_near": [0.3, 0.1, 0.2, 0.5], "max_log2fc": [1.0, 0.2, 0.5, 1.0],
                  "min_log2fc": [0.0, 0.0, 0.0, 0.0], "period_bp": [10.5, 20.0, 25.0, 20.0],
                  "period_power_share": [0.9, 0.2, 0.2, 0.2]}).to_csv(summary, sep="\t", index=False)
    # Curves: Nanog-Nanog follows the planted one (scaled, shifted, a little noise); Nanog-Klf4
    # (no planted syntax: the planted curve is flat) is noise; Nanog-Sox2 has the planted decay
    # with distance but not its helical oscillation.
    planted = planted_syntax(resolve_config({}), np.arange(1, 151))
    planted.to_csv(tmp_path / "syntax_truth.tsv.gz", sep="\t", index=False)
    d = np.arange(7, 151)
    nn = planted[(planted.motif_a == "Nanog") & (planted.motif_b == "Nanog") & (planted.task == "Nanog")]
    rng = np.random.default_rng(0)
    curves = pd.DataFrame({
        "pair": np.repeat(["Nanog__Nanog", "Nanog__Klf4", "Nanog__Sox2", "Oct4-Sox2__Klf4"], len(d)),
        "task": np.repeat(["Nanog", "Klf4", "Nanog", "Klf4"], len(d)), "distance": np.tile(d, 4),
        "log2fc_a": np.r_[0.4 * nn.set_index("distance").loc[d, "log2fc_a"] - 1 + rng.normal(0, 0.01, len(d)),
                          rng.normal(0, 0.1, len(d)), 0.5 * np.exp(-d / 40) + rng.normal(0, 0.01, len(d)),
                          rng.normal(0, 0.1, len(d))],
        "log2fc_b": np.r_[rng.normal(0, 0.1, 3 * len(d)), np.exp(-d / 100)],
    })
    curves.to_csv(tmp_path / "syntax.tsv", sep="\t", index=False)
    cfg["syntax"] = {"near": 50}
    check_path = tmp_path / "truth_check.tsv"

    def check_truth(planted_syntax_path=None):
        """check_against_truth as rule interpretation_check calls it."""
        check_against_truth(str(tmp_path / "instances.tsv.gz"), str(contrib_path), {"Nanog": h5}, instances_path,
                            str(tmp_path / "syntax.tsv"), str(summary), MEME, str(check_path), interpretation=cfg,
                            planted_syntax_path=planted_syntax_path, log=LOG)

    check_truth()  # no planted syntax (interpretation.truth_syntax unset)
    check = pd.read_csv(check_path, sep="\t").set_index(["check", "subject", "metric"])["value"]
    assert check["motif_recovery", "Nanog", "similarity"] > 0.9
    assert check["instances", "Klf4", "recall"] > 0.9 and check["instances", "Nanog", "precision"] > 0.95
    assert check["syntax", "Nanog__Nanog:Nanog", "period_bp"] == 10.5
    assert ("syntax", "Nanog__Nanog:Nanog", "corr_planted") not in check.index  # no planted syntax given

    check_truth(str(tmp_path / "syntax_truth.tsv.gz"))
    check = pd.read_csv(check_path, sep="\t").set_index(["check", "subject", "metric"])["value"]
    assert check["syntax", "Nanog__Nanog:Nanog", "corr_planted"] > 0.95
    assert check["syntax", "Nanog__Nanog:Nanog", "corr_planted_oscillation"] > 0.9
    # the right decay without the helical peaks: the shape correlates, the oscillation does not
    assert check["syntax", "Nanog__Sox2:Nanog", "planted_period_bp"] == pytest.approx(10.5, abs=0.2)
    assert check["syntax", "Nanog__Sox2:Nanog", "corr_planted"] > 0.5
    assert abs(check["syntax", "Nanog__Sox2:Nanog", "corr_planted_oscillation"]) < 0.3
    assert check["syntax", "Nanog__Nanog:Nanog", "planted_period_bp"] == pytest.approx(10.5, abs=0.2)
    assert check["syntax", "Nanog__Nanog:Nanog", "planted_log2fc_near"] > 3  # the accessibility jump of a pair
    # the planted Oct4-Sox2 boost decays without oscillating: no planted period; the curve matches
    assert np.isnan(check["syntax", "Oct4-Sox2__Klf4:Klf4", "planted_period_bp"])
    assert check["syntax", "Oct4-Sox2__Klf4:Klf4", "corr_planted"] > 0.95
    # Klf4 is not helped by Nanog in the simulation: a flat planted curve has no correlation
    assert np.isnan(check["syntax", "Nanog__Klf4:Klf4", "corr_planted"])

    check_path.unlink()
    with pytest.raises(BPNetInputError, match="interpretation.truth_syntax"):
        check_truth(str(tmp_path / "missing.tsv.gz"))
    planted.drop(columns="log2fc_b").to_csv(tmp_path / "bad.tsv.gz", sep="\t", index=False)
    with pytest.raises(BPNetInputError, match=r"bad\.tsv\.gz: columns \['log2fc_b'\] missing"):
        check_truth(str(tmp_path / "bad.tsv.gz"))
    assert not check_path.exists()  # nothing written for bad input


def test_discovery_without_patterns_writes_empty_outputs(tmp_path):
    """Noise only: TF-MoDISco finds nothing, and every output still exists (empty but valid)."""
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 4, (20, 100)).astype(np.uint8)
    contrib_path = tmp_path / "contrib.npz"
    save_contributions(contrib_path, Contributions(
        index=np.arange(20), chrom=np.array(["chr1"] * 20), start=np.arange(20) * 1000, sequence=codes,
        hypothetical=rng.normal(0, 0.01, (1, 1, 20, 100, 4)).astype(np.float16), tasks=["Nanog"],
        heads=["profile"], n_references=2, seed=1))
    cfg = {"motifs": LABELS, "modisco": {"head": "profile", "window": 400, "trim_threshold": 0.3},
           "scan": {"match_quantile": 0.1, "contrib_quantile": 0.1, "min_similarity": 0.7}}
    out = tmp_path / "Nanog"

    def discover(interpretation):
        """discover_motifs as rule motif_discovery calls it."""
        discover_motifs(str(contrib_path), MEME, str(out / "modisco.h5"), str(out / "motifs.meme"),
                        str(out / "cwms.meme"), str(out / "patterns.tsv"), str(out / "logos"), task="Nanog",
                        interpretation=interpretation, threads=1, log=LOG)

    out.mkdir()
    discover(cfg)
    assert read_modisco_h5(out / "modisco.h5", "Nanog") == []
    assert pd.read_csv(out / "patterns.tsv", sep="\t").empty
    assert "MOTIF" not in (out / "motifs.meme").read_text() and (out / "logos").is_dir()
    with pytest.raises(BPNetInputError, match="head 'counts'"):
        discover({**cfg, "modisco": {**cfg["modisco"], "head": "counts"}})
