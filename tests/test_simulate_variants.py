"""The truth VCF of the simulated dataset: rule simulate_variants (bpnet.simulate.variants).

One module-scoped run of the tiny workflow config up to results/simulated/truth/variants.vcf.gz
(simulate_dataset, then simulate_variants; ~25 s), plus library-level checks on a smaller dataset.
"""

import numpy as np
import pandas as pd
import pyfaidx
import pysam
import pytest
from conftest import TINY, jobs_planned, snakemake, tiny_config

from bpnet.errors import BPNetInputError
from bpnet.io.sequence import encode, reverse_complement_codes
from bpnet.io.tracks import read_windows
from bpnet.simulate.binding import TFS
from bpnet.simulate.config import resolve_config
from bpnet.simulate.generate import simulate_dataset
from bpnet.simulate.motifs import affinity, background_probs, load_motifs
from bpnet.simulate.variants import (
    CREATE_MAX_REF,
    CREATE_MIN_ALT,
    DESTROY_MAX_RATIO,
    EFFECT_COLUMNS,
    KINDS,
    simulate_variants,
    variant_paths,
)

DATA = "results/simulated"
VCF = f"{DATA}/truth/variants.vcf.gz"
WIDTH = TINY["windows"]["width"]
CFG = resolve_config(TINY["simulation"])


@pytest.fixture(scope="module")
def tiny_variants(tmp_path_factory):
    """The tiny config run through Snakemake up to the truth VCF: (workdir, config path)."""
    work = tmp_path_factory.mktemp("variants")
    config = tiny_config(work / "tiny.yaml")
    result = snakemake(work, config, VCF)
    assert result.returncode == 0, result.stderr[-4000:]
    return work, config


def _records(work):
    with pysam.VariantFile(str(work / VCF)) as vcf:
        return [(r.contig, r.pos, r.id, r.ref, r.alts[0], dict(r.info)) for r in vcf]


def _effects(work):
    return pd.read_csv(work / DATA / "truth" / "variant_effects.tsv.gz", sep="\t")


def _top_tf_effects(work, kind):
    """planted_effect of each variant of ``kind`` for the TF binding its instance most (INFO TF[0])."""
    top = {vid: info["TF"][0] for _, _, vid, _, _, info in _records(work) if info["KIND"] == kind}
    eff = _effects(work)
    eff = eff[eff["id"].isin(top)]
    return eff[eff["task"] == eff["id"].map(top)].set_index("id")["planted_effect"]


# --------------------------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------------------------


def test_the_vcf_is_sorted_bgzipped_vcf42_with_every_kind(tiny_variants):
    work, _ = tiny_variants
    raw = (work / VCF).read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x04" and raw[12:14] == b"BC"  # BGZF, not plain gzip
    assert (work / f"{VCF}.tbi").exists()
    with pysam.VariantFile(str(work / VCF)) as vcf:
        header = str(vcf.header)
        contigs = list(vcf.header.contigs)
        assert header.startswith("##fileformat=VCFv4.2\n")
        for key in ("KIND", "TYPE", "TF", "MOTIF", "INSTANCE", "LOCUS"):
            assert key in vcf.header.info, key
        records = list(vcf)
        # indexed: a region query gives the records there
        first = records[0]
        assert first.id in [r.id for r in vcf.fetch(first.contig, first.pos - 1, first.pos)]
    order = [(contigs.index(r.contig), r.pos) for r in records]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert len({r.id for r in records}) == len(records)
    kinds = {(r.info["KIND"], r.info["TYPE"]) for r in records}
    assert {k for k, _ in kinds} == set(KINDS)
    # short insertions and deletions, destroying and neutral
    assert {("destroy", "ins"), ("destroy", "del"), ("neutral_background", "ins"),
            ("neutral_background", "del")} <= kinds
    defaults = CFG["variants"]
    assert 200 <= len(records) <= sum(defaults[k] for k in ("destroy", "create", "neutral_peak", "neutral_background", "indels"))
    for r in records:
        if r.info["TYPE"] != "snv":
            assert r.ref[0] == r.alts[0][0] and 1 <= abs(len(r.ref) - len(r.alts[0])) <= 5
        else:
            assert len(r.ref) == len(r.alts[0]) == 1 and r.ref != r.alts[0]


def test_every_ref_allele_is_the_genome(tiny_variants):
    work, _ = tiny_variants
    fa = pyfaidx.Fasta(str(work / DATA / "genome.fa"), rebuild=False)
    records = _records(work)
    assert records
    for chrom, pos, vid, ref, _, _ in records:
        assert str(fa[chrom][pos - 1:pos - 1 + len(ref)]).upper() == ref, vid


def test_the_effects_table_has_a_row_per_variant_and_task(tiny_variants):
    work, _ = tiny_variants
    eff = _effects(work)
    assert list(eff.columns) == EFFECT_COLUMNS
    records = _records(work)
    assert len(eff) == len(records) * len(TFS)
    expect = pd.DataFrame([(c, p, i, r, a, info["KIND"]) for c, p, i, r, a, info in records for _ in TFS],
                          columns=EFFECT_COLUMNS[:6])
    pd.testing.assert_frame_equal(eff[EFFECT_COLUMNS[:6]], expect)
    assert eff["task"].tolist() == list(TFS) * len(records)
    np.testing.assert_allclose(eff["planted_effect"], np.log((1 + eff["alt_total"]) / (1 + eff["ref_total"])),
                               atol=1e-4)


# --------------------------------------------------------------------------------------------
# The planted effects
# --------------------------------------------------------------------------------------------


def test_ref_totals_are_the_written_expected_tracks(tiny_variants):
    # ref_total is the sum of truth/{TF}/expected.{pos,neg}.bw over the width bp centred on the
    # variant (an SNV's base; an indel's first base after the anchor)
    work, _ = tiny_variants
    eff = _effects(work)
    one = eff.drop_duplicates("id")
    is_snv = (one["ref"].str.len() == 1) & (one["alt"].str.len() == 1)
    center = one["pos"].to_numpy() - 1 + np.where(is_snv, 0, 1)  # 0-based
    starts = center - WIDTH // 2
    for tf in TFS:
        paths = [work / DATA / "truth" / tf / f"expected.{s}.bw" for s in ("pos", "neg")]
        written = read_windows(paths, one["chrom"].to_numpy(), starts, WIDTH, dtype=np.float64).sum(axis=(1, 2))
        ref = eff[eff["task"] == tf].set_index("id").loc[one["id"], "ref_total"].to_numpy()
        np.testing.assert_allclose(ref, written, rtol=1e-5, atol=1e-3, err_msg=tf)


def test_destroying_a_bound_motif_lowers_its_tfs_reads(tiny_variants):
    work, _ = tiny_variants
    effect = _top_tf_effects(work, "destroy")
    assert len(effect) >= 50
    assert (effect < -0.05).all(), effect[effect >= -0.05]
    assert effect.median() < -0.3
    # and no task gains much: less accessibility lowers every TF's reads
    eff = _effects(work)
    assert eff.loc[eff["kind"] == "destroy", "planted_effect"].max() < 0.05


def test_creating_a_motif_raises_its_tfs_reads(tiny_variants):
    work, _ = tiny_variants
    effect = _top_tf_effects(work, "create")
    assert len(effect) >= 20
    assert (effect > 0.05).all(), effect[effect <= 0.05]


def test_neutral_variants_have_no_planted_effect(tiny_variants):
    work, _ = tiny_variants
    eff = _effects(work)
    background = eff[eff["kind"] == "neutral_background"]
    bg = {tf: CFG["tfs"][tf]["background"] for tf in TFS}
    # the window holds the constant background alone, before and after
    np.testing.assert_allclose(background["ref_total"], 2 * WIDTH * background["task"].map(bg), rtol=1e-6)
    assert (background["ref_total"] == background["alt_total"]).all()
    assert (background["planted_effect"] == 0).all()
    peak = eff[eff["kind"] == "neutral_peak"]
    assert (peak["ref_total"] > 2 * 2 * WIDTH * peak["task"].map(bg)).mean() > 0.5  # in the signal of a locus
    assert peak["planted_effect"].abs().max() < 0.01  # the cut bias only


def test_destroyed_and_created_instances_follow_the_motifs(tiny_variants):
    work, _ = tiny_variants
    fa = pyfaidx.Fasta(str(work / DATA / "genome.fa"), rebuild=False)
    truth = pd.read_csv(work / DATA / "truth" / "instances.tsv.gz", sep="\t")
    pfms = load_motifs()
    bg = background_probs(CFG["gc_content"])

    def kmer(chrom, start, width, strand, snv=None):
        codes = encode(str(fa[chrom][start:start + width]).upper())
        if snv is not None:
            codes[snv[0] - start] = encode(snv[1])[0]
        return reverse_complement_codes(codes) if strand == "-" else codes

    n_destroy = 0
    for chrom, pos, vid, ref, alt, info in _records(work):
        if info["TYPE"] != "snv" or info["KIND"] not in ("destroy", "create"):
            continue
        pfm, start, strand = pfms[info["MOTIF"]], info["MSTART"] - 1, info["MSTRAND"]
        before = affinity(kmer(chrom, start, len(pfm), strand)[None], pfm, bg, CFG["affinity_temperature"])[0]
        after = affinity(kmer(chrom, start, len(pfm), strand, (pos - 1, alt))[None], pfm, bg,
                         CFG["affinity_temperature"])[0]
        np.testing.assert_allclose([info["AFF_REF"], info["AFF_ALT"]], [before, after], atol=1e-5, err_msg=vid)
        if info["KIND"] == "destroy":
            n_destroy += 1
            row = truth.iloc[info["INSTANCE"]]
            assert (row["chrom"], row["start"], row["motif"], row["strand"]) == (chrom, start, info["MOTIF"], strand)
            assert row["bound"] and row[f"occupancy_{info['TF'][0]}"] >= CFG["variants"]["min_occupancy"]
            assert after <= DESTROY_MAX_RATIO * row["affinity"] + 1e-5
            # the most informative column changed to its least probable base
            p = pfm / pfm.sum(axis=1, keepdims=True)
            key = int(np.argmax((p * np.log2(np.clip(p, 1e-12, None))).sum(axis=1)))
            column = key if strand == "+" else len(pfm) - 1 - key
            assert pos - 1 == start + column, vid
            assert kmer(chrom, start, len(pfm), strand, (pos - 1, alt))[key] == np.argmin(p[key]), vid
        else:
            assert before <= CREATE_MAX_REF + 1e-5 and after >= CREATE_MIN_ALT - 1e-5, vid
            # clear of every planted instance
            same = truth[truth["chrom"] == chrom]
            assert not ((same["start"] < start + len(pfm)) & (same["end"] > start)).any(), vid
    assert n_destroy >= 50


# --------------------------------------------------------------------------------------------
# The rule in the workflow
# --------------------------------------------------------------------------------------------


def test_the_rule_is_asked_for_by_path_and_leaves_the_dataset_alone(tiny_variants):
    work, config = tiny_variants
    # without a variants section (tiny configs leave it out) the rule is not planned, nor the dataset again
    planned = jobs_planned(snakemake(work, config, "-n"))
    assert "train" in planned and not planned & {"simulate_variants", "simulate_dataset"}
    # other variant counts remake the VCF, not the dataset: simulate_dataset's params leave them out
    more = tiny_config(work / "more.yaml", simulation={**TINY["simulation"], "variants": {"destroy": 5}})
    result = snakemake(work, more, "-n", VCF)
    assert result.returncode == 0, result.stderr[-2000:]
    assert jobs_planned(result) == {"simulate_variants"}


# --------------------------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------------------------

SMALL = {"seed": 11, "scale": 0.05,
         "variants": {"destroy": 10, "create": 4, "neutral_peak": 6, "neutral_background": 6, "indels": 4}}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    simulate_dataset(out, {k: v for k, v in SMALL.items() if k != "variants"})
    return out


def _run(data, out, config=SMALL, width=300):
    paths = variant_paths(out)
    simulate_variants(data / "genome.fa", data / "truth" / "instances.tsv.gz", paths["vcf"], paths["effects"],
                      config=config, width=width)
    return {k: p.read_bytes() for k, p in paths.items()}


def test_same_seed_same_bytes(small_dataset, tmp_path):
    a = _run(small_dataset, tmp_path / "a")
    b = _run(small_dataset, tmp_path / "b")
    assert a == b
    c = _run(small_dataset, tmp_path / "c", {**SMALL, "variants": {**SMALL["variants"], "destroy": 3}})
    assert c["vcf"] != a["vcf"]


def test_a_dataset_of_another_config_is_a_one_line_error(small_dataset, tmp_path):
    with pytest.raises(BPNetInputError, match=r"instances\.tsv\.gz: the planted instances are not") as info:
        _run(small_dataset, tmp_path, {**SMALL, "seed": 12})
    assert "\n" not in str(info.value)
    with pytest.raises(BPNetInputError, match=r"genome\.fa: chromosomes"):
        _run(small_dataset, tmp_path, {**SMALL, "scale": 0.06})
    with pytest.raises(BPNetInputError, match=r"config key windows\.width"):
        _run(small_dataset, tmp_path, width=0)
    with pytest.raises(BPNetInputError, match=r"config key simulation\.variants\.indels"):
        _run(small_dataset, tmp_path, {**SMALL, "variants": {"indels": -1}})


def test_no_variants_asked_for_gives_empty_files(small_dataset, tmp_path):
    none = {k: 0 for k in ("destroy", "create", "neutral_peak", "neutral_background", "indels")}
    _run(small_dataset, tmp_path, {**SMALL, "variants": none})
    paths = variant_paths(tmp_path)
    with pysam.VariantFile(str(paths["vcf"])) as vcf:
        assert list(vcf) == []
    assert list(pd.read_csv(paths["effects"], sep="\t").columns) == EFFECT_COLUMNS


def test_the_variants_section_defaults_give_a_few_hundred():
    # the dataset's settings are the section without `variants` (rule simulate_dataset's params)
    defaults = resolve_config({})
    assert set(defaults["variants"]) == {"destroy", "create", "neutral_peak", "neutral_background", "indels",
                                         "max_indel_length", "min_occupancy"}
    total = sum(defaults["variants"][k] for k in ("destroy", "create", "neutral_peak", "neutral_background", "indels"))
    assert 200 <= total <= 600  # a few hundred
