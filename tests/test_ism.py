"""In-silico mutagenesis: the generic function on a linear model, the BPNet scores against a direct
forward pass, the rule's files, and one small run through Snakemake."""

import logging

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch
from conftest import jobs_planned, snakemake, tiny_config
from scipy.spatial.distance import jensenshannon

from bpnet.errors import BPNetInputError
from bpnet.interpret.contributions import compute_contributions
from bpnet.interpret.ism import (
    bpnet_ism,
    ism,
    load_ism,
    log_total_counts,
    output_names,
    run_ism,
    top_windows,
    write_max_effect_track,
)
from bpnet.model.network import BPNet, BPNetConfig, codes_to_one_hot, init_weights
from bpnet.model.weights import save_checkpoint
from bpnet.steps.predict import predict_outputs

LOG = logging.getLogger("test_ism")


def tiny_model(tasks=("a", "b"), use_control=False, num_strands=2, seed=0):
    cfg = BPNetConfig(hidden_size=6, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3, profile_kernel=5,
                      tasks=tuple(tasks), use_control=use_control, num_strands=num_strands)
    model = BPNet(cfg)
    init_weights(model, seed)
    return model.eval()


def random_codes(n, length, seed=0):
    return np.random.default_rng(seed).integers(0, 4, (n, length)).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Generic ISM
# --------------------------------------------------------------------------------------------


def linear_case(n=3, length=17, k=5, seed=1):
    """A linear model score(x) = sum_{i,b} x[i, b] W[i, b, :] with integer weights (float32 sums exact)."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(-50, 50, (length, 4, k)).astype(np.float32)
    codes = rng.integers(0, 4, (n, length)).astype(np.uint8)
    w = torch.from_numpy(weights)

    def score(x):
        return torch.einsum("bic,ick->bk", x, w)

    return score, weights, codes


def test_linear_model_effects_are_exact():
    score, weights, codes = linear_case()
    x = codes_to_one_hot(torch.from_numpy(codes))
    effects = ism(score, x, batch_size=16)
    n, length = codes.shape
    assert effects.shape == (n, length, 4, weights.shape[2]) and effects.dtype == np.float32
    ref_w = weights[np.arange(length)[None, :], codes]  # (n, L, K): W[i, ref_i]
    expected = weights[None] - ref_w[:, :, None, :]  # W[i, b] - W[i, ref]
    np.testing.assert_array_equal(effects, expected)
    # 0 at every reference base
    assert (effects[np.arange(n)[:, None], np.arange(length)[None, :], codes] == 0).all()
    # and (almost) nowhere else: the three mutants per position are all computed
    assert (effects != 0).sum() >= 0.9 * 3 * n * length * weights.shape[2]


def test_batching_does_not_change_the_result():
    score, _, codes = linear_case(n=4, length=11)
    x = codes_to_one_hot(torch.from_numpy(codes))
    results = [ism(score, x, batch_size=b) for b in (1, 5, 33, 10_000)]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    # a BPNet too: mutants of several windows share batches
    model = tiny_model()
    codes = random_codes(3, 30)
    a, b = bpnet_ism(model, codes, batch_size=7), bpnet_ism(model, codes, batch_size=256)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_n_positions_and_aux():
    score, weights, codes = linear_case(n=2, length=9)
    codes = codes.copy()
    codes[1, 4] = 4  # N: no base to mutate
    x = codes_to_one_hot(torch.from_numpy(codes))
    effects = ism(score, x, batch_size=4)
    assert (effects[1, 4] == 0).all()
    assert (effects[1, 3] != 0).any()
    # aux: each call gets the rows of its mutants' windows
    aux = np.array([[10.0], [20.0]], dtype=np.float32)
    seen = []

    def with_aux(inp, rows):
        seen.append(rows[:, 0].clone())
        return score(inp) + rows

    out = ism(with_aux, x, batch_size=5, aux=aux)
    np.testing.assert_array_equal(out, effects)  # aux cancels in the difference
    assert set(torch.cat(seen).tolist()) == {10.0, 20.0}
    with pytest.raises(BPNetInputError, match="one-hot"):
        ism(score, np.zeros((2, 9)))
    with pytest.raises(BPNetInputError, match="aux has 1 rows"):
        ism(with_aux, x, aux=aux[:1])


# --------------------------------------------------------------------------------------------
# BPNet scores
# --------------------------------------------------------------------------------------------


def direct_scores(model, codes, rc_average=False, control=None):
    """Per task: log total counts and per-strand profile probabilities, by a direct forward pass."""
    out = predict_outputs(model, codes, control, rc_average=rc_average)
    t, s = model.config.num_tasks, model.config.num_strands
    logc = log_total_counts(torch.from_numpy(out["count_logits"]), t, s).numpy()
    probs = torch.softmax(torch.from_numpy(out["profile_logits"]), dim=1).numpy()
    return logc, probs


@pytest.mark.parametrize("rc_average,num_strands,use_control", [
    (False, 2, False), (True, 2, False), (False, 1, False), (True, 2, True),
])
def test_bpnet_ism_equals_a_forward_pass_on_the_mutated_sequence(rc_average, num_strands, use_control):
    model = tiny_model(num_strands=num_strands, use_control=use_control)
    codes = random_codes(2, 40, seed=3)
    control = None
    if use_control:
        control = np.random.default_rng(5).poisson(2, (2, 40, num_strands)).astype(np.float32)
    effects = bpnet_ism(model, codes, control, rc_average=rc_average, batch_size=19)
    t, s = 2, num_strands
    assert effects.shape == (2, 40, 4, 2 * t)
    assert output_names(["a", "b"]) == [("a", "log_counts"), ("b", "log_counts"), ("a", "profile_jsd"),
                                        ("b", "profile_jsd")]
    ref_c, ref_p = direct_scores(model, codes, rc_average, control)
    for w, pos, base in [(0, 0, 1), (0, 17, 3), (1, 39, 0), (1, 20, 2)]:
        if codes[w, pos] == base:
            base = (base + 1) % 4
        mutant = codes[w:w + 1].copy()
        mutant[0, pos] = base
        ctl = None if control is None else control[w:w + 1]
        mut_c, mut_p = direct_scores(model, mutant, rc_average, ctl)
        np.testing.assert_allclose(effects[w, pos, base, :t], mut_c[0] - ref_c[w], atol=1e-5)
        jsd = [np.mean([jensenshannon(mut_p[0, :, k * s + j], ref_p[w, :, k * s + j]) for j in range(s)])
               for k in range(t)]
        np.testing.assert_allclose(effects[w, pos, base, t:], jsd, atol=2e-4)
        assert (effects[w, pos, codes[w, pos]] == 0).all()
    counts_only = bpnet_ism(model, codes, control, rc_average=rc_average, profile=False)
    np.testing.assert_allclose(counts_only, effects[..., :t], atol=1e-6)


def test_top_windows():
    split = np.array(["test", "train", "test", "test", "valid", "test"])
    reads = np.array([5, 100, 7, 7, 100, 1])
    assert top_windows(split, reads, 3).tolist() == [2, 3, 0]  # ties: lower row first
    assert top_windows(split, reads, 10).tolist() == [2, 3, 0, 5]
    with pytest.raises(BPNetInputError, match="ism.regions"):
        top_windows(np.array(["train"]), np.array([1]), 2)


# --------------------------------------------------------------------------------------------
# The rules' files
# --------------------------------------------------------------------------------------------


def make_dataset(tmp_path, width=50, context=5, tasks=("a", "b")):
    rng = np.random.default_rng(0)
    n, length = 6, width + 2 * context
    counts = rng.poisson(1, (n, length, 2 * len(tasks))).astype(np.uint8)
    counts[5] += 3  # the test window with most reads, then 1 (overlaps window 0), ...
    counts[1, context:context + width] += 2
    counts[0, context:context + width] += 1
    path = tmp_path / "dataset.npz"
    np.savez(
        path, sequence=rng.integers(0, 4, (n, length)).astype(np.uint8), counts=counts,
        chrom=np.array(["chr1", "chr1", "chr1", "chr2", "chr2", "chr2"]),
        start=np.array([100, 130, 400, 100, 250, 900], dtype=np.int64),
        split=np.array(["test", "test", "train", "test", "valid", "test"]),
        window_tasks=np.array(["a"] * n), tasks=np.array(tasks), width=np.int64(width),
        extra_context=np.int64(context),
    )
    sizes = tmp_path / "chrom.sizes"
    sizes.write_text("chr1\t2000\nchr2\t2000\nchr3\t500\n")
    return path, sizes


SETTINGS = {"enabled": True, "n_windows": 3, "regions": None, "profile": True, "batch_size": 32}


def test_rule_files_and_max_effect_tracks(tmp_path):
    dataset, sizes = make_dataset(tmp_path)
    model_path = tmp_path / "model.safetensors"
    save_checkpoint(tiny_model(), model_path)
    npz, table = tmp_path / "ism.npz", tmp_path / "windows.tsv"
    effects = run_ism(str(dataset), str(model_path), str(npz), str(table), ["a", "b"], SETTINGS, device="cpu",
                      log=LOG)
    d = load_ism(npz)
    assert d["index"].tolist() == [5, 1, 0]  # test windows by observed reads
    assert d["effects"].shape == (3, 50, 4, 4) and d["effects"].dtype == np.float32
    np.testing.assert_array_equal(d["effects"], effects)
    assert d["outputs"].tolist() == ["a:log_counts", "b:log_counts", "a:profile_jsd", "b:profile_jsd"]
    ds = np.load(dataset)
    np.testing.assert_array_equal(d["sequence"], ds["sequence"][[5, 1, 0], 5:55])
    np.testing.assert_allclose(effects, bpnet_ism(tiny_model(), d["sequence"]), atol=1e-4)  # kernels may differ
    rows = pd.read_csv(table, sep="\t")
    assert rows["dataset_row"].tolist() == [5, 1, 0] and rows["end"].tolist() == [950, 180, 150]
    np.testing.assert_allclose(rows["a_max_abs_effect"], np.abs(effects[..., 0]).max(axis=(1, 2)), atol=1e-5)
    # the bigWig of max effects holds the npz's values (windows 0 and 1 overlap: nearest centre)
    track = tmp_path / "b.max_effect.bw"
    write_max_effect_track(str(npz), str(sizes), "b", str(track), log=LOG)
    maxabs = np.abs(effects[..., 1]).max(axis=2)  # (3, 50): task b's log counts
    with pyBigWig.open(str(track)) as bw:
        assert bw.chroms() == {"chr1": 2000, "chr2": 2000, "chr3": 500}
        np.testing.assert_allclose(bw.values("chr2", 900, 950), maxabs[0], atol=1e-6)
        vals = np.array(bw.values("chr1", 100, 180))
        np.testing.assert_allclose(vals[:40], maxabs[2, :40], atol=1e-6)  # window 0 (start 100)
        np.testing.assert_allclose(vals[40:], maxabs[1, 10:], atol=1e-6)  # window 1 (start 130)
        assert np.isnan(bw.values("chr1", 300, 301)[0])
    with pytest.raises(BPNetInputError, match="task 'c'"):
        write_max_effect_track(str(npz), str(sizes), "c", str(tmp_path / "c.bw"))
    # deterministic
    run_ism(str(dataset), str(model_path), str(tmp_path / "again.npz"), str(tmp_path / "again.tsv"), ["a", "b"],
            SETTINGS, device="cpu")
    assert (tmp_path / "again.npz").read_bytes() == npz.read_bytes()


def test_correlation_with_contribution_scores_is_logged(tmp_path, caplog):
    dataset, sizes = make_dataset(tmp_path)
    model_path = tmp_path / "model.safetensors"
    save_checkpoint(tiny_model(), model_path)
    contrib = tmp_path / "contrib.npz"
    cfg = {"splits": ["test"], "max_windows": None, "n_references": 3, "heads": ["counts"], "batch_size": 4}
    compute_contributions(str(dataset), str(model_path), str(sizes), str(contrib), str(tmp_path / "tracks"),
                          ["a", "b"], cfg, seed=1, device="cpu", threads=1, log=LOG)
    with caplog.at_level(logging.INFO, logger="test_ism"):
        run_ism(str(dataset), str(model_path), str(tmp_path / "ism.npz"), str(tmp_path / "w.tsv"), ["a", "b"],
                SETTINGS, contrib_path=str(contrib), device="cpu", log=LOG)
    lines = [r.getMessage() for r in caplog.records if "Pearson" in r.getMessage()]
    assert len(lines) == 2 and "3 shared windows" in lines[0]
    r = float(lines[0].split("r = ")[1].split()[0])
    assert -1 <= r <= 1
    contrib.write_bytes(b"PK\x03\x04 half written")  # contrib_scores still writing: a note, no failure
    with caplog.at_level(logging.INFO, logger="test_ism"):
        run_ism(str(dataset), str(model_path), str(tmp_path / "ism.npz"), str(tmp_path / "w.tsv"), ["a", "b"],
                SETTINGS, contrib_path=str(contrib), device="cpu", log=LOG)
    assert any("not readable now" in r.getMessage() for r in caplog.records)


def test_rule_with_bed_regions(tmp_path):
    dataset, sizes = make_dataset(tmp_path)
    rng = np.random.default_rng(2)
    genome = "".join("ACGT"[i] for i in rng.integers(0, 4, 2000))
    fasta = tmp_path / "genome.fa"
    fasta.write_text(f">chr1\n{genome}\n>chr2\n{genome[::-1]}\n")
    bed = tmp_path / "regions.bed"
    bed.write_text("chr1\t500\t520\tmid\nchr2\t0\t10\n")
    model_path = tmp_path / "model.safetensors"
    save_checkpoint(tiny_model(), model_path)
    npz, table = tmp_path / "ism.npz", tmp_path / "windows.tsv"
    run_ism(str(dataset), str(model_path), str(npz), str(table), ["a", "b"], {**SETTINGS, "regions": str(bed)},
            genome=str(fasta), device="cpu", log=LOG)
    d = load_ism(npz)
    assert d["name"].tolist() == ["mid", "chr2:0-10"] and d["index"].tolist() == [-1, -1]
    assert d["start"].tolist() == [485, 0]  # centred on the region; moved inside chr2
    assert "".join("ACGT"[c] for c in d["sequence"][0]) == genome[485:535]
    bad = tmp_path / "bad.bed"
    bad.write_text("chrX\t1\t5\n")
    with pytest.raises(BPNetInputError, match="chrX"):
        run_ism(str(dataset), str(model_path), str(npz), str(table), ["a", "b"], {**SETTINGS, "regions": str(bad)},
                genome=str(fasta), device="cpu")


# --------------------------------------------------------------------------------------------
# Through Snakemake
# --------------------------------------------------------------------------------------------


def test_ism_joins_the_interpret_target_only_when_enabled(tmp_path):
    off = tiny_config(tmp_path / "off.yaml")
    assert "ism" not in jobs_planned(snakemake(tmp_path, off, "-n", "interpret"))
    on = tiny_config(tmp_path / "on.yaml", ism={"enabled": True, "n_windows": 2})
    planned = jobs_planned(snakemake(tmp_path, on, "-n", "interpret"))
    assert {"ism", "ism_track", "contrib_scores"} <= planned
    assert "ism" not in jobs_planned(snakemake(tmp_path, on, "-n"))  # rule all: only with interpretation.enabled


@pytest.mark.slow
def test_ism_through_snakemake(tmp_path):
    config = tiny_config(tmp_path / "tiny.yaml", ism={"enabled": True, "n_windows": 2})
    folder = "results/tiny/interpretation/ism"
    targets = [f"{folder}/ism.npz", f"{folder}/windows.tsv", f"{folder}/Oct4.max_effect.bw",
               f"{folder}/Klf4.max_effect.bw"]
    result = snakemake(tmp_path, config, *targets)
    assert result.returncode == 0, result.stderr[-4000:]
    d = load_ism(tmp_path / folder / "ism.npz")
    assert d["effects"].shape == (2, 200, 4, 8)
    assert [str(t) for t in d["tasks"]] == ["Oct4", "Sox2", "Nanog", "Klf4"]
    assert (d["index"] >= 0).all()
    log = (tmp_path / "logs/tiny/ism.log").read_text()
    assert "windows/s" in log and "finished" in log
    sizes = dict(line.split() for line in (tmp_path / "results/simulated/genome.chrom.sizes").read_text().splitlines())
    with pyBigWig.open(str(tmp_path / folder / "Oct4.max_effect.bw")) as bw:
        assert {c: str(n) for c, n in bw.chroms().items()} == sizes
        chrom, start = str(d["chrom"][0]), int(d["start"][0])
        np.testing.assert_allclose(bw.values(chrom, start, start + 200), np.abs(d["effects"][0, :, :, 0]).max(axis=1),
                                   atol=1e-6)
