"""Variant scoring (bpnet.data.variants, bpnet.steps.variants): VCF reading, ref/alt windows of
SNVs and indels at chromosome edges, REF checks, and scores against direct predictions."""

import numpy as np
import pandas as pd
import pytest

from bpnet.data.variants import read_vcf, variant_windows
from bpnet.errors import BPNetInputError
from bpnet.io.sequence import decode, open_fasta, reverse_complement_codes

SEQS = {"chr1": "ACGTACGTTTGGCCAAGGTTCCAAGTCAGTCAGTCATGCATGCA" * 5, "chr2": "GGGGCCCCAATT" * 10}
SIZES = {c: len(s) for c, s in SEQS.items()}
HEADER = "##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={c},length={n}>\n" for c, n in SIZES.items()) + \
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


@pytest.fixture
def fasta(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text("".join(f">{c}\n{s}\n" for c, s in SEQS.items()))
    fa = open_fasta(path)
    yield fa
    fa.close()


def vcf(tmp_path, lines, name="v.vcf"):
    path = tmp_path / name
    path.write_text(HEADER + "".join("\t".join(map(str, line)) + "\n" for line in lines))
    return path


def ref_at(chrom, pos, n=1):
    return SEQS[chrom][pos - 1:pos - 1 + n]


def expected_windows(chrom, pos, ref, alt, width):
    """The windows by string slicing: the genome padded with N, the variant at width // 2."""
    seq, start = SEQS[chrom], pos - 1 - width // 2
    padded = lambda lo, hi: "".join(seq[i] if 0 <= i < len(seq) else "N" for i in range(lo, hi))  # noqa: E731
    ref_w = padded(start, start + width)
    alt_w = (padded(start, pos - 1) + alt + padded(pos - 1 + len(ref), pos - 1 + len(ref) + width))[:width]
    return ref_w, alt_w


def test_multiallelic_lines_split_and_symbolic_alleles_skipped(tmp_path, fasta):
    path = vcf(tmp_path, [("chr1", 10, "rs1", ref_at("chr1", 10), "A,G", ".", ".", "."),
                          ("chr2", 5, ".", ref_at("chr2", 5), "<DEL>", ".", ".", "."),
                          ("chr2", 7, ".", ref_at("chr2", 7, 3).lower(), "C", ".", ".", ".")])
    v = read_vcf(path, SIZES, fasta)
    assert v["alt"].tolist() == ["A", "G", "C"] and v["id"].tolist() == ["rs1", "rs1", f"chr2:7:{ref_at('chr2', 7, 3)}:C"]
    assert v["line"].tolist() == [5, 5, 7]


@pytest.mark.parametrize("chrom, pos, ref_len, alt", [
    ("chr1", 100, 1, "T"),          # SNV
    ("chr1", 100, 1, "TGCA"),       # insertion
    ("chr1", 100, 5, "A"),          # deletion
    ("chr1", 3, 1, "C"),            # SNV at the left edge: N padding
    ("chr1", 3, 4, "A"),            # deletion at the left edge
    ("chr2", 118, 3, "G"),          # deletion at the right edge: N pulled in
    ("chr2", 119, 1, "ACGTACGTACGT"),  # insertion longer than the rest of the window half
])
@pytest.mark.parametrize("width", [20, 21])
def test_ref_and_alt_windows(tmp_path, fasta, chrom, pos, ref_len, alt, width):
    ref = ref_at(chrom, pos, ref_len)
    v = read_vcf(vcf(tmp_path, [(chrom, pos, ".", ref, alt, ".", ".", ".")]), SIZES, fasta)
    ref_codes, alt_codes, start = variant_windows(fasta, SIZES, v, width)
    want_ref, want_alt = expected_windows(chrom, pos, ref, alt, width)
    assert decode(ref_codes[0]) == want_ref and decode(alt_codes[0]) == want_alt
    assert start[0] == pos - 1 - width // 2
    # the minus strand: reverse complements are the windows of the complementary alleles, read backwards
    comp = str.maketrans("ACGTN", "TGCAN")
    assert decode(reverse_complement_codes(alt_codes)[0]) == want_alt.translate(comp)[::-1]


def test_a_ref_that_disagrees_with_the_genome_names_the_line(tmp_path, fasta):
    wrong = "A" if ref_at("chr1", 12) != "A" else "C"
    path = vcf(tmp_path, [("chr1", 10, ".", ref_at("chr1", 10), "A", ".", ".", "."),
                          ("chr1", 12, ".", wrong, "G", ".", ".", ".")])
    with pytest.raises(BPNetInputError, match=rf"v.vcf, line 6: REF {wrong} at chr1:12 but the genome has"):
        read_vcf(path, SIZES, fasta)
    path = vcf(tmp_path, [("chr7", 10, ".", "A", "G", ".", ".", ".")], "c.vcf")
    with pytest.raises(BPNetInputError, match=r"c.vcf, line 5: chromosome 'chr7' is not in the genome"):
        read_vcf(path, SIZES, fasta)
    path = vcf(tmp_path, [("chr2", 119, ".", "ATT", "A", ".", ".", ".")], "e.vcf")
    with pytest.raises(BPNetInputError, match=r"e.vcf, line 5: chr2:119 ATT runs past the end of chr2"):
        read_vcf(path, SIZES, fasta)
    path = vcf(tmp_path, [("chr2", 5, ".", ref_at("chr2", 5), "<INS>", ".", ".", ".")], "s.vcf")
    with pytest.raises(BPNetInputError, match=r"s.vcf: no variant with ACGTN alleles"):
        read_vcf(path, SIZES, fasta)
    (tmp_path / "x.vcf").write_text("not a vcf\n")
    with pytest.raises(BPNetInputError, match=r"x.vcf: not a readable VCF/BCF"):
        read_vcf(tmp_path / "x.vcf", SIZES, fasta)


# ---------------------------------------------------------------------------------- scoring

from bpnet.steps.predict import predict_profile  # noqa: E402
from bpnet.steps.variants import background_snvs, effect_scores, empirical_p, score_alleles  # noqa: E402


def tiny_model(tasks=("a", "b"), strands=2):
    from bpnet.model.network import BPNet, BPNetConfig, init_weights

    model = BPNet(BPNetConfig(hidden_size=4, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3,
                              profile_kernel=5, tasks=tuple(tasks), num_strands=strands))
    init_weights(model, 0)
    return model.eval()


def test_effect_scores_by_hand():
    rng = np.random.default_rng(0)
    ref, alt = rng.random((3, 10, 4)), rng.random((3, 10, 4))  # 2 tasks x 2 strands
    got = effect_scores(ref, alt, 2)
    r, a = ref[:, :, 2:4], alt[:, :, 2:4]  # task 1
    assert np.allclose(got["log_counts_diff"][:, 1], np.log1p(a.sum((1, 2))) - np.log1p(r.sum((1, 2))))
    assert np.allclose(got["max_abs_diff"][:, 1], np.abs(a - r).max(axis=(1, 2)))
    p = (r.reshape(3, -1) + 1e-3 / 20) / (r.reshape(3, -1) + 1e-3 / 20).sum(1, keepdims=True)
    q = (a.reshape(3, -1) + 1e-3 / 20) / (a.reshape(3, -1) + 1e-3 / 20).sum(1, keepdims=True)
    m = (p + q) / 2
    js = np.sqrt(0.5 * (p * np.log(p / m)).sum(1) + 0.5 * (q * np.log(q / m)).sum(1))
    assert np.allclose(got["jsd"][:, 1], js)
    same = effect_scores(ref, ref, 2)
    assert np.allclose(same["jsd"], 0, atol=1e-7) and (same["log_counts_diff"] == 0).all()
    one = effect_scores(ref[..., :2], alt[..., :2], 2)  # unstranded: one channel per task
    assert np.allclose(one["log_counts_diff"][:, 1], np.log1p(alt[:, :, 1].sum(1)) - np.log1p(ref[:, :, 1].sum(1)))


def test_alleles_scored_as_direct_predictions_of_the_edited_sequences(tmp_path, fasta):
    import bpnet.steps.variants as V

    lines = [("chr1", 100, ".", ref_at("chr1", 100), "T" if ref_at("chr1", 100) != "T" else "A", ".", ".", "."),
             ("chr1", 120, ".", ref_at("chr1", 120, 4), "G", ".", ".", "."),
             ("chr2", 60, ".", ref_at("chr2", 60), "ACGTAC", ".", ".", ".")]
    v = read_vcf(vcf(tmp_path, lines), SIZES, fasta)
    ref_codes, alt_codes, _ = variant_windows(fasta, SIZES, v, 40)
    model = tiny_model()
    V.CHUNK_VARIANTS, old = 2, V.CHUNK_VARIANTS  # chunks must not change the numbers
    try:
        got = score_alleles([model], ref_codes, alt_codes, 2, "cpu")
    finally:
        V.CHUNK_VARIANTS = old
    want = effect_scores(predict_profile(model, ref_codes), predict_profile(model, alt_codes), 2)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
    ens = score_alleles([model, tiny_model()], ref_codes, alt_codes, 2, "cpu")  # identical members
    np.testing.assert_allclose(ens["log_counts_diff"], want["log_counts_diff"], rtol=1e-5, atol=1e-6)


def test_background_snvs_and_empirical_p(fasta):
    a = background_snvs(fasta, SIZES, 50, 20, seed=3)
    assert a.equals(background_snvs(fasta, SIZES, 50, 20, seed=3)) and len(a) == 50
    for _, v in a.iterrows():
        assert ref_at(v["chrom"], v["pos"]) == v["ref"] and v["alt"] != v["ref"] and v["alt"] in "ACGT"
    null = np.array([[0.1], [0.2], [0.3], [0.4]])
    assert empirical_p(np.array([[0.05], [0.3], [9.0]]), null)[:, 0].tolist() == [1.0, 3 / 5, 1 / 5]


def test_truth_check_correlates_and_separates():
    from bpnet.steps.variants import truth_check

    rng = np.random.default_rng(0)
    n = 60
    kinds = np.array(["motif_break"] * 20 + ["neutral_background"] * 30 + ["motif_create"] * 10)
    planted = np.where(kinds == "motif_break", -1.0, np.where(kinds == "motif_create", 0.8, 0.0)) + rng.normal(0, 0.05, n)
    base = {"chrom": "chr1", "ref": "A", "alt": "C"}
    effects = pd.DataFrame({**base, "pos": np.arange(n) + 1, "task": "T", "kind": kinds, "planted_effect": planted})
    scores = effects[["chrom", "pos", "ref", "alt", "task"]].assign(log_counts_diff=planted * 0.5 + rng.normal(0, 0.01, n))
    table = truth_check(scores, effects).set_index("task")
    assert table.loc["T", "pearson"] > 0.99 and table.loc["T", "auroc_break"] == 1.0
    # a motif broken where the task does not bind (planted effect ~0) is not "breaking" for the task
    unbound = effects.iloc[:5].assign(pos=np.arange(n, n + 5) + 1, planted_effect=0.0)
    more = pd.concat([effects, unbound])
    more_scores = pd.concat([scores, unbound[scores.columns.drop("log_counts_diff")].assign(log_counts_diff=0.0)])
    assert truth_check(more_scores, more).set_index("task").loc["T", "n_break"] == 20
    assert table.loc["all", "n_break"] == 20 and table.loc["all", "n_neutral"] == 30
    shuffled = scores.assign(log_counts_diff=rng.permutation(scores["log_counts_diff"].to_numpy()))
    assert abs(truth_check(shuffled, effects).set_index("task").loc["T", "pearson"]) < 0.5
    with pytest.raises(BPNetInputError, match=r"lacks the column\(s\) \['planted_effect'\]"):
        truth_check(scores, effects.drop(columns="planted_effect"))
    with pytest.raises(BPNetInputError, match=r"no scored variant is in"):
        truth_check(scores.assign(chrom="chr9"), effects)


def test_a_control_model_reads_the_control_at_the_window_for_both_alleles(tmp_path, fasta):
    from bpnet.io.tracks import write_bigwig
    from bpnet.model.network import BPNet, BPNetConfig, init_weights
    from bpnet.steps.variants import _score_table, control_windows

    rng = np.random.default_rng(1)
    paths = []
    for strand in ("pos", "neg"):
        path = tmp_path / f"ctl.{strand}.bw"
        write_bigwig(path, SIZES, {c: rng.random(n).round(2) + 0.1 for c, n in SIZES.items()})
        paths.append(str(path))
    model = BPNet(BPNetConfig(hidden_size=4, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3, profile_kernel=5,
                              tasks=("a",), use_control=True))
    init_weights(model, 0)
    model.eval()
    v = read_vcf(vcf(tmp_path, [("chr1", 5, ".", ref_at("chr1", 5), "A" if ref_at("chr1", 5) != "A" else "C",
                                 ".", ".", ".")]), SIZES, fasta)
    got = _score_table([model], fasta, SIZES, v, 40, 1, "cpu", False, None, paths)
    ref_codes, alt_codes, starts = variant_windows(fasta, SIZES, v, 40)
    ctl = control_windows(paths, SIZES, v["chrom"].to_numpy().astype(str), starts, 40)
    assert ctl.shape == (1, 40, 2) and (ctl[0, :40 // 2 - 4] == 0).all()  # N padding past chr1's start: no control
    want = effect_scores(predict_profile(model, ref_codes, ctl), predict_profile(model, alt_codes, ctl), 1)
    np.testing.assert_allclose(got["log_counts_diff"], want["log_counts_diff"], rtol=1e-6, atol=1e-7)
