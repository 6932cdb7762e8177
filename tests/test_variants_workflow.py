"""Variant scoring through Snakemake on the tiny simulated dataset: a VCF the test writes (SNVs, an
insertion, a deletion, a multi-allelic line) scored by an experiment; rows, p-values, plot, log."""

import pandas as pd
import pytest
import yaml
from conftest import snakemake, tiny_config

from bpnet.io.sequence import open_fasta


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("variants")
    config = tiny_config(work / "tiny.yaml")
    result = snakemake(work, config, "simulate_dataset")
    assert result.returncode == 0, result.stderr[-4000:]
    cfg = yaml.safe_load(config.read_text())
    fa = open_fasta(work / cfg["data"]["genome_fasta"])
    seq = str(fa["chr1"][5000:5100]).upper()
    fa.close()
    other = {"A": "C", "C": "G", "G": "T", "T": "A", "N": "A"}
    records = [(5011, seq[10], other[seq[10]]), (5031, seq[30], f"{other[seq[30]]},{other[other[seq[30]]]}"),
               (5051, seq[50], seq[50] + "ACGT"), (5071, seq[70:74], seq[70])]
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr1>", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"chr1\t{pos}\tv{i}\t{ref}\t{alt}\t.\t.\t." for i, (pos, ref, alt) in enumerate(records)]
    (work / "mine.vcf").write_text("\n".join(lines) + "\n")
    truth = "results/simulated/truth"
    cfg["variants"] = {"mine": {"vcf": str(work / "mine.vcf")},
                       "truth": {"vcf": f"{truth}/variants.vcf.gz", "effects": f"{truth}/variant_effects.tsv.gz"}}
    cfg["variant_scoring"] = {"null_variants": 40, "plot_variants": 2}
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = snakemake(work, config, "score_variants_all")
    assert result.returncode == 0, result.stderr[-4000:]
    return work


@pytest.mark.slow
def test_a_vcf_is_scored_per_allele_and_task(variant_run):
    out = variant_run / "results/tiny/variants/mine"
    scores = pd.read_csv(out / "scores.tsv", sep="\t")
    assert len(scores) == 5 * 4  # 5 alleles (one line has two) x 4 tasks
    assert scores["id"].tolist()[::4] == ["v0", "v1", "v1", "v2", "v3"]
    assert set(scores["task"]) == {"Oct4", "Sox2", "Nanog", "Klf4"}
    assert scores["p_counts"].between(1 / 41 - 1e-6, 1).all() and scores["p_jsd"].between(1 / 41 - 1e-6, 1).all()
    assert (scores["log_counts_diff"] == scores["alt_log_counts"] - scores["ref_log_counts"]).abs().max() < 1e-5
    assert (out / "top_variants.png").stat().st_size > 1000
    log = (variant_run / "logs/tiny/score_variants/mine.log").read_text()
    assert "variants/s" in log and "finished" in log


@pytest.mark.slow
def test_the_simulated_truth_variants_are_checked_against_their_planted_effects(variant_run):
    out = variant_run / "results/tiny/variants/truth"
    effects = pd.read_csv(variant_run / "results/simulated/truth/variant_effects.tsv.gz", sep="\t")
    scores = pd.read_csv(out / "scores.tsv", sep="\t")
    assert len(scores) == len(effects)  # every truth variant scored, for every task
    check = pd.read_csv(out / "truth_check.tsv", sep="\t").set_index("task")
    assert list(check.index) == ["Oct4", "Sox2", "Nanog", "Klf4", "all"]
    assert check.loc["all", "n"] == len(effects) and check.loc["all", "n_break"] > 0 and check.loc["all", "n_neutral"] > 0
    assert check[["pearson", "spearman", "auroc_break"]].notna().all().all()
